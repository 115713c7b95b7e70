package clientapi

import (
	"net/http"
	"strconv"

	"github.com/julienschmidt/httprouter"

	"github.com/ganglion/ganglion/fsm"
)

// Small endpoints: third-party identifiers and protocols (none are
// supported), content reports and timestamp_to_event.

// GET /account/3pid: this server binds no third-party identifiers.
func (a *API) get3pids(w http.ResponseWriter, _ *http.Request, _ httprouter.Params) {
	writeJSON(w, http.StatusOK, map[string]any{"threepids": []any{}})
}

// GET /thirdparty/protocols: no application-service bridges.
func (a *API) thirdPartyProtocols(w http.ResponseWriter, _ *http.Request, _ httprouter.Params) {
	writeJSON(w, http.StatusOK, map[string]any{})
}

// POST /rooms/{roomId}/report/{eventId} (report_content.yaml): the caller
// must be joined and able to see the event; otherwise 404. Reports go to
// the server log for the operator.
func (a *API) reportEvent(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	c := callerOf(r)
	var body struct {
		Reason string `json:"reason"`
	}
	if !a.readJSON(w, r, &body) {
		return
	}
	roomID, eventID := p.ByName("roomId"), p.ByName("eventId")
	found := false
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		if m := rt.Membership(c.UserID, roomID); m == nil || m.Membership != "join" {
			return nil
		}
		rr, ferr := timelineAccess(rt, roomID, c.UserID)
		if ferr == nil {
			_, found = rr.visibleEvent(eventID)
		}
		return nil
	})
	if !found {
		writeError(w, http.StatusNotFound, "M_NOT_FOUND", "the event was not found or you are not joined to the room")
		return
	}
	a.log.Warn("event reported", "reporter", c.UserID, "room_id", roomID, "event_id", eventID, "reason", body.Reason)
	writeJSON(w, http.StatusOK, struct{}{})
}

// POST /rooms/{roomId}/report: any user may report a room this server
// knows; reason is required (it may be blank).
func (a *API) reportRoom(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	c := callerOf(r)
	var body struct {
		Reason *string `json:"reason"`
	}
	if !a.readJSON(w, r, &body) {
		return
	}
	if body.Reason == nil {
		writeError(w, http.StatusBadRequest, "M_BAD_JSON", "reason is required")
		return
	}
	roomID := p.ByName("roomId")
	known := false
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		_, err := rt.Room(roomID)
		known = err == nil
		return nil
	})
	if !known {
		writeError(w, http.StatusNotFound, "M_NOT_FOUND", "the room was not found")
		return
	}
	a.log.Warn("room reported", "reporter", c.UserID, "room_id", roomID, "reason", *body.Reason)
	writeJSON(w, http.StatusOK, struct{}{})
}

const (
	// maxTimestampScan bounds the events timestamp_to_event examines.
	maxTimestampScan = 20000
	// timestampSlack is how many events past the first candidate the scan
	// keeps looking, as origin_server_ts is only roughly in stream order.
	timestampSlack = 100
)

// GET /v1/rooms/{roomId}/timestamp_to_event?ts=&dir= (room_event_by_timestamp.yaml):
// the visible event closest to ts at or after it (dir=f) or at or before
// it (dir=b). Walks the timeline backward from the newest event.
func (a *API) timestampToEvent(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	c := callerOf(r)
	q := r.URL.Query()
	if q.Get("ts") == "" || q.Get("dir") == "" {
		writeError(w, http.StatusBadRequest, "M_MISSING_PARAM", "ts and dir are required")
		return
	}
	ts, err := strconv.ParseInt(q.Get("ts"), 10, 64)
	if err != nil {
		writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "ts must be an integer")
		return
	}
	dir := q.Get("dir")
	if dir != "f" && dir != "b" {
		writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "dir must be f or b")
		return
	}
	var best *fsm.EventRecord
	var ferr *fsm.Error
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		rr, e := timelineAccess(rt, p.ByName("roomId"), c.UserID)
		if e != nil {
			ferr = e
			return nil
		}
		sinceBest := 0
		rt.RoomEvents(rr.room.RoomID, rr.room.LastPos+1, false, maxTimestampScan, func(e *fsm.EventRecord) bool {
			if best != nil || (dir == "f" && e.TS < ts) {
				sinceBest++
			}
			if e.Rejected || !rr.view.canSee(e) {
				return sinceBest < timestampSlack
			}
			switch {
			case dir == "f" && e.TS >= ts && (best == nil || e.TS <= best.TS):
				best, sinceBest = e, 0
			case dir == "b" && e.TS <= ts && (best == nil || e.TS > best.TS):
				best, sinceBest = e, 0
			}
			return sinceBest < timestampSlack
		})
		return nil
	})
	if ferr != nil {
		writeErr(w, ferr)
		return
	}
	if best == nil {
		writeError(w, http.StatusNotFound, "M_NOT_FOUND", "no event found from "+q.Get("ts")+" in direction "+dir)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"event_id": best.EventID, "origin_server_ts": best.TS})
}
