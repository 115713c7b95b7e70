package clientapi

import (
	"math"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/julienschmidt/httprouter"
	"github.com/tidwall/gjson"

	"github.com/ganglion/ganglion/fsm"
)

// POST /search (search.yaml, search.md): the room_events category. There is
// no full-text index: each request scans the newest maxSearchScan events of
// every room the caller is or was in, keeps the ones they may see whose
// searchable text holds every word of the term (case-insensitively), and
// sorts them by rank or recency. next_batch is a cursor into that order.

const (
	maxSearchScan      = 10000
	maxSearchHits      = 10000
	defaultSearchLimit = 10
	maxSearchLimit     = 100
	defaultContextSize = 5
	maxContextSize     = 100
)

// searchKeys are the spec's searchable fields, each of one event type.
var searchKeys = map[string]string{
	"content.body":  "m.room.message",
	"content.name":  "m.room.name",
	"content.topic": "m.room.topic",
}

type searchRequest struct {
	SearchCategories *struct {
		RoomEvents *roomEventsCriteria `json:"room_events"`
	} `json:"search_categories"`
}

type roomEventsCriteria struct {
	SearchTerm   *string          `json:"search_term"`
	Keys         []string         `json:"keys"`
	Filter       *roomEventFilter `json:"filter"`
	OrderBy      string           `json:"order_by"`
	IncludeState bool             `json:"include_state"`
	EventContext *struct {
		BeforeLimit    *int `json:"before_limit"`
		AfterLimit     *int `json:"after_limit"`
		IncludeProfile bool `json:"include_profile"`
	} `json:"event_context"`
	Groupings *struct {
		GroupBy []struct {
			Key string `json:"key"`
		} `json:"group_by"`
	} `json:"groupings"`
}

// searchHit is one matching event and its reader (for context).
type searchHit struct {
	rec  *fsm.EventRecord
	rank float64
	rr   *roomReader
}

// searchCursor is the last result of the previous page: "q<pos>_<rank>".
type searchCursor struct {
	pos  int64
	rank float64
}

func (c searchCursor) String() string {
	return "q" + strconv.FormatInt(c.pos, 10) + "_" + strconv.FormatFloat(c.rank, 'g', -1, 64)
}

func parseSearchCursor(s string) (*searchCursor, bool) {
	rest, ok := strings.CutPrefix(s, "q")
	pos, rank, ok2 := strings.Cut(rest, "_")
	if !ok || !ok2 {
		return nil, false
	}
	p, err1 := strconv.ParseInt(pos, 10, 64)
	r, err2 := strconv.ParseFloat(rank, 64)
	if err1 != nil || err2 != nil || math.IsNaN(r) {
		return nil, false
	}
	return &searchCursor{pos: p, rank: r}, true
}

// less orders hits: by rank (higher first) then recency, or by recency.
func searchLess(byRank bool, a, b searchCursor) bool {
	if byRank && a.rank != b.rank {
		return a.rank > b.rank
	}
	return a.pos > b.pos
}

func (a *API) search(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	c := callerOf(r)
	var cursor *searchCursor
	if s := r.URL.Query().Get("next_batch"); s != "" {
		var ok bool
		if cursor, ok = parseSearchCursor(s); !ok {
			writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "invalid next_batch token")
			return
		}
	}
	var req searchRequest
	if !a.readJSON(w, r, &req) {
		return
	}
	if req.SearchCategories == nil {
		writeError(w, http.StatusBadRequest, "M_BAD_JSON", "search_categories is required")
		return
	}
	crit := req.SearchCategories.RoomEvents
	if crit == nil {
		writeJSON(w, http.StatusOK, map[string]any{"search_categories": map[string]any{}})
		return
	}
	if msg := crit.validate(); msg != "" {
		writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", msg)
		return
	}
	if crit.SearchTerm == nil {
		writeError(w, http.StatusBadRequest, "M_BAD_JSON", "search_term is required")
		return
	}
	var result map[string]any
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		result = crit.run(rt, c, cursor)
		return nil
	})
	writeJSON(w, http.StatusOK, map[string]any{"search_categories": map[string]any{"room_events": result}})
}

// validate checks the enumerated fields; it returns the problem, or "".
func (crit *roomEventsCriteria) validate() string {
	for _, k := range crit.Keys {
		if _, ok := searchKeys[k]; !ok {
			return "unknown search key " + k
		}
	}
	if crit.OrderBy != "" && crit.OrderBy != "rank" && crit.OrderBy != "recent" {
		return "order_by must be rank or recent"
	}
	if crit.Groupings != nil {
		for _, g := range crit.Groupings.GroupBy {
			if g.Key != "room_id" && g.Key != "sender" {
				return "group_by keys must be room_id or sender"
			}
		}
	}
	return ""
}

// run searches and builds the room_events result.
func (crit *roomEventsCriteria) run(rt *fsm.ReadTx, c *Caller, cursor *searchCursor) map[string]any {
	byRank := crit.OrderBy != "recent"
	filter := crit.Filter
	if filter == nil {
		filter = &roomEventFilter{}
	}
	limit := defaultSearchLimit
	if filter.Limit != nil && *filter.Limit > 0 {
		limit = min(*filter.Limit, maxSearchLimit)
	}
	keys := crit.Keys
	if len(keys) == 0 {
		keys = []string{"content.body", "content.name", "content.topic"}
	}
	words := uniqueWords(*crit.SearchTerm)
	hits := searchRooms(rt, c.UserID, filter, keys, words)
	sort.Slice(hits, func(i, j int) bool { return searchLess(byRank, hitCursor(hits[i]), hitCursor(hits[j])) })
	count := len(hits)
	if cursor != nil {
		i := sort.Search(len(hits), func(i int) bool { return searchLess(byRank, *cursor, hitCursor(hits[i])) })
		hits = hits[i:]
	}
	out := map[string]any{"count": count, "highlights": words}
	// A full page carries next_batch even when nothing follows (the next
	// page is then empty and has none), as Synapse answers and Complement's
	// TestSearch expects.
	if len(hits) >= limit {
		hits = hits[:limit]
		out["next_batch"] = hitCursor(hits[limit-1]).String()
	}
	results := make([]map[string]any, 0, len(hits))
	for _, h := range hits {
		ev := formatEvent(rt, h.rec, c)
		h.rr.bundler(c).add(ev, h.rec)
		item := map[string]any{"rank": h.rank, "result": ev}
		if crit.EventContext != nil {
			item["context"] = crit.context(rt, h, c)
		}
		results = append(results, item)
	}
	out["results"] = results
	if crit.IncludeState {
		state := map[string][]*ClientEvent{}
		for _, h := range hits {
			if _, done := state[h.rec.RoomID]; !done {
				if acc, ferr := roomReadAccess(rt, h.rec.RoomID, c.UserID); ferr == nil {
					state[h.rec.RoomID] = stateEvents(rt, acc.stateIDs(rt, 0), c, nil)
				}
			}
		}
		out["state"] = state
	}
	if crit.Groupings != nil && len(crit.Groupings.GroupBy) > 0 {
		out["groups"] = searchGroups(crit, hits)
	}
	return out
}

func hitCursor(h *searchHit) searchCursor { return searchCursor{pos: h.rec.Pos, rank: h.rank} }

// searchRooms scans every room the user is or was in (not forgotten),
// newest first, for visible events that match.
func searchRooms(rt *fsm.ReadTx, userID string, filter *roomEventFilter, keys, words []string) []*searchHit {
	if len(words) == 0 {
		return nil
	}
	var roomIDs []string
	for roomID, m := range rt.UserRooms(userID) {
		switch m.Membership {
		case "join", "leave", "ban":
			if roomListAllows(filter.Rooms, filter.NotRooms, roomID) {
				roomIDs = append(roomIDs, roomID)
			}
		}
	}
	sort.Strings(roomIDs)
	var hits []*searchHit
	for _, roomID := range roomIDs {
		rr, ferr := timelineAccess(rt, roomID, userID)
		if ferr != nil {
			continue
		}
		start := rr.room.LastPos + 1
		if upper := visibleUpperBound(rr.view); upper < rr.room.LastPos {
			start = upper + 1
		}
		rt.RoomEvents(roomID, start, false, maxSearchScan, func(e *fsm.EventRecord) bool {
			if e.Rejected || e.RedactedBecause != "" || !filter.allowsEvent(e) || !rr.view.canSee(e) {
				return true
			}
			if rank, ok := matchWords(searchText(e, keys), words); ok {
				hits = append(hits, &searchHit{rec: e, rank: rank, rr: rr})
			}
			return len(hits) < maxSearchHits
		})
	}
	return hits
}

// searchText is the lower-cased searchable text of an event under keys
// ("" when the event has none): a message's body, a room's name, or its
// topic (plain text and the text/plain m.topic representations).
func searchText(e *fsm.EventRecord, keys []string) string {
	var parts []string
	for _, k := range keys {
		if searchKeys[k] != e.Type {
			continue
		}
		if v := gjson.GetBytes(e.PDU, k); v.Type == gjson.String {
			parts = append(parts, v.Str)
		}
		if k == "content.topic" {
			for _, t := range gjson.GetBytes(e.PDU, `content.m\.topic.m\.text`).Array() {
				if mt := t.Get("mimetype").Str; mt == "" || mt == "text/plain" {
					parts = append(parts, t.Get("body").Str)
				}
			}
		}
	}
	return strings.ToLower(strings.Join(parts, "\n"))
}

// matchWords needs every word in text; the rank grows with the number of
// occurrences and shrinks slowly with the text's length.
func matchWords(text string, words []string) (float64, bool) {
	if text == "" {
		return 0, false
	}
	occ := 0
	for _, w := range words {
		n := strings.Count(text, w)
		if n == 0 {
			return 0, false
		}
		occ += n
	}
	return float64(occ) / (1 + math.Log1p(float64(len(strings.Fields(text))))), true
}

func uniqueWords(term string) []string {
	words := []string{}
	for _, w := range strings.Fields(strings.ToLower(term)) {
		if !slices.Contains(words, w) {
			words = append(words, w)
		}
	}
	return words
}

// context is the result's surrounding events and, on request, the
// senders' profiles as of the result.
func (crit *roomEventsCriteria) context(rt *fsm.ReadTx, h *searchHit, c *Caller) map[string]any {
	size := func(n *int) int {
		if n == nil || *n < 0 {
			return defaultContextSize
		}
		return min(*n, maxContextSize)
	}
	ec := crit.EventContext
	before := h.rr.scan(h.rec.Pos, false, size(ec.BeforeLimit), nil, nil).events
	after := h.rr.scan(h.rec.Pos+1, true, size(ec.AfterLimit), nil, nil).events
	start, end := h.rec.Pos, h.rec.Pos+1
	if n := len(before); n > 0 {
		start = before[n-1].Pos
	}
	if n := len(after); n > 0 {
		end = after[n-1].Pos + 1
	}
	out := map[string]any{
		"events_before": formatEvents(rt, before, c), "events_after": formatEvents(rt, after, c),
		"start": pageToken(start), "end": pageToken(end),
	}
	if ec.IncludeProfile {
		profiles := map[string]map[string]string{}
		members := h.rr.memberState(senders(before, after, []*fsm.EventRecord{h.rec}), h.rec.Pos)
		for k, id := range members {
			ev, err := rt.Event(id)
			if err != nil {
				continue
			}
			p := map[string]string{}
			for _, f := range []string{"displayname", "avatar_url"} {
				if v := gjson.GetBytes(ev.PDU, "content."+f); v.Type == gjson.String {
					p[f] = v.Str
				}
			}
			profiles[k[1]] = p
		}
		out["profile_info"] = profiles
	}
	return out
}

// searchGroups partitions this page's results by room or sender; groups
// are ordered by their best result.
func searchGroups(crit *roomEventsCriteria, hits []*searchHit) map[string]any {
	groups := map[string]any{}
	for _, g := range crit.Groupings.GroupBy {
		byValue := map[string]map[string]any{}
		for _, h := range hits {
			v := h.rec.RoomID
			if g.Key == "sender" {
				v = h.rec.Sender
			}
			grp, ok := byValue[v]
			if !ok {
				grp = map[string]any{"order": len(byValue) + 1, "results": []string{}}
				byValue[v] = grp
			}
			grp["results"] = append(grp["results"].([]string), h.rec.EventID)
		}
		groups[g.Key] = byValue
	}
	return groups
}
