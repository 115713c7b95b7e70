package clientapi

import (
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/julienschmidt/httprouter"

	"github.com/ganglion/ganglion/fsm"
)

// Pagination tokens are boundaries between events: for the boundary X,
// "before" is pos < X and "after" is pos >= X. This file writes them as
// "t<X>"; a /sync token "s<P>_..." covers P, so it is the boundary P+1.
// History backfilled over federation lies before the whole timeline: its
// k-th event has the virtual position -k, so a boundary X <= 0 is written
// "b<-X>" (only /messages and /context read those, parseHistoryToken).

func pageToken(x int64) string {
	if x < 0 {
		return "b" + strconv.FormatInt(-x, 10)
	}
	return "t" + strconv.FormatInt(x, 10)
}

func parsePageToken(s string) (int64, bool) {
	if rest, ok := strings.CutPrefix(s, "t"); ok {
		x, err := strconv.ParseInt(rest, 10, 64)
		return x, err == nil && x >= 0
	}
	if rest, ok := strings.CutPrefix(s, "s"); ok {
		digits, _, _ := strings.Cut(rest, "_")
		p, err := strconv.ParseInt(digits, 10, 64)
		return p + 1, err == nil && p >= 0 && p < math.MaxInt64
	}
	return 0, false
}

// waitForBoundary lets this node catch up (bounded) with a token minted by
// a node further ahead (invariant 3).
func (a *API) waitForBoundary(r *http.Request, boundary int64) {
	if boundary > 0 {
		a.waitForToken(r.Context(), 0, boundary-1)
	}
}

const (
	defaultPageLimit = 10
	maxPageLimit     = 1000
	// maxScan bounds the events one request examines, so history hidden by
	// visibility or a filter costs a bounded amount per page.
	maxScan = 5000
)

// parseLimit reads ?limit (default def, capped at maxPageLimit).
func parseLimit(s string, def int) (int, bool) {
	if s == "" {
		return def, true
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, false
	}
	return min(n, maxPageLimit), true
}

// parseRoomEventFilter reads the inline JSON RoomEventFilter of /messages
// and /context.
func parseRoomEventFilter(s string) (*roomEventFilter, bool) {
	f := &roomEventFilter{}
	if s == "" {
		return f, true
	}
	if json.Unmarshal([]byte(s), f) != nil {
		return nil, false
	}
	return f, true
}

// roomReader is what one viewer may read of one room's timeline.
type roomReader struct {
	rt      *fsm.ReadTx
	room    *fsm.RoomRecord
	view    *roomVisibility
	ignored map[string]bool
	start   *historyStart // the start of the stored timeline, loaded on first use
}

// timelineAccess admits members and former members, and anyone to a
// world-readable room; others get 403 (message_pagination.yaml).
func timelineAccess(rt *fsm.ReadTx, roomID, userID string) (*roomReader, *fsm.Error) {
	acc, ferr := roomReadAccess(rt, roomID, userID)
	if ferr != nil {
		return nil, ferr
	}
	return &roomReader{rt: rt, room: acc.room, view: loadVisibility(rt, roomID, userID), ignored: ignoredUsers(rt, userID)}, nil
}

// visibleEvent loads an event of this room the viewer may see.
func (rr *roomReader) visibleEvent(eventID string) (*fsm.EventRecord, bool) {
	rec, err := rr.rt.Event(eventID)
	if err != nil || rec.RoomID != rr.room.RoomID || rec.Rejected || !rr.canSee(rec) {
		return nil, false
	}
	return rec, true
}

// page is one scan of the history.
type page struct {
	events   []*fsm.EventRecord
	lastPos  int64 // last position examined, valid when examined > 0
	more     bool  // the scan stopped before running out of events
	stopped  bool  // the scan reached 'to' or the end of what the viewer may see
	examined int
	// needHistory: a backward scan ran out of stored history before the
	// room's m.room.create, so more may be backfilled over federation.
	needHistory bool
}

// scan walks the history from the boundary (backward: pos < from;
// forward: pos >= from), keeping visible events that pass keep, up to
// limit. stop ends the walk at a position (the 'to' token, the viewer's
// departure). The backfill stream (messages_backfill.go) continues the
// timeline backward.
func (rr *roomReader) scan(from int64, forward bool, limit int, keep func(*fsm.EventRecord) bool, stop func(int64) bool) *page {
	pg := &page{}
	upper := visibleUpperBound(rr.view)
	if !forward && from > upper {
		from = upper + 1
	}
	visit := func(e *fsm.EventRecord) bool {
		if (forward && e.Pos > upper) || (stop != nil && stop(e.Pos)) {
			pg.stopped = true
			return false
		}
		if len(pg.events) >= limit || pg.examined >= maxScan {
			pg.more = true
			return false
		}
		pg.examined++
		pg.lastPos = e.Pos
		if !e.Rejected && rr.canSee(e) && !hiddenByIgnore(rr.ignored, e) && (keep == nil || keep(e)) {
			pg.events = append(pg.events, e)
		}
		return true
	}
	ended := func() bool { return pg.more || pg.stopped }
	if forward {
		if from <= 0 {
			rr.backfilledNewer(-from, visit)
		}
		if !ended() {
			rr.rt.RoomEvents(rr.room.RoomID, max(from, 0)-1, true, 0, visit)
		}
		return pg
	}
	if from > 0 {
		rr.rt.RoomEvents(rr.room.RoomID, from, false, 0, visit)
	}
	if !ended() && !rr.startsAtCreate() {
		rr.backfilledOlder(max(-from, 0), visit)
		pg.needHistory = !ended() && !rr.backfillComplete()
	}
	return pg
}

// format is formatEvent with the viewer's membership at the event and its
// bundled aggregations (the endpoints reading through a roomReader are
// among those the spec lists for them).
func (rr *roomReader) format(rec *fsm.EventRecord, viewer *Caller) *ClientEvent {
	return rr.formatWith(rr.bundler(viewer), rec, viewer)
}

func (rr *roomReader) formatWith(b *bundler, rec *fsm.EventRecord, viewer *Caller) *ClientEvent {
	ev := formatEvent(rr.rt, rec, viewer)
	ev.Unsigned["membership"] = rr.view.membershipAt(rec.Pos)
	b.add(ev, rec)
	return ev
}

func (rr *roomReader) formatAll(recs []*fsm.EventRecord, viewer *Caller) []*ClientEvent {
	b := rr.bundler(viewer)
	out := make([]*ClientEvent, 0, len(recs))
	for _, rec := range recs {
		out = append(out, rr.formatWith(b, rec, viewer))
	}
	return out
}

// memberState is the membership events of the given users as of pos, for
// lazy-loading members.
func (rr *roomReader) memberState(users map[string]bool, pos int64) map[[2]string]string {
	keys := make([][2]string, 0, len(users))
	for u := range users {
		keys = append(keys, [2]string{evMember, u})
	}
	out := map[[2]string]string{}
	if pos < 0 {
		// Backfilled history has no state here: the earliest known stands in.
		early := rr.earlyState()
		for _, k := range keys {
			if id := early[k]; id != "" {
				out[k] = id
			}
		}
		return out
	}
	for _, ch := range rr.rt.StateHistory(rr.room.RoomID, keys...) {
		if ch.Pos <= pos {
			out[[2]string{ch.Type, ch.StateKey}] = ch.EventID
		}
	}
	return out
}

// GET /rooms/{roomId}/event/{eventId}: 404 unless the caller may see it.
func (a *API) getEvent(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	c := callerOf(r)
	var out *ClientEvent
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		rr, ferr := timelineAccess(rt, p.ByName("roomId"), c.UserID)
		if ferr != nil {
			return nil
		}
		if rec, ok := rr.visibleEvent(p.ByName("eventId")); ok {
			out = rr.format(rec, c)
		}
		return nil
	})
	if out == nil {
		writeError(w, http.StatusNotFound, "M_NOT_FOUND", "event not found")
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// GET /rooms/{roomId}/messages: a page of the history in either direction.
// Backward past the stored history of a room joined over federation it
// backfills from other servers (messages_backfill.go).
func (a *API) messages(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	c := callerOf(r)
	q := r.URL.Query()
	mq := &messagesQuery{roomID: p.ByName("roomId"), viewer: c}
	// A known room the caller may not read is refused before the
	// parameters are checked: Complement asks a forgotten room for its
	// messages without 'dir' and wants the 403.
	var denied *fsm.Error
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		if _, err := rt.Room(mq.roomID); err == nil {
			_, denied = roomReadAccess(rt, mq.roomID, c.UserID)
		}
		return nil
	})
	if denied != nil {
		writeErr(w, denied)
		return
	}
	dir := q.Get("dir")
	if dir != "b" && dir != "f" {
		writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "dir must be b or f")
		return
	}
	mq.forward = dir == "f"
	var ok bool
	if mq.limit, ok = parseLimit(q.Get("limit"), defaultPageLimit); !ok {
		writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "limit must be a non-negative integer")
		return
	}
	if mq.filter, ok = parseRoomEventFilter(q.Get("filter")); !ok {
		writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "filter must be a JSON RoomEventFilter")
		return
	}
	if q.Get("limit") == "" && mq.filter.Limit != nil && *mq.filter.Limit > 0 {
		mq.limit = min(*mq.filter.Limit, maxPageLimit)
	}
	for _, t := range []struct {
		name string
		dst  *int64
		has  *bool
	}{{"from", &mq.from, &mq.hasFrom}, {"to", &mq.to, &mq.hasTo}} {
		if s := q.Get(t.name); s != "" {
			if *t.dst, ok = parseHistoryToken(s); !ok {
				writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "invalid '"+t.name+"' token")
				return
			}
			*t.has = true
			a.waitForBoundary(r, *t.dst)
		}
	}
	res, ferr := a.messagesPage(r.Context(), mq)
	var resp map[string]any
	if ferr == nil {
		_ = a.store.View(func(rt *fsm.ReadTx) error {
			rr, e := timelineAccess(rt, mq.roomID, c.UserID)
			if e != nil {
				ferr = e
				return nil
			}
			if mq.filter.LateEvents {
				res.addLate(rr, mq)
			}
			start := q.Get("from")
			if start == "" {
				start = pageToken(res.from)
			}
			resp = map[string]any{"chunk": annotateLate(rr.formatAll(res.events, c), res.events), "start": start}
			if res.hasEnd {
				resp["end"] = pageToken(res.end)
			}
			if mq.filter.LazyLoadMembers && len(res.events) > 0 {
				resp["state"] = stateEvents(rt, rr.memberState(senders(res.events), res.events[0].Pos), c, nil)
			}
			return nil
		})
	}
	if ferr != nil {
		writeErr(w, ferr)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func senders(evs ...[]*fsm.EventRecord) map[string]bool {
	out := map[string]bool{}
	for _, list := range evs {
		for _, e := range list {
			out[e.Sender] = true
		}
	}
	return out
}

// GET /rooms/{roomId}/context/{eventId}: the event, up to limit events
// around it (half before, half after), and the state at the last one.
func (a *API) eventContext(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	c := callerOf(r)
	q := r.URL.Query()
	limit, ok := parseLimit(q.Get("limit"), defaultPageLimit)
	if !ok {
		writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "limit must be a non-negative integer")
		return
	}
	filter, ok := parseRoomEventFilter(q.Get("filter"))
	if !ok {
		writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "filter must be a JSON RoomEventFilter")
		return
	}
	var resp map[string]any
	var ferr *fsm.Error
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		rr, e := timelineAccess(rt, p.ByName("roomId"), c.UserID)
		if e != nil {
			ferr = e
			return nil
		}
		ev, found := rr.visibleEvent(p.ByName("eventId"))
		if !found {
			ferr = fsm.Errorf(http.StatusNotFound, "M_NOT_FOUND", "event not found")
			return nil
		}
		before := rr.scan(ev.Pos, false, limit/2, filter.allowsEvent, nil).events
		after := rr.scan(ev.Pos+1, true, limit-limit/2, filter.allowsEvent, nil).events
		start, end, last := ev.Pos, ev.Pos+1, ev
		if n := len(before); n > 0 {
			start = before[n-1].Pos
		}
		if n := len(after); n > 0 {
			last = after[n-1]
			end = last.Pos + 1
		}
		var state []*ClientEvent
		if filter.LazyLoadMembers {
			state = stateEvents(rt, rr.memberState(senders(before, after, []*fsm.EventRecord{ev}), last.Pos), c, nil)
		} else {
			state = stateEvents(rt, rr.stateAt(last.Pos), c, filter.allowsEvent)
		}
		resp = map[string]any{
			"event": rr.format(ev, c), "events_before": rr.formatAll(before, c),
			"events_after": rr.formatAll(after, c), "state": state,
			"start": pageToken(start), "end": pageToken(end),
		}
		return nil
	})
	if ferr != nil {
		writeErr(w, ferr)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}
