package clientapi

import (
	"context"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/ganglion/ganglion/fsm"
)

// GET /events: the original design's event stream. It long-polls like
// /sync and returns room events (client format, with room_id) across the
// caller's rooms, or one world-readable room with ?room_id= (previews).
// Its tokens are /sync tokens.

const (
	defaultEventStreamWait  = 30 * time.Second
	defaultEventStreamLimit = 100
	maxEventStreamLimit     = 1000
)

type eventStreamResponse struct {
	Start string `json:"start"`
	End   string `json:"end"`
	Chunk []any  `json:"chunk"`
}

func (a *API) eventStream(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	c := callerOf(r)
	q := r.URL.Query()
	timeout := defaultEventStreamWait
	if q.Has("timeout") {
		var err error
		if timeout, err = longPollTimeout(q.Get("timeout")); err != nil {
			writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "timeout must be an integer")
			return
		}
	}
	limit := defaultEventStreamLimit
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "limit must be a positive integer")
			return
		}
		limit = min(n, maxEventStreamLimit)
	}
	var from *syncToken
	if s := q.Get("from"); s != "" {
		tok, err := parseSyncToken(s)
		if err != nil {
			writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "invalid from token")
			return
		}
		from = &tok
	}
	roomID := q.Get("room_id")
	a.markPresence(c.UserID, "online")

	ctx := r.Context()
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	if from != nil && !a.waitForToken(ctx, timeout, from.Pos) {
		writeJSON(w, http.StatusOK, eventStreamResponse{Start: from.String(), End: from.String(), Chunk: []any{}})
		return
	}
	for {
		notified, applied := a.node.Notifier().Changed()
		resp, allowed, err := a.computeEventStream(c, from, roomID, limit)
		switch {
		case err != nil:
			writeErr(w, err)
			return
		case !allowed:
			writeError(w, http.StatusForbidden, "M_FORBIDDEN", "you are not in this room and it is not world-readable")
			return
		case len(resp.Chunk) > 0 || timeout == 0:
			writeJSON(w, http.StatusOK, resp)
			return
		}
		if from == nil {
			// Without a from token the stream starts now: keep that point.
			tok, _ := parseSyncToken(resp.Start)
			from = &tok
		}
		if !a.park(ctx, a.streamWatch(c.UserID, roomID, applied), notified, nil) {
			if r.Context().Err() == nil {
				writeJSON(w, http.StatusOK, resp)
			}
			return
		}
	}
}

// streamRoom is one room the stream reads, with the viewer's visibility
// when their membership changed inside the window (nil: all visible).
type streamRoom struct {
	id   string
	vis  *roomVisibility
	upto int64
}

// computeEventStream reads the events after from in one view. allowed is
// false when room_id names a room the caller may not read.
func (a *API) computeEventStream(c *Caller, from *syncToken, roomID string, limit int) (*eventStreamResponse, bool, error) {
	resp := &eventStreamResponse{Chunk: []any{}}
	allowed := true
	eph := a.eph.Serial()
	err := a.store.View(func(rt *fsm.ReadTx) error {
		upto := fsm.MaxPosAt(rt.AppliedIndex())
		start := upto
		if from != nil {
			start = from.Pos
			upto = max(upto, start)
		}
		resp.Start = syncToken{Pos: start, Eph: eph}.String()
		var rooms []streamRoom
		if roomID != "" {
			m := rt.Membership(c.UserID, roomID)
			if _, err := rt.Room(roomID); err != nil || (m == nil && !worldReadable(rt, roomID)) {
				allowed = false
				return nil
			}
			rooms = append(rooms, streamRoom{roomID, loadVisibility(rt, roomID, c.UserID), upto})
		} else {
			for id, m := range rt.UserRooms(c.UserID) {
				switch {
				case m.Membership == "join" && m.Pos <= start:
					rooms = append(rooms, streamRoom{id, nil, upto})
				case m.Pos > start:
					rooms = append(rooms, streamRoom{id, loadVisibility(rt, id, c.UserID), upto})
				}
			}
		}
		recs, end := collectStream(rt, rooms, start, upto, limit)
		for _, rec := range recs {
			resp.Chunk = append(resp.Chunk, formatEvent(rt, rec, c))
		}
		resp.End = syncToken{Pos: end, Eph: eph}.String()
		return nil
	})
	return resp, allowed, err
}

// collectStream merges the rooms' events with start < pos <= upto in
// stream order, at most limit of them, and returns the position the
// answer is complete up to (the next from).
func collectStream(rt *fsm.ReadTx, rooms []streamRoom, start, upto int64, limit int) ([]*fsm.EventRecord, int64) {
	var all []*fsm.EventRecord
	end := upto
	for _, room := range rooms {
		roomRecord, err := rt.Room(room.id)
		if err != nil || roomRecord.LastPos <= start {
			continue
		}
		n, scanned := 0, 0
		rt.RoomEvents(room.id, start, true, 0, func(rec *fsm.EventRecord) bool {
			if rec.Pos > end {
				return false
			}
			if scanned++; scanned > limit+maxTimelineScan || n >= limit {
				// This room has more: the answer is complete only below here.
				end = rec.Pos - 1
				return false
			}
			if rec.Rejected || (room.vis != nil && !room.vis.canSee(rec)) {
				return true
			}
			all = append(all, rec)
			n++
			return true
		})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Pos < all[j].Pos })
	out := all[:0]
	for _, rec := range all {
		if rec.Pos <= end {
			out = append(out, rec)
		}
	}
	if len(out) > limit {
		out = out[:limit]
		end = out[limit-1].Pos
	}
	return out, end
}
