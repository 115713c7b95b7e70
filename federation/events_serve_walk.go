package federation

import (
	"container/heap"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"

	"github.com/julienschmidt/httprouter"
	"github.com/tidwall/gjson"

	"github.com/ganglion/ganglion/fsm"
)

// Walking the DAG back for other servers (backfill.yaml): GET /backfill
// and POST /get_missing_events. Both follow prev_events from the events
// named, skip rejected and unknown events, and redact what the requesting
// server may not see (events_serve_visibility.go).

const (
	maxBackfill        = 100
	defaultMissingLim  = 10
	maxMissingEvents   = 100
	maxWalkStartEvents = 100
)

// backfill is GET /backfill/{roomId}?v=...&limit=: the events named and
// those before them, breadth-first by depth (deepest first), up to limit.
func (a *API) backfill(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	if !a.serving(w) {
		return
	}
	origin, roomID := Origin(r), p.ByName("roomId")
	from := r.URL.Query()["v"]
	if len(from) == 0 {
		writeError(w, http.StatusBadRequest, "M_MISSING_PARAM", "v is required")
		return
	}
	limit, err := strconv.Atoi(r.URL.Query().Get("limit"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "limit must be an integer")
		return
	}
	limit = min(max(limit, 0), maxBackfill)
	from = from[:min(len(from), maxWalkStartEvents)]
	var pdus []json.RawMessage
	if !a.readVisible(w, roomID, origin, func(rt *fsm.ReadTx, vis *visibility) {
		pdus = walkBack(rt, vis, roomID, from, limit)
	}) {
		return
	}
	writeJSON(w, http.StatusOK, a.pduTransaction(pdus))
}

// walkBack lists the events named in from and those before them,
// breadth-first by depth (deepest first), up to limit, as vis serves them.
func walkBack(rt *fsm.ReadTx, vis *visibility, roomID string, from []string, limit int) []json.RawMessage {
	var pdus []json.RawMessage
	queue := &recHeap{}
	seen := map[string]bool{}
	push := func(evID string) {
		if seen[evID] {
			return
		}
		seen[evID] = true
		if rec, err := rt.Event(evID); err == nil && rec.RoomID == roomID && !rec.Rejected {
			heap.Push(queue, rec)
		}
	}
	for _, evID := range from {
		push(evID)
	}
	for queue.Len() > 0 && len(pdus) < limit {
		rec := heap.Pop(queue).(*fsm.EventRecord)
		pdus = append(pdus, vis.served(rec))
		for _, pe := range prevEventsOf(rec.PDU) {
			push(pe)
		}
	}
	return pdus
}

type missingEventsReq struct {
	Limit          *int     `json:"limit"`
	MinDepth       int64    `json:"min_depth"`
	EarliestEvents []string `json:"earliest_events"`
	LatestEvents   []string `json:"latest_events"`
}

// getMissingEvents is POST /get_missing_events/{roomId}: a breadth-first
// walk of the prev events of latest_events, not entering earliest_events,
// skipping events below min_depth, up to limit; oldest first.
func (a *API) getMissingEvents(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	if !a.serving(w) {
		return
	}
	origin, roomID := Origin(r), p.ByName("roomId")
	var req missingEventsReq
	if !a.readJSON(w, r, &req) {
		return
	}
	if req.EarliestEvents == nil || req.LatestEvents == nil {
		writeError(w, http.StatusBadRequest, "M_BAD_JSON", "earliest_events and latest_events are required")
		return
	}
	limit := defaultMissingLim
	if req.Limit != nil {
		limit = min(max(*req.Limit, 0), maxMissingEvents)
	}
	var pdus []json.RawMessage
	if !a.readVisible(w, roomID, origin, func(rt *fsm.ReadTx, vis *visibility) {
		pdus = missingEvents(rt, vis, roomID, &req, limit)
	}) {
		return
	}
	writeJSON(w, http.StatusOK, map[string][]json.RawMessage{"events": pdus})
}

// missingEvents walks the prev events of req's latest events breadth-first,
// not entering its earliest events, skipping events below its min depth, up
// to limit; oldest first, as vis serves them.
func missingEvents(rt *fsm.ReadTx, vis *visibility, roomID string, req *missingEventsReq, limit int) []json.RawMessage {
	var found []*fsm.EventRecord
	seen := map[string]bool{}
	for _, e := range req.EarliestEvents[:min(len(req.EarliestEvents), maxWalkStartEvents)] {
		seen[e] = true
	}
	var front []string
	for _, e := range req.LatestEvents[:min(len(req.LatestEvents), maxWalkStartEvents)] {
		if !seen[e] {
			seen[e] = true
			front = append(front, e)
		}
	}
	for len(front) > 0 && len(found) < limit {
		var next []string
		for _, evID := range front {
			rec, err := rt.Event(evID)
			if err != nil || rec.RoomID != roomID {
				continue
			}
			for _, pe := range prevEventsOf(rec.PDU) {
				if seen[pe] || len(found) >= limit {
					continue
				}
				seen[pe] = true
				prev, err := rt.Event(pe)
				if err != nil || prev.RoomID != roomID || prev.Rejected || prev.Depth < req.MinDepth {
					continue
				}
				found = append(found, prev)
				next = append(next, pe)
			}
		}
		front = next
	}
	slices.SortStableFunc(found, func(x, y *fsm.EventRecord) int {
		switch {
		case x.Depth != y.Depth:
			return int(min(max(x.Depth-y.Depth, -1), 1))
		case x.EventID < y.EventID:
			return -1
		}
		return 1
	})
	pdus := make([]json.RawMessage, 0, len(found))
	for _, rec := range found {
		pdus = append(pdus, vis.served(rec))
	}
	return pdus
}

// readVisible runs fn in one read transaction with what origin may see of
// roomID, once roomAccess lets origin ask about the room at all; otherwise
// it answers with the refusal and returns false.
func (a *API) readVisible(w http.ResponseWriter, roomID, origin string, fn func(rt *fsm.ReadTx, vis *visibility)) bool {
	var merr *matrixError
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		if merr = roomAccess(rt, roomID, origin); merr != nil {
			return nil
		}
		room, _ := rt.Room(roomID)
		fn(rt, newVisibility(rt, room, origin))
		return nil
	})
	if merr != nil {
		writeMatrixError(w, merr)
		return false
	}
	return true
}

// prevEventsOf lists a stored PDU's prev event IDs.
func prevEventsOf(raw json.RawMessage) []string {
	var out []string
	for _, v := range gjson.GetBytes(raw, "prev_events").Array() {
		out = append(out, v.Str)
	}
	return out
}

// recHeap is a max-heap of events by depth (ties by event ID).
type recHeap []*fsm.EventRecord

func (h recHeap) Len() int { return len(h) }
func (h recHeap) Less(i, j int) bool {
	if h[i].Depth != h[j].Depth {
		return h[i].Depth > h[j].Depth
	}
	return h[i].EventID < h[j].EventID
}
func (h recHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *recHeap) Push(x any)   { *h = append(*h, x.(*fsm.EventRecord)) }
func (h *recHeap) Pop() any {
	old := *h
	v := old[len(old)-1]
	*h = old[:len(old)-1]
	return v
}
