package clientapi

import (
	"slices"

	"github.com/tidwall/gjson"

	"github.com/ganglion/ganglion/fsm"
)

// History visibility (client-server spec, "Room History Visibility") for
// the sync and legacy streams: whether a user may see an event depends on
// the room's history_visibility and the user's membership at that event.

// posValue is one change of a state value at a stream position.
type posValue struct {
	pos   int64
	value string
}

// roomVisibility holds, for one room and viewer, the history of the
// room's history_visibility and of the viewer's membership.
type roomVisibility struct {
	user string
	hv   []posValue // oldest first
	mem  []posValue // oldest first
}

func (s *syncer) visibility(roomID string) *roomVisibility {
	if v, ok := s.vis[roomID]; ok {
		return v
	}
	v := loadVisibilityWith(s.rt, s.event, roomID, s.user)
	s.vis[roomID] = v
	return v
}

func loadVisibility(rt *fsm.ReadTx, roomID, user string) *roomVisibility {
	get := func(id string) *fsm.EventRecord {
		ev, err := rt.Event(id)
		if err != nil {
			return nil
		}
		return ev
	}
	return loadVisibilityWith(rt, get, roomID, user)
}

// loadVisibilityWith reads events through get (a sync's per-request cache).
func loadVisibilityWith(rt *fsm.ReadTx, get func(string) *fsm.EventRecord, roomID, user string) *roomVisibility {
	return &roomVisibility{
		user: user,
		hv:   valueHistory(rt, get, roomID, "m.room.history_visibility", "", "content.history_visibility"),
		mem:  valueHistory(rt, get, roomID, "m.room.member", user, "content.membership"),
	}
}

// valueHistory lists a state key's values over time by following the
// replaced-state links from the current event; a chain too long to follow
// falls back to the room's state log.
func valueHistory(rt *fsm.ReadTx, get func(string) *fsm.EventRecord, roomID, evType, stateKey, field string) []posValue {
	var out []posValue
	id := rt.StateEventID(roomID, evType, stateKey)
	for i := 0; id != "" && i < maxStateChain; i++ {
		ev := get(id)
		if ev == nil {
			break
		}
		out = append(out, posValue{ev.Pos, gjson.GetBytes(ev.PDU, field).Str})
		id = ev.PrevState
	}
	if id != "" {
		out = out[:0]
		for _, ch := range rt.StateHistory(roomID, [2]string{evType, stateKey}) {
			if ev := get(ch.EventID); ev != nil {
				out = append(out, posValue{ch.Pos, gjson.GetBytes(ev.PDU, field).Str})
			}
		}
		return out
	}
	slices.Reverse(out)
	return out
}

// valueBefore is the value in force just before pos.
func valueBefore(h []posValue, pos int64, dflt string) string {
	v := dflt
	for _, pv := range h {
		if pv.pos >= pos {
			break
		}
		v = pv.value
	}
	return v
}

// membershipAt is the viewer's membership at an event, counting the event
// itself (unsigned.membership; "leave" before any membership).
func (v *roomVisibility) membershipAt(pos int64) string {
	return valueBefore(v.mem, pos+1, "leave")
}

// joinedFrom reports whether the user joined at or after pos.
func (v *roomVisibility) joinedFrom(pos int64) bool {
	for _, pv := range v.mem {
		if pv.pos >= pos && pv.value == "join" {
			return true
		}
	}
	return false
}

// seesEverything reports whether every event of the room is visible: the
// user is joined now and the history was never restricted to "invited" or
// "joined" (so even events from before the join are shared).
func (v *roomVisibility) seesEverything() bool {
	if len(v.mem) == 0 || v.mem[len(v.mem)-1].value != "join" {
		return false
	}
	for _, pv := range v.hv {
		if pv.value == "invited" || pv.value == "joined" {
			return false
		}
	}
	return true
}

// canSee applies the spec's rules to one event. The user always sees their
// own membership events, so a rejected invite or a kick still shows up.
func (v *roomVisibility) canSee(rec *fsm.EventRecord) bool {
	if rec.Type == "m.room.member" && rec.StateKey != nil && *rec.StateKey == v.user {
		return true
	}
	hvs := []string{valueBefore(v.hv, rec.Pos, "shared")}
	if rec.Type == "m.room.history_visibility" && rec.StateKey != nil && *rec.StateKey == "" {
		hvs = append(hvs, gjson.GetBytes(rec.PDU, "content.history_visibility").Str)
	}
	mem := valueBefore(v.mem, rec.Pos, "leave")
	for _, hv := range hvs {
		switch {
		case hv == "world_readable":
			return true
		case mem == "join":
			return true
		case hv == "invited" && mem == "invite":
			return true
		case hv != "invited" && hv != "joined" && v.joinedFrom(rec.Pos):
			return true // "shared", and any value not understood
		}
	}
	return false
}

// ignoredUsers is the user's m.ignored_user_list: their non-state events
// and invites are not sent to the user (spec "Ignoring Users").
func ignoredUsers(rt *fsm.ReadTx, userID string) map[string]bool {
	rec, err := rt.AccountData(userID, "", "m.ignored_user_list")
	if err != nil {
		return nil
	}
	var out map[string]bool
	gjson.GetBytes(rec.Content, "ignored_users").ForEach(func(k, _ gjson.Result) bool {
		if out == nil {
			out = map[string]bool{}
		}
		out[k.Str] = true
		return true
	})
	return out
}

// hiddenByIgnore reports an event an ignored user sent (state stays: it
// shapes the room).
func hiddenByIgnore(ignored map[string]bool, rec *fsm.EventRecord) bool {
	return len(ignored) > 0 && rec.StateKey == nil && ignored[rec.Sender]
}

// worldReadable reports whether the room's current history_visibility
// lets anyone read it (room previews).
func worldReadable(rt *fsm.ReadTx, roomID string) bool {
	rec, err := rt.StateEvent(roomID, "m.room.history_visibility", "")
	return err == nil && gjson.GetBytes(rec.PDU, "content.history_visibility").Str == "world_readable"
}
