package fsm

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/tidwall/gjson"
	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/id"
)

// A room's history is a DAG. While it stays linear (every event built on
// all forward extremities, as local events always are) the state after an
// event is the room's state log at its position. An event that forks the
// DAG (a federated event built on older events, the join to a remote room)
// gets the state after it stored explicitly, and the room's current state
// becomes the resolution of the states after its forward extremities.

var bEventState = []byte("event_state") // event_id -> sorted [[type, state_key, event_id], ...] before it

// stateEntry is one (type, state_key) -> event ID, in stored order.
type stateEntry [3]string

func encodeState(state map[[2]string]string) ([]byte, error) {
	out := make([]stateEntry, 0, len(state))
	for k, v := range state {
		out = append(out, stateEntry{k[0], k[1], v})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i][0] != out[j][0] {
			return out[i][0] < out[j][0]
		}
		return out[i][1] < out[j][1]
	})
	return json.Marshal(out)
}

// putStateBefore records the state an event that forked the DAG was
// checked against.
func (w *WriteTx) putStateBefore(eventID string, state map[[2]string]string) error {
	raw, err := encodeState(state)
	if err != nil {
		return err
	}
	return w.put(bEventState, []byte(eventID), raw)
}

// StateBeforeEvent is the room state an event was checked against: stored
// for events that forked the DAG, the state log just before its position
// otherwise.
func (r *ReadTx) StateBeforeEvent(rec *EventRecord) (map[[2]string]string, error) {
	if raw := r.get(bEventState, []byte(rec.EventID)); raw != nil {
		var entries []stateEntry
		if err := json.Unmarshal(raw, &entries); err != nil {
			return nil, err
		}
		out := make(map[[2]string]string, len(entries))
		for _, e := range entries {
			out[[2]string{e[0], e[1]}] = e[2]
		}
		return out, nil
	}
	if rec.Outlier || rec.Rejected || rec.Pos <= 0 {
		return nil, fmt.Errorf("no state is known at event %s", rec.EventID)
	}
	return r.StateAt(rec.RoomID, rec.Pos-1), nil
}

// StateAfterEvent is the state before the event with the event itself
// applied when it is an accepted state event.
func (r *ReadTx) StateAfterEvent(rec *EventRecord) (map[[2]string]string, error) {
	st, err := r.StateBeforeEvent(rec)
	if err != nil {
		return nil, err
	}
	if rec.StateKey != nil && !rec.Rejected {
		st[[2]string{rec.Type, *rec.StateKey}] = rec.EventID
	}
	return st, nil
}

// resolveStates resolves the given states of a room, reading events from
// the store (and pending, an event not stored yet).
func (w *WriteTx) resolveStates(room *RoomRecord, states []map[[2]string]string, getKey pdu.GetKeyFunc, pending ...*pdu.PDU) (map[[2]string]string, error) {
	if len(states) == 1 {
		return states[0], nil
	}
	fetch := func(eid string) (*pdu.PDU, bool) {
		for _, p := range pending {
			if string(p.InternalMeta.EventID) == eid {
				return p, true
			}
		}
		ps, err := w.pdus([]id.EventID{id.EventID(eid)})
		if err != nil || ps[0] == nil {
			return nil, false
		}
		return ps[0], true
	}
	return resolveState(id.RoomVersion(room.Version), states, fetch, getKey)
}

// stateOfEvents collects the states after each of the given events.
func (w *WriteTx) stateOfEvents(ids []string) ([]map[[2]string]string, error) {
	out := make([]map[[2]string]string, 0, len(ids))
	for _, eid := range ids {
		rec, err := w.Event(eid)
		if err != nil {
			return nil, fmt.Errorf("event %s is not stored", eid)
		}
		st, err := w.StateAfterEvent(rec)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

// replaceCurrentState makes next the room's current state: every changed
// key is written (with the state log at fresh positions) and every
// membership it changes is updated. Keys are visited in sorted order.
// pending is an event not stored yet that next may name.
func (w *WriteTx) replaceCurrentState(room *RoomRecord, next map[[2]string]string, pending *EventRecord) error {
	cur := w.CurrentState(room.RoomID)
	keys := make([][2]string, 0, len(next)+len(cur))
	for k := range next {
		if cur[k] != next[k] {
			keys = append(keys, k)
		}
	}
	for k := range cur {
		if _, ok := next[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b [2]string) int {
		if a[0] != b[0] {
			return strings.Compare(a[0], b[0])
		}
		return strings.Compare(a[1], b[1])
	})
	for _, k := range keys {
		eid := next[k]
		pos := w.NextPos()
		if eid == "" {
			if err := w.del(bRoomState, key(room.RoomID, k[0], k[1])); err != nil {
				return err
			}
			if err := w.putJSON(bStateLog, append(prefix(room.RoomID), u64(uint64(pos))...),
				StateChange{Type: k[0], StateKey: k[1]}); err != nil {
				return err
			}
			continue
		}
		if err := w.setState(room.RoomID, k[0], k[1], eid, pos); err != nil {
			return err
		}
		if k[0] == "m.room.member" {
			rec := pending
			if rec == nil || rec.EventID != eid {
				var err error
				if rec, err = w.Event(eid); err != nil {
					return err
				}
			}
			membership := gjson.GetBytes(rec.PDU, "content.membership").Str
			if err := w.setMembership(room.RoomID, k[1], membership, eid, pos); err != nil {
				return err
			}
		}
	}
	w.touchRoom(room.RoomID)
	return nil
}

// sameEvents reports whether two event ID lists hold the same set.
func sameEvents(a []id.EventID, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, string(x)) {
			return false
		}
	}
	return true
}
