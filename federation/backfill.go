package federation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/tidwall/gjson"
	"maunium.net/go/mautrix/id"

	"github.com/ganglion/ganglion/fsm"
)

// Backfill, the client side of GET /backfill: when a client pages back past
// the stored history of a room this server joined over federation
// (clientapi's Backfiller hook), older events are fetched from servers in
// the room, checked like any received PDU (backfill_fetch.go), and stored
// in the room's backfill stream (fsm.RemoteEventsCmd{Backfill: true}).

const (
	// backfillMaxLimit is the spec's usual bound and our server's cap.
	backfillMaxLimit = 100
	// backfillServers is how many servers one call tries.
	backfillServers = 3
	// backfillCallTimeout bounds one Backfill call, fetches included.
	backfillCallTimeout = 60 * time.Second
	// backfillEdgeMax bounds the event IDs sent as v.
	backfillEdgeMax = 20
	// backfillTailScan is how many of the oldest backfilled events are
	// examined for parents not yet held.
	backfillTailScan = 50
	// backfillWalkMax bounds the stored outliers walked through (auth and
	// state events held outside the streams) while looking for that edge.
	backfillWalkMax = 500
)

// backfillPlan is what one call starts from, read in one transaction.
type backfillPlan struct {
	room    *fsm.RoomRecord
	ver     id.RoomVersion
	edge    []string // events not held whose children are: the v parameter
	held    []string // outliers held (join state, auth chains) that are history too
	servers []string // servers to ask, most likely first
}

// Backfill fetches up to limit events older than what the room holds and
// stores them. more reports whether anything new was stored; false with no
// error means there is nothing older to get (the room's creation is
// reached, or no server had more). It implements clientapi.Backfiller.
func (a *API) Backfill(ctx context.Context, roomID string, limit int) (more bool, err error) {
	if a.node == nil {
		return false, errors.New("federation: backfill needs a cluster node")
	}
	limit = min(max(limit, 1), backfillMaxLimit)
	ctx, cancel := context.WithTimeout(ctx, backfillCallTimeout)
	defer cancel()
	// One call per room at a time; a caller that waited starts from what
	// the one before it stored.
	gate := a.backfillGate(roomID)
	select {
	case gate <- struct{}{}:
		defer func() { <-gate }()
	case <-ctx.Done():
		return false, ctx.Err()
	}
	plan, err := a.planBackfill(roomID)
	if err != nil {
		return false, err
	}
	if len(plan.held) > 0 {
		// History this server already holds outside the streams (the state
		// and auth chain of its join) comes first, with no request.
		return a.backfillHeld(ctx, plan, limit)
	}
	if len(plan.edge) == 0 {
		return false, nil
	}
	var errs []error
	for _, server := range plan.servers[:min(len(plan.servers), backfillServers)] {
		got, err := a.backfillFrom(ctx, plan, server, limit)
		if err != nil {
			a.log.Debug("backfill failed", "room_id", roomID, "server", server, "error", err)
			errs = append(errs, fmt.Errorf("%s: %w", server, err))
			continue
		}
		if got {
			return true, nil
		}
	}
	if len(plan.servers) == 0 {
		return false, fmt.Errorf("federation: no server to backfill room %s from", roomID)
	}
	// A server that answered had nothing new; one that failed might have.
	return false, errors.Join(errs...)
}

func (a *API) backfillGate(roomID string) chan struct{} {
	gate, _ := a.gates.LoadOrStore(roomID, make(chan struct{}, 1))
	return gate.(chan struct{})
}

// planBackfill finds the edge of the held history and whom to ask.
func (a *API) planBackfill(roomID string) (*backfillPlan, error) {
	plan := &backfillPlan{}
	err := a.store.View(func(rt *fsm.ReadTx) error {
		room, err := rt.Room(roomID)
		if err != nil || len(room.Extremities) == 0 {
			return errUnknownRoom
		}
		plan.room, plan.ver = room, id.RoomVersion(room.Version)
		var first *fsm.EventRecord
		rt.RoomEvents(roomID, -1, true, 1, func(e *fsm.EventRecord) bool { first = e; return false })
		starts := []*fsm.EventRecord{}
		if first != nil {
			starts = append(starts, first)
		}
		rt.BackfilledEvents(roomID, max(room.BackfillSeq-backfillTailScan, 0), 0, func(e *fsm.EventRecord) bool {
			starts = append(starts, e)
			return true
		})
		plan.edge, plan.held = historyEdge(rt, starts)
		plan.servers = a.backfillServers(rt, roomID, first)
		return nil
	})
	return plan, err
}

// historyEdge lists the parents of the given held events that are not
// held in the timeline or the backfill stream, walking through stored
// outliers (an auth or state event stored at a join is history too, but
// what came before it may still be missing); held lists those outliers.
func historyEdge(rt *fsm.ReadTx, starts []*fsm.EventRecord) (edge, held []string) {
	seen := map[string]bool{}
	var queue []string
	for _, e := range starts {
		seen[e.EventID] = true
	}
	for _, e := range starts {
		queue = append(queue, prevEventsOf(e.PDU)...)
	}
	for walked := 0; len(queue) > 0 && walked < backfillWalkMax; {
		evID := queue[0]
		queue = queue[1:]
		if seen[evID] {
			continue
		}
		seen[evID] = true
		rec, err := rt.Event(evID)
		switch {
		case err != nil:
			edge = append(edge, evID)
		case rec.Rejected || rec.Pos != 0:
			// Refused, or held in a stream already.
		default:
			walked++
			held = append(held, evID)
			queue = append(queue, prevEventsOf(rec.PDU)...)
		}
	}
	sort.Strings(edge)
	return edge[:min(len(edge), backfillEdgeMax)], held
}

// backfillHeld moves up to limit held outliers into the backfill stream.
func (a *API) backfillHeld(ctx context.Context, plan *backfillPlan, limit int) (bool, error) {
	ids := plan.held[:min(len(plan.held), limit)]
	var raws []json.RawMessage
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		for _, evID := range ids {
			if rec, err := rt.Event(evID); err == nil {
				raws = append(raws, rec.PDU)
			}
		}
		return nil
	})
	if len(raws) == 0 {
		return false, nil
	}
	before := plan.room.BackfillSeq
	if _, err := a.proposeRemote(ctx, fsm.RemoteEventsCmd{RoomID: plan.room.RoomID, Events: raws, Backfill: true}, ids); err != nil {
		return false, err
	}
	var after int64
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		if room, err := rt.Room(plan.room.RoomID); err == nil {
			after = room.BackfillSeq
		}
		return nil
	})
	return after > before, nil
}

// backfillServers lists the servers to ask, ours left out and the room's
// server ACL applied: those with users joined at the start of the held
// timeline (most likely to hold what came before), then those joined now,
// then the server that created the room; by users joined, then by name.
func (a *API) backfillServers(rt *fsm.ReadTx, roomID string, first *fsm.EventRecord) []string {
	acl := roomACL(rt, roomID)
	var out []string
	add := func(members map[string]int) {
		names := make([]string, 0, len(members))
		for s := range members {
			names = append(names, s)
		}
		sort.Slice(names, func(i, j int) bool {
			if members[names[i]] != members[names[j]] {
				return members[names[i]] > members[names[j]]
			}
			return names[i] < names[j]
		})
		for _, s := range names {
			if s != "" && s != a.cfg.ServerName && acl.allows(s) && !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	if first != nil {
		if st, err := rt.StateBeforeEvent(first); err == nil {
			early := map[string]int{}
			for k, evID := range st {
				if ev, err := rt.Event(evID); err == nil && k[0] == "m.room.member" &&
					gjson.GetBytes(ev.PDU, "content.membership").Str == "join" {
					early[id.UserID(k[1]).Homeserver()]++
				}
			}
			add(early)
		}
	}
	now := map[string]int{}
	for user, m := range rt.RoomMembers(roomID) {
		if m == "join" {
			now[id.UserID(user).Homeserver()]++
		}
	}
	add(now)
	if ce, err := rt.StateEvent(roomID, "m.room.create", ""); err == nil {
		add(map[string]int{id.UserID(ce.Sender).Homeserver(): 1})
	}
	return out
}
