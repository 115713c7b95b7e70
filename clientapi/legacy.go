package clientapi

import (
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/ganglion/ganglion/fsm"
)

// The original design's snapshot APIs, removed from the modern spec but
// still used by old clients and for room previews: GET /initialSync and
// GET /rooms/{roomId}/initialSync. Their tokens are /sync tokens, so /events
// and /sync continue from them.

type legacyChunk struct {
	Chunk []any  `json:"chunk"`
	Start string `json:"start,omitempty"`
	End   string `json:"end"`
}

// legacyRoomInfo is one entry of /initialSync's rooms.
type legacyRoomInfo struct {
	RoomID      string       `json:"room_id"`
	Membership  string       `json:"membership"`
	Inviter     string       `json:"inviter,omitempty"`
	Invite      any          `json:"invite,omitempty"`
	Messages    *legacyChunk `json:"messages,omitempty"`
	State       []any        `json:"state,omitempty"`
	Visibility  string       `json:"visibility"`
	AccountData []any        `json:"account_data,omitempty"`
}

// roomSnapshot is GET /rooms/{roomId}/initialSync's answer.
type roomSnapshot struct {
	RoomID      string      `json:"room_id"`
	Membership  string      `json:"membership,omitempty"` // absent when peeking
	Messages    legacyChunk `json:"messages"`
	State       []any       `json:"state"`
	Presence    []any       `json:"presence"`
	Receipts    []any       `json:"receipts"`
	Visibility  string      `json:"visibility"`
	AccountData []any       `json:"account_data"`
}

// legacyLimit parses the per-room message limit (default 10).
func legacyLimit(s string) (int, bool) {
	if s == "" {
		return defaultTimelineLimit, true
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, false
	}
	return min(n, maxTimelineLimit), true
}

// newLegacySyncer is a syncer for snapshot reads: no token, no filter but
// the message limit.
func newLegacySyncer(a *API, rt *fsm.ReadTx, c *Caller, limit int) *syncer {
	f := &syncFilter{}
	f.Room.Timeline.Limit = &limit
	return newSyncer(a, rt, &syncParams{caller: c, filter: f}, a.eph.Serial())
}

// renderFull formats with room_id, as the legacy APIs do.
func (s *syncer) renderFull(recs []*fsm.EventRecord) []any {
	out := make([]any, 0, len(recs))
	for _, rec := range recs {
		out = append(out, formatEvent(s.rt, rec, s.p.caller))
	}
	return out
}

// snapshotRoom reads a room's messages and state as the user may see them:
// now when joined (or peeking), as of the leave otherwise.
func (s *syncer) snapshotRoom(roomID string, m *fsm.MembershipRecord) (legacyChunk, []any) {
	upto := s.upto
	end := syncToken{Pos: s.upto, Eph: s.ephNow}.String()
	if m != nil && m.Membership != "join" {
		upto = m.Pos
		end = boundaryToken(m.Pos+1, s.ephNow)
	}
	tl := s.timeline(roomID, -1, upto, s.visibility(roomID))
	chunk := legacyChunk{Chunk: s.renderFull(tl.recs), Start: boundaryToken(tl.start, s.ephNow), End: end}
	ids := make([]string, 0)
	for _, id := range s.stateBefore(roomID, upto+1) {
		ids = append(ids, id)
	}
	var recs []*fsm.EventRecord
	for _, id := range ids {
		if rec := s.event(id); rec != nil {
			recs = append(recs, rec)
		}
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].Pos < recs[j].Pos })
	return chunk, s.renderFull(recs)
}

func (s *syncer) roomAccountDataList(roomID string) []any {
	_, rooms := s.rt.AccountDataSince(s.user, -1)
	out := []any{}
	for _, rec := range rooms[roomID] {
		out = append(out, typeEvent{Type: rec.Type, Content: rec.Content})
	}
	return out
}

func roomVisibilityName(rt *fsm.ReadTx, roomID string) string {
	if rr, err := rt.Room(roomID); err == nil && rr.Published {
		return "public"
	}
	return "private"
}

// legacyPresence formats presence the old way: content carries user_id.
func legacyPresence(userID string, p PresenceState, now time.Time) any {
	ev := presenceEventOf(userID, p, now)
	ev.Content["user_id"] = userID
	return ev
}

func (a *API) initialSync(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	c := callerOf(r)
	q := r.URL.Query()
	limit, ok := legacyLimit(q.Get("limit"))
	if !ok {
		writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "limit must be a non-negative integer")
		return
	}
	archived := q.Get("archived") == "true"
	a.markPresence(c.UserID, "online")
	resp := map[string]any{}
	err := a.store.View(func(rt *fsm.ReadTx) error {
		s := newLegacySyncer(a, rt, c, limit)
		s.myRooms = rt.UserRooms(c.UserID)
		global, roomAD := rt.AccountDataSince(c.UserID, -1)
		rooms := []legacyRoomInfo{}
		receipts := []any{}
		for _, roomID := range sortedRoomIDs(s.myRooms) {
			m := s.myRooms[roomID]
			info := legacyRoomInfo{RoomID: roomID, Membership: m.Membership, Visibility: roomVisibilityName(rt, roomID)}
			switch m.Membership {
			case "invite":
				if ev := s.event(m.EventID); ev != nil {
					info.Inviter = ev.Sender
					info.Invite = formatEvent(rt, ev, c)
				}
				rooms = append(rooms, info)
				continue
			case "join":
				if content := rt.ReceiptsSince(roomID, c.UserID, -1); content != nil {
					receipts = append(receipts, map[string]any{"type": "m.receipt", "room_id": roomID, "content": content})
				}
			case "leave", "ban":
				if !archived || rt.Forgotten(c.UserID, roomID) {
					continue
				}
			default:
				continue
			}
			chunk, state := s.snapshotRoom(roomID, &m)
			info.Messages, info.State = &chunk, state
			info.AccountData = []any{}
			for _, rec := range roomAD[roomID] {
				info.AccountData = append(info.AccountData, typeEvent{Type: rec.Type, Content: rec.Content})
			}
			rooms = append(rooms, info)
		}
		accountData := []any{}
		for _, rec := range global {
			accountData = append(accountData, typeEvent{Type: rec.Type, Content: rec.Content})
		}
		presence := []any{}
		now := time.Now()
		states := a.eph.PresenceSince(0)
		for _, u := range legacySortedKeys(states) {
			if s.sharesRoom(u) {
				presence = append(presence, legacyPresence(u, states[u], now))
			}
		}
		resp["end"] = syncToken{Pos: s.upto, Eph: s.ephNow}.String()
		resp["rooms"], resp["presence"], resp["account_data"], resp["receipts"] = rooms, presence, accountData, receipts
		return nil
	})
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (a *API) roomInitialSync(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	c := callerOf(r)
	roomID := p.ByName("roomId")
	limit, ok := legacyLimit(r.URL.Query().Get("limit"))
	if !ok {
		writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "limit must be a non-negative integer")
		return
	}
	var resp *roomSnapshot
	err := a.store.View(func(rt *fsm.ReadTx) error {
		if _, err := rt.Room(roomID); err != nil {
			return nil
		}
		m := rt.Membership(c.UserID, roomID)
		joinedOrLeft := m != nil && (m.Membership == "join" || m.Membership == "leave" || m.Membership == "ban")
		if !joinedOrLeft && !worldReadable(rt, roomID) {
			return nil
		}
		s := newLegacySyncer(a, rt, c, limit)
		resp = &roomSnapshot{RoomID: roomID, Visibility: roomVisibilityName(rt, roomID),
			Presence: []any{}, Receipts: []any{}}
		if !joinedOrLeft {
			m = nil // peeking
		} else {
			resp.Membership = m.Membership
		}
		resp.Messages, resp.State = s.snapshotRoom(roomID, m)
		if m == nil || m.Membership == "join" {
			now := time.Now()
			members := rt.RoomMembers(roomID)
			for _, u := range legacySortedKeys(members) {
				if members[u] != "join" {
					continue
				}
				if ps, ok := a.eph.Presence(u); ok {
					resp.Presence = append(resp.Presence, legacyPresence(u, ps, now))
				}
			}
			if content := rt.ReceiptsSince(roomID, c.UserID, -1); content != nil {
				resp.Receipts = append(resp.Receipts, map[string]any{"type": "m.receipt", "room_id": roomID, "content": content})
			}
		}
		resp.AccountData = s.roomAccountDataList(roomID)
		return nil
	})
	switch {
	case err != nil:
		writeErr(w, err)
	case resp == nil:
		writeError(w, http.StatusForbidden, "M_FORBIDDEN", "you are not in this room and it is not world-readable")
	default:
		writeJSON(w, http.StatusOK, resp)
	}
}

func sortedRoomIDs(m map[string]fsm.MembershipRecord) []string {
	return legacySortedKeys(m)
}

func legacySortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// legacyGetEvent is GET /events/{eventId}: the event if the caller may see
// it, else 404 (the spec does not tell the two apart).
func (a *API) legacyGetEvent(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	c := callerOf(r)
	var out *ClientEvent
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		rec, err := rt.Event(p.ByName("eventId"))
		if err != nil || rec.Rejected {
			return nil
		}
		if loadVisibility(rt, rec.RoomID, c.UserID).canSee(rec) {
			out = formatEvent(rt, rec, c)
		}
		return nil
	})
	if out == nil {
		writeError(w, http.StatusNotFound, "M_NOT_FOUND", "event not found")
		return
	}
	writeJSON(w, http.StatusOK, out)
}
