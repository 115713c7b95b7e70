package clientapi

import (
	"slices"
	"sort"

	"github.com/tidwall/gjson"

	"github.com/ganglion/ganglion/fsm"
)

// State for /sync: the state at the start of a timeline, the delta over a
// gap, lazy-loaded members and the room summary.

// maxStateChain bounds walks back through an event's replaced-state chain.
const maxStateChain = 64

// stateBefore is the room's state just before position t: current state
// with every key changed at or after t walked back through the replaced
// event chain (each stored state event records the one it replaced). A
// broken or long chain falls back to replaying the state log.
func (s *syncer) stateBefore(roomID string, t int64) map[[2]string]string {
	cur := s.rt.CurrentState(roomID)
	if !s.rt.HasStateChangesFrom(roomID, t) {
		return cur
	}
	changed := map[[2]string]bool{}
	s.rt.StateChangesFrom(roomID, t, func(_ int64, sc fsm.StateChange) bool {
		changed[[2]string{sc.Type, sc.StateKey}] = true
		return true
	})
	for k := range changed {
		id, ok := s.walkBack(cur[k], t)
		if !ok {
			return s.rt.StateAt(roomID, t-1)
		}
		if id == "" {
			delete(cur, k)
		} else {
			cur[k] = id
		}
	}
	return cur
}

// walkBack follows replaced-state links from id to the first event stored
// before t ("" when the key did not exist then); ok is false when the chain
// cannot be followed.
func (s *syncer) walkBack(id string, t int64) (string, bool) {
	for i := 0; i < maxStateChain; i++ {
		if id == "" {
			return "", true
		}
		ev := s.event(id)
		if ev == nil {
			return "", false
		}
		if ev.Pos < t {
			return id, true
		}
		id = ev.PrevState
	}
	return "", false
}

// stateDelta lists the state that changed over the gap since < pos < t
// (the last value of each key), and whether any membership changed after
// since at all (the summary is resent then).
func (s *syncer) stateDelta(roomID string, since, t int64) (ids []string, memberChanged bool) {
	last := map[[2]string]string{}
	var order [][2]string
	s.rt.StateChangesFrom(roomID, since+1, func(pos int64, sc fsm.StateChange) bool {
		if sc.Type == "m.room.member" {
			memberChanged = true
		}
		if pos < t {
			k := [2]string{sc.Type, sc.StateKey}
			if _, seen := last[k]; !seen {
				order = append(order, k)
			}
			last[k] = sc.EventID
		}
		return true
	})
	for _, k := range order {
		ids = append(ids, last[k])
	}
	return ids, memberChanged
}

// timelineSenders are the users whose member events lazy loading sends.
func timelineSenders(tl roomTimeline) map[string]bool {
	out := map[string]bool{}
	for _, rec := range tl.recs {
		out[rec.Sender] = true
	}
	return out
}

// fullStateIDs selects from a full state map what the state filter asks
// for; with lazy loading only the members who sent timeline events and the
// summary's heroes (an unnamed room's name is made of them), plus the
// caller on a full_state request, as Synapse does (sytest
// 31sync/15lazy-members.pl counts the member events exactly).
func (s *syncer) fullStateIDs(roomID string, st map[[2]string]string, tl roomTimeline) []string {
	lazy := s.f.Room.State.LazyLoadMembers
	var want map[string]bool
	if lazy {
		want = timelineSenders(tl)
		if s.p.fullState {
			want[s.user] = true
		}
		for _, h := range s.heroes(roomID) {
			want[h] = true
		}
	}
	ids := make([]string, 0, len(st))
	for k, id := range st {
		if lazy && k[0] == "m.room.member" && !want[k[1]] {
			continue
		}
		ids = append(ids, id)
	}
	return ids
}

// deltaStateIDs adds, under lazy loading, the member events (as of the
// timeline's start) of timeline senders that the gap does not carry and
// the device was not sent before (unless include_redundant_members).
func (s *syncer) deltaStateIDs(roomID string, delta []string, tl roomTimeline) []string {
	if !s.f.Room.State.LazyLoadMembers || len(tl.recs) == 0 {
		return delta
	}
	redundant := s.f.Room.State.IncludeRedundantMembers
	lm := s.a.lazy
	have := map[string]bool{}
	for _, id := range delta {
		have[id] = true
	}
	for _, rec := range tl.recs {
		have[rec.EventID] = true
	}
	senders := timelineSenders(tl)
	users := make([]string, 0, len(senders))
	for u := range senders {
		users = append(users, u)
	}
	sort.Strings(users)
	for _, u := range users {
		id, ok := s.walkBack(s.rt.StateEventID(roomID, "m.room.member", u), tl.start)
		if ok && id != "" && !have[id] && (redundant || !lm.sent(s.p.caller, roomID, u, id, s.since)) {
			have[id] = true
			delta = append(delta, id)
		}
	}
	return delta
}

// renderState formats state events that pass the state filter, in stream
// order.
func (s *syncer) renderState(ids []string) []any {
	recs := make([]*fsm.EventRecord, 0, len(ids))
	sf := &s.f.Room.State
	for _, id := range ids {
		if rec := s.event(id); rec != nil && sf.allowsEvent(rec) {
			recs = append(recs, rec)
		}
	}
	slices.SortFunc(recs, func(a, b *fsm.EventRecord) int {
		switch {
		case a.Pos < b.Pos:
			return -1
		case a.Pos > b.Pos:
			return 1
		}
		return 0
	})
	out := make([]any, 0, len(recs))
	for _, rec := range recs {
		out = append(out, s.render(rec))
	}
	return out
}

type roomSummary struct {
	Heroes  []string `json:"m.heroes,omitempty"`
	Joined  *int     `json:"m.joined_member_count,omitempty"`
	Invited *int     `json:"m.invited_member_count,omitempty"`
}

type memberPos struct {
	user string
	pos  int64
}

// roomMembers lists current members by membership, each in stream order.
func (s *syncer) roomMembers(roomID string) map[string][]memberPos {
	out := map[string][]memberPos{}
	for k := range s.rt.CurrentState(roomID, "m.room.member") {
		if m := s.rt.Membership(k[1], roomID); m != nil {
			out[m.Membership] = append(out[m.Membership], memberPos{k[1], m.Pos})
		}
	}
	for _, l := range out {
		slices.SortFunc(l, func(a, b memberPos) int {
			if a.pos != b.pos {
				if a.pos < b.pos {
					return -1
				}
				return 1
			}
			if a.user < b.user {
				return -1
			}
			return 1
		})
	}
	return out
}

func (s *syncer) summaryFrom(roomID string, members map[string][]memberPos) *roomSummary {
	joined, invited := len(members["join"]), len(members["invite"])
	return &roomSummary{Heroes: s.heroesFrom(roomID, members), Joined: &joined, Invited: &invited}
}

// heroes names up to five other members when the room has neither a name
// nor a canonical alias: joined and invited first, else those who left.
func (s *syncer) heroes(roomID string) []string {
	return s.heroesFrom(roomID, s.roomMembers(roomID))
}

func (s *syncer) heroesFrom(roomID string, members map[string][]memberPos) []string {
	if s.stateContent(roomID, "m.room.name", "name") != "" ||
		s.stateContent(roomID, "m.room.canonical_alias", "alias") != "" {
		return nil
	}
	pick := func(lists ...[]memberPos) []string {
		var all []memberPos
		for _, l := range lists {
			all = append(all, l...)
		}
		slices.SortFunc(all, func(a, b memberPos) int {
			if a.pos < b.pos {
				return -1
			}
			if a.pos > b.pos {
				return 1
			}
			return 0
		})
		var out []string
		for _, m := range all {
			if m.user != s.user && len(out) < 5 {
				out = append(out, m.user)
			}
		}
		return out
	}
	if h := pick(members["join"], members["invite"]); len(h) > 0 {
		return h
	}
	return pick(members["leave"], members["ban"])
}

func (s *syncer) stateContent(roomID, evType, field string) string {
	id := s.rt.StateEventID(roomID, evType, "")
	if id == "" {
		return ""
	}
	rec := s.event(id)
	if rec == nil {
		return ""
	}
	return gjson.GetBytes(rec.PDU, "content."+field).Str
}
