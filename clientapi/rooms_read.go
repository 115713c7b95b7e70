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

func pageToken(x int64) string { return "t" + strconv.FormatInt(x, 10) }

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
	if err != nil || rec.RoomID != rr.room.RoomID || rec.Rejected || !rr.view.canSee(rec) {
		return nil, false
	}
	return rec, true
}

// page is one scan of the timeline.
type page struct {
	events   []*fsm.EventRecord
	lastPos  int64 // last position examined, -1 if none
	more     bool  // the scan stopped before running out of events
	examined int
}

// scan walks the timeline from the boundary (backward: pos < from; forward:
// pos >= from), keeping visible events that pass keep, up to limit. stop
// ends the walk at a position (the 'to' token, the viewer's departure).
func (rr *roomReader) scan(from int64, forward bool, limit int, keep func(*fsm.EventRecord) bool, stop func(int64) bool) *page {
	pg := &page{lastPos: -1}
	upper := visibleUpperBound(rr.view)
	if !forward && from > upper {
		from = upper + 1
	}
	visit := func(e *fsm.EventRecord) bool {
		if (forward && e.Pos > upper) || (stop != nil && stop(e.Pos)) {
			return false
		}
		if len(pg.events) >= limit || pg.examined >= maxScan {
			pg.more = true
			return false
		}
		pg.examined++
		pg.lastPos = e.Pos
		if !e.Rejected && rr.view.canSee(e) && !hiddenByIgnore(rr.ignored, e) && (keep == nil || keep(e)) {
			pg.events = append(pg.events, e)
		}
		return true
	}
	if forward {
		rr.rt.RoomEvents(rr.room.RoomID, from-1, true, 0, visit)
	} else if from > 0 {
		rr.rt.RoomEvents(rr.room.RoomID, from, false, 0, visit)
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

// GET /rooms/{roomId}/messages: a page of the timeline in either direction.
func (a *API) messages(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	c := callerOf(r)
	q := r.URL.Query()
	// A known room the caller may not read is refused before the
	// parameters are checked: Complement asks a forgotten room for its
	// messages without 'dir' and wants the 403.
	var denied *fsm.Error
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		if _, err := rt.Room(p.ByName("roomId")); err == nil {
			_, denied = roomReadAccess(rt, p.ByName("roomId"), c.UserID)
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
	forward := dir == "f"
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
	if q.Get("limit") == "" && filter.Limit != nil && *filter.Limit > 0 {
		limit = min(*filter.Limit, maxPageLimit)
	}
	from, to := int64(-1), int64(-1)
	for _, t := range []struct {
		name string
		dst  *int64
	}{{"from", &from}, {"to", &to}} {
		if s := q.Get(t.name); s != "" {
			if *t.dst, ok = parsePageToken(s); !ok {
				writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "invalid '"+t.name+"' token")
				return
			}
			a.waitForBoundary(r, *t.dst)
		}
	}
	var resp map[string]any
	var ferr *fsm.Error
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		rr, e := timelineAccess(rt, p.ByName("roomId"), c.UserID)
		if e != nil {
			ferr = e
			return nil
		}
		if from < 0 && forward {
			from = 0
		} else if from < 0 {
			from = rr.room.LastPos + 1
		}
		var stop func(int64) bool
		switch {
		case to >= 0 && forward:
			stop = func(pos int64) bool { return pos >= to }
		case to >= 0:
			stop = func(pos int64) bool { return pos < to }
		}
		pg := rr.scan(from, forward, limit, filter.allowsEvent, stop)
		start := q.Get("from")
		if start == "" {
			start = pageToken(from)
		}
		resp = map[string]any{"chunk": rr.formatAll(pg.events, c), "start": start}
		switch {
		case !pg.more:
		case pg.lastPos < 0:
			resp["end"] = pageToken(from)
		case forward:
			resp["end"] = pageToken(pg.lastPos + 1)
		default:
			resp["end"] = pageToken(pg.lastPos)
		}
		if filter.LazyLoadMembers && len(pg.events) > 0 {
			resp["state"] = stateEvents(rt, rr.memberState(senders(pg.events), pg.events[0].Pos), c, nil)
		}
		return nil
	})
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
			state = stateEvents(rt, rt.StateAt(rr.room.RoomID, last.Pos), c, filter.allowsEvent)
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
