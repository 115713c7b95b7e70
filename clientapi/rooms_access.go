package clientapi

import (
	"math"
	"net/http"
	"sort"

	"github.com/ganglion/ganglion/fsm"
)

// Who may read what of a room: state for members and former members. The
// history visibility rules per event are roomVisibility's (sync_visibility.go),
// shared with /sync so both show the same history.

const (
	evHistoryVisibility = "m.room.history_visibility"
	evMember            = "m.room.member"
)

var errNotInRoom = fsm.Errorf(http.StatusForbidden, "M_FORBIDDEN", "you are not a member of this room")

// readAccess is the state a caller may read: the current state (joined, or
// a world-readable room), or the state as of their departure.
type readAccess struct {
	room    *fsm.RoomRecord
	current bool
	pos     int64 // when !current: the caller's leave or ban event
}

// roomReadAccess applies "members see current state, former members see
// the state when they left, others get 403" (room_state.yaml).
func roomReadAccess(rt *fsm.ReadTx, roomID, userID string) (*readAccess, *fsm.Error) {
	room, err := rt.Room(roomID)
	if err != nil || rt.Forgotten(userID, roomID) {
		return nil, errNotInRoom
	}
	if m := rt.Membership(userID, roomID); m != nil {
		switch m.Membership {
		case "join":
			return &readAccess{room: room, current: true}, nil
		case "leave", "ban":
			return &readAccess{room: room, pos: m.Pos}, nil
		}
	}
	if worldReadable(rt, roomID) {
		return &readAccess{room: room, current: true}, nil
	}
	return nil, errNotInRoom
}

// stateIDs is the readable state, optionally as of an earlier boundary
// (at > 0: positions before at).
func (ra *readAccess) stateIDs(rt *fsm.ReadTx, at int64) map[[2]string]string {
	pos := int64(math.MaxInt64)
	if !ra.current {
		pos = ra.pos
	}
	if at > 0 && at-1 < pos {
		pos = at - 1
	}
	if pos == math.MaxInt64 {
		return rt.CurrentState(ra.room.RoomID)
	}
	return rt.StateAt(ra.room.RoomID, pos)
}

// visibleUpperBound is the last position the viewer could possibly see,
// so a scan for a user who left stops at their departure instead of
// walking (and hiding) everything after it. Joined and invited users, and
// rooms world-readable at any time since, have no bound.
func visibleUpperBound(v *roomVisibility) int64 {
	from := int64(-1)
	if n := len(v.mem); n > 0 {
		last := v.mem[n-1]
		if last.value == "join" || last.value == "invite" {
			return math.MaxInt64
		}
		from = last.pos
	}
	if valueBefore(v.hv, from+1, "shared") == "world_readable" {
		return math.MaxInt64
	}
	for _, pv := range v.hv {
		if pv.pos > from && pv.value == "world_readable" {
			return math.MaxInt64
		}
	}
	return from
}

// sortedStateKeys orders a state map by (type, state key) for stable output.
func sortedStateKeys(state map[[2]string]string) [][2]string {
	keys := make([][2]string, 0, len(state))
	for k := range state {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i][0] != keys[j][0] {
			return keys[i][0] < keys[j][0]
		}
		return keys[i][1] < keys[j][1]
	})
	return keys
}

// stateEvents loads and formats a state map in stable order; keep (when
// set) filters the records.
func stateEvents(rt *fsm.ReadTx, state map[[2]string]string, viewer *Caller, keep func(*fsm.EventRecord) bool) []*ClientEvent {
	out := []*ClientEvent{}
	for _, k := range sortedStateKeys(state) {
		rec, err := rt.Event(state[k])
		if err != nil || (keep != nil && !keep(rec)) {
			continue
		}
		out = append(out, formatEvent(rt, rec, viewer))
	}
	return out
}
