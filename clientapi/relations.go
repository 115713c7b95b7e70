package clientapi

import (
	"math"
	"net/http"
	"sort"

	"github.com/julienschmidt/httprouter"

	"github.com/ganglion/ganglion/fsm"
)

// GET /v1/rooms/{roomId}/relations/{eventId}[/{relType}[/{eventType}]]
// (relations.yaml): the parent's children from the FSM's relations index,
// paginated by stream position like /messages, so /messages and /sync
// tokens work as from/to. Children the caller may not see, rejected ones,
// and redacted ones (a redaction strips m.relates_to) are left out.

const (
	defaultRelationsLimit = 50
	// relationsDepth is how many levels recurse=true follows (the spec asks
	// for at least 3); maxRelationTree bounds the events it collects.
	relationsDepth  = 3
	maxRelationTree = 10000
)

// relChild is one indexed child at its stream position.
type relChild struct {
	pos int64
	rel fsm.RelationRecord
}

func (a *API) relations(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	c := callerOf(r)
	q := r.URL.Query()
	relType, evType := p.ByName("relType"), p.ByName("eventType")
	dir := q.Get("dir")
	if dir == "" {
		dir = "b"
	}
	if dir != "b" && dir != "f" {
		writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "dir must be b or f")
		return
	}
	forward := dir == "f"
	limit, ok := parseLimit(q.Get("limit"), defaultRelationsLimit)
	if !ok {
		writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "limit must be a non-negative integer")
		return
	}
	if limit == 0 {
		limit = defaultRelationsLimit
	}
	recurse := q.Get("recurse")
	if recurse != "" && recurse != "true" && recurse != "false" {
		writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "recurse must be true or false")
		return
	}
	from, to, ok := a.pageBounds(w, r, "from", "to")
	if !ok {
		return
	}
	var resp map[string]any
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		rr, ferr := timelineAccess(rt, p.ByName("roomId"), c.UserID)
		if ferr != nil {
			return nil
		}
		parent, found := rr.visibleEvent(p.ByName("eventId"))
		if !found {
			return nil
		}
		if from < 0 && forward {
			from = 0
		} else if from < 0 {
			from = rr.room.LastPos + 1
		}
		var out []*fsm.EventRecord
		more, lastPos, examined := false, int64(-1), 0
		visit := func(pos int64, rel fsm.RelationRecord) bool {
			if to >= 0 && ((forward && pos >= to) || (!forward && pos < to)) {
				return false
			}
			if len(out) >= limit || examined >= maxScan {
				more = true
				return false
			}
			examined++
			lastPos = pos
			if (relType != "" && rel.RelType != relType) || (evType != "" && rel.Type != evType) {
				return true
			}
			if rec, ok := rr.visibleEvent(rel.EventID); ok && rec.RedactedBecause == "" && rec.Pos == pos {
				out = append(out, rec)
			}
			return true
		}
		if recurse == "true" {
			walkRelationTree(relationTree(rt, rr.room.RoomID, parent.EventID), from, forward, visit)
		} else {
			rt.Relations(rr.room.RoomID, parent.EventID, from, forward, visit)
		}
		chunk := formatEvents(rt, out, c)
		rr.bundler(c).addAll(chunk, out)
		resp = map[string]any{"chunk": chunk}
		if s := q.Get("from"); s != "" {
			resp["prev_batch"] = s
		}
		switch {
		case !more:
		case lastPos < 0:
			resp["next_batch"] = pageToken(from)
		case forward:
			resp["next_batch"] = pageToken(lastPos + 1)
		default:
			resp["next_batch"] = pageToken(lastPos)
		}
		if recurse == "true" {
			resp["recursion_depth"] = relationsDepth
		}
		return nil
	})
	if resp == nil {
		writeError(w, http.StatusNotFound, "M_NOT_FOUND", "event not found")
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// pageBounds reads optional boundary tokens (-1 when absent) and lets this
// node catch up with them; on a bad token it writes 400 M_INVALID_PARAM.
func (a *API) pageBounds(w http.ResponseWriter, r *http.Request, names ...string) (from, to int64, ok bool) {
	vals := []int64{-1, -1}
	for i, name := range names {
		s := r.URL.Query().Get(name)
		if s == "" {
			continue
		}
		x, valid := parsePageToken(s)
		if !valid {
			writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "invalid '"+name+"' token")
			return 0, 0, false
		}
		a.waitForBoundary(r, x)
		vals[i] = x
	}
	return vals[0], vals[1], true
}

// relationTree collects the children of root down to relationsDepth levels
// (bounded), in stream order.
func relationTree(rt *fsm.ReadTx, roomID, root string) []relChild {
	var all []relChild
	seen := map[string]bool{root: true}
	level := []string{root}
	for depth := 0; depth < relationsDepth && len(level) > 0; depth++ {
		var next []string
		for _, parent := range level {
			rt.Relations(roomID, parent, 0, true, func(pos int64, rel fsm.RelationRecord) bool {
				if len(all) >= maxRelationTree {
					return false
				}
				if !seen[rel.EventID] {
					seen[rel.EventID] = true
					all = append(all, relChild{pos, rel})
					next = append(next, rel.EventID)
				}
				return true
			})
		}
		level = next
	}
	sort.Slice(all, func(i, j int) bool { return all[i].pos < all[j].pos })
	return all
}

// walkRelationTree visits a collected tree with Relations' boundary
// semantics (forward: pos >= from; backward: pos < from, newest first).
func walkRelationTree(all []relChild, from int64, forward bool, fn func(int64, fsm.RelationRecord) bool) {
	i := sort.Search(len(all), func(i int) bool { return all[i].pos >= from })
	if forward {
		for ; i < len(all); i++ {
			if !fn(all[i].pos, all[i].rel) {
				return
			}
		}
		return
	}
	for i--; i >= 0; i-- {
		if !fn(all[i].pos, all[i].rel) {
			return
		}
	}
}

const (
	defaultThreadsLimit = 20
	maxThreadsLimit     = 100
)

// GET /v1/rooms/{roomId}/threads (threads_list.yaml): thread roots the
// caller may see, most recently replied first, each with its m.thread
// aggregation. next_batch is the boundary below the last root's latest
// reply in the FSM's thread list.
func (a *API) threads(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	c := callerOf(r)
	q := r.URL.Query()
	include := q.Get("include")
	if include == "" {
		include = "all"
	}
	if include != "all" && include != "participated" {
		writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "include must be all or participated")
		return
	}
	limit := defaultThreadsLimit
	if s := q.Get("limit"); s != "" {
		n, ok := parseLimit(s, defaultThreadsLimit)
		if !ok || n == 0 {
			writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "limit must be a positive integer")
			return
		}
		limit = min(n, maxThreadsLimit)
	}
	from, _, ok := a.pageBounds(w, r, "from")
	if !ok {
		return
	}
	if from < 0 {
		from = math.MaxInt64
	}
	var resp map[string]any
	var ferr *fsm.Error
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		rr, e := timelineAccess(rt, p.ByName("roomId"), c.UserID)
		if e != nil {
			ferr = e
			return nil
		}
		chunk := []*ClientEvent{}
		b := rr.bundler(c)
		more, lastPos, examined := false, int64(-1), 0
		rt.ThreadRoots(rr.room.RoomID, from, func(latestPos int64, rootID string) bool {
			if len(chunk) >= limit || examined >= maxScan {
				more = true
				return false
			}
			examined++
			lastPos = latestPos
			root, ok := rr.visibleEvent(rootID)
			if !ok {
				return true
			}
			agg := b.relations(root, 0)
			summary, _ := agg[fsm.RelThread].(map[string]any)
			if summary == nil || (include == "participated" && summary["current_user_participated"] != true) {
				return true
			}
			ev := formatEvent(rt, root, c)
			ev.Unsigned["m.relations"] = agg
			chunk = append(chunk, ev)
			return true
		})
		resp = map[string]any{"chunk": chunk}
		if more && lastPos >= 0 {
			resp["next_batch"] = pageToken(lastPos)
		}
		return nil
	})
	if ferr != nil {
		writeErr(w, ferr)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}
