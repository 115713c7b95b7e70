package federation

import (
	"container/heap"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/ganglion/ganglion/cluster"
	"github.com/ganglion/ganglion/fsm"
)

// Proposing a run: outliers first (parents first, in commands of bounded
// size), then the timeline events in topological order with the state of
// their gaps, then each received event's outcome read from the result.

const (
	maxCmdEvents = 200     // events per room.remote command
	maxCmdBytes  = 2 << 20 // PDU bytes per room.remote command
)

func (r *ingestRun) propose() error {
	keys := map[string]map[string]string{}
	for _, set := range []map[string]*VerifiedPDU{r.outliers, r.events} {
		for _, evID := range sortedKeys(set) {
			r.a.keysFor(r.ctx, set[evID].PDU, keys)
		}
	}
	for _, chunk := range chunked(topoOrder(r.outliers, false)) {
		cmd := fsm.RemoteEventsCmd{RoomID: r.roomID, Outliers: raws(chunk), Keys: keys}
		res, err := r.a.proposeRemote(r.ctx, cmd, eventIDs(chunk))
		var fe *fsm.Error
		switch {
		case errors.As(err, &fe):
			r.log.Warn("outliers refused", "room_id", r.roomID, "error", err)
		case err != nil:
			return err
		case len(res.Rejected)+len(res.Missing) > 0:
			r.log.Debug("outliers not stored", "room_id", r.roomID, "rejected", len(res.Rejected), "missing", len(res.Missing))
		}
	}
	for _, chunk := range chunked(topoOrder(r.events, true)) {
		cmd := fsm.RemoteEventsCmd{RoomID: r.roomID, Events: raws(chunk), Keys: keys}
		for _, v := range chunk {
			if st, ok := r.states[v.EventID]; ok {
				if cmd.States == nil {
					cmd.States = map[string][]string{}
				}
				cmd.States[v.EventID] = st
			}
		}
		res, err := r.a.proposeRemote(r.ctx, cmd, eventIDs(chunk))
		var fe *fsm.Error
		switch {
		case errors.As(err, &fe):
			res = &fsm.RemoteEventsResult{Rejected: map[string]string{}}
			for _, v := range chunk {
				res.Rejected[v.EventID] = fe.Message
			}
		case err != nil:
			return err
		}
		r.record(res, chunk)
	}
	return nil
}

// record maps the outcome of each received event of a command.
func (r *ingestRun) record(res *fsm.RemoteEventsResult, chunk []*VerifiedPDU) {
	ok := map[string]bool{}
	for _, e := range append(append([]string{}, res.Accepted...), res.SoftFailed...) {
		ok[e] = true
	}
	for _, v := range chunk {
		if err, received := r.results[v.EventID]; !received || err != nil {
			continue
		}
		switch {
		case ok[v.EventID]:
		case res.Rejected[v.EventID] != "":
			r.results[v.EventID] = errors.New(res.Rejected[v.EventID])
		case res.Missing[v.EventID] != "":
			r.results[v.EventID] = fmt.Errorf("could not get what the event depends on: %s", res.Missing[v.EventID])
		default:
			r.results[v.EventID] = errors.New("event was not stored")
		}
	}
}

// proposeRemote commits a room.remote command. On a follower the command's
// value does not come back: the outcome is read from the store once the
// command is applied here (ids are the command's event IDs).
func (a *API) proposeRemote(ctx context.Context, cmd fsm.RemoteEventsCmd, ids []string) (*fsm.RemoteEventsResult, error) {
	v, idx, err := a.node.Propose(ctx, fsm.OpRoomRemote, cmd)
	if err != nil {
		return nil, err
	}
	if a.rooms != nil {
		// The room's forward extremities moved: local sends rebuild on them.
		a.rooms.InvalidateHead(cmd.RoomID)
	}
	if res, ok := v.(*fsm.RemoteEventsResult); ok {
		return res, nil
	}
	if !a.node.Notifier().WaitApplied(ctx, idx) {
		return nil, cluster.ErrUnavailable
	}
	res := &fsm.RemoteEventsResult{Rejected: map[string]string{}, Missing: map[string]string{}}
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		for _, evID := range ids {
			rec, err := rt.Event(evID)
			switch {
			case err != nil:
				res.Missing[evID] = "not stored"
			case rec.Rejected:
				res.Rejected[evID] = "rejected by the auth rules"
			default:
				res.Accepted = append(res.Accepted, evID)
			}
		}
		return nil
	})
	return res, nil
}

// chunked splits events into commands of bounded count and size.
func chunked(events []*VerifiedPDU) [][]*VerifiedPDU {
	var out [][]*VerifiedPDU
	var cur []*VerifiedPDU
	size := 0
	for _, v := range events {
		if len(cur) > 0 && (len(cur) >= maxCmdEvents || size+len(v.Raw) > maxCmdBytes) {
			out = append(out, cur)
			cur, size = nil, 0
		}
		cur = append(cur, v)
		size += len(v.Raw)
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

func raws(vs []*VerifiedPDU) []json.RawMessage {
	out := make([]json.RawMessage, 0, len(vs))
	for _, v := range vs {
		out = append(out, v.Raw)
	}
	return out
}

// topoOrder orders events so that each comes after the events of the set
// it names (its auth events, and its prev events when withPrev), lowest
// depth first among those ready (ties by event ID). Events on a cycle
// (only a forged DAG has one) come last, by depth.
func topoOrder(set map[string]*VerifiedPDU, withPrev bool) []*VerifiedPDU {
	indeg := map[string]int{}
	children := map[string][]string{}
	for _, evID := range sortedKeys(set) {
		v := set[evID]
		parents := map[string]bool{}
		for _, e := range v.PDU.AuthEvents {
			parents[string(e)] = true
		}
		if withPrev {
			for _, e := range v.PDU.PrevEvents {
				parents[string(e)] = true
			}
		}
		for _, p := range sortedKeys(parents) {
			if p != evID && set[p] != nil {
				indeg[evID]++
				children[p] = append(children[p], evID)
			}
		}
	}
	ready := &pduHeap{}
	for evID, v := range set {
		if indeg[evID] == 0 {
			heap.Push(ready, v)
		}
	}
	out := make([]*VerifiedPDU, 0, len(set))
	done := map[string]bool{}
	for ready.Len() > 0 {
		v := heap.Pop(ready).(*VerifiedPDU)
		out = append(out, v)
		done[v.EventID] = true
		for _, c := range children[v.EventID] {
			if indeg[c]--; indeg[c] == 0 {
				heap.Push(ready, set[c])
			}
		}
	}
	if len(out) < len(set) {
		rest := &pduHeap{}
		for evID, v := range set {
			if !done[evID] {
				heap.Push(rest, v)
			}
		}
		for rest.Len() > 0 {
			out = append(out, heap.Pop(rest).(*VerifiedPDU))
		}
	}
	return out
}

// pduHeap is a min-heap by (depth, event ID).
type pduHeap []*VerifiedPDU

func (h pduHeap) Len() int { return len(h) }
func (h pduHeap) Less(i, j int) bool {
	if h[i].PDU.Depth != h[j].PDU.Depth {
		return h[i].PDU.Depth < h[j].PDU.Depth
	}
	return h[i].EventID < h[j].EventID
}
func (h pduHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *pduHeap) Push(x any)   { *h = append(*h, x.(*VerifiedPDU)) }
func (h *pduHeap) Pop() any {
	old := *h
	v := old[len(old)-1]
	*h = old[:len(old)-1]
	return v
}
