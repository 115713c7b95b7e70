package clientapi

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"sort"
	"strconv"

	"github.com/julienschmidt/httprouter"
	"github.com/tidwall/gjson"

	"github.com/ganglion/ganglion/fsm"
)

// GET /v1/rooms/{roomId}/hierarchy (space_hierarchy.yaml): a depth-first
// walk of m.space.child links from a space, over the rooms this server
// holds (remote children would need federation and are left out).

const (
	hierarchyDefaultLimit = 50
	hierarchyMaxLimit     = 100
	hierarchyMaxDepth     = 50
	// hierarchyMaxWalk bounds the rooms one request examines, as a space
	// tree (or a loop the walk breaks) can be arbitrarily large.
	hierarchyMaxWalk = 2000
)

// hierarchyToken is the from/next_batch token: how many rooms earlier
// pages returned, and the parameters they were returned under, which must
// not change while paginating.
type hierarchyToken struct {
	Root          string `json:"r"`
	Skip          int    `json:"s"`
	SuggestedOnly bool   `json:"so,omitempty"`
	MaxDepth      int    `json:"md"`
}

func (t hierarchyToken) encode() string {
	raw, _ := json.Marshal(t)
	return base64.RawURLEncoding.EncodeToString(raw)
}

func decodeHierarchyToken(s string) (hierarchyToken, bool) {
	var t hierarchyToken
	raw, err := base64.RawURLEncoding.DecodeString(s)
	return t, err == nil && json.Unmarshal(raw, &t) == nil && t.Skip >= 0
}

// strippedChild is a StrippedChildStateEvent; room_id is extra, as
// Synapse sends it and clients key children by it.
type strippedChild struct {
	Type           string          `json:"type"`
	StateKey       string          `json:"state_key"`
	Content        json.RawMessage `json:"content"`
	Sender         string          `json:"sender"`
	OriginServerTS int64           `json:"origin_server_ts"`
	RoomID         string          `json:"room_id"`
}

// hierarchyRoom is a SpaceHierarchyRoomsChunk.
type hierarchyRoom struct {
	roomSummaryChunk
	ChildrenState []strippedChild `json:"children_state"`
}

type hierarchyQuery struct {
	limit int
	token hierarchyToken
}

func (a *API) roomHierarchy(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	c := callerOf(r)
	q, ok := parseHierarchyQuery(w, r, p.ByName("roomId"))
	if !ok {
		return
	}
	var out map[string]any
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		root, err := rt.Room(q.token.Root)
		if err != nil || !roomPreviewable(rt, root, c.UserID) {
			return nil
		}
		rooms, more := walkHierarchy(rt, c.UserID, q)
		out = map[string]any{"rooms": rooms}
		if more {
			next := q.token
			next.Skip += len(rooms)
			out["next_batch"] = next.encode()
		}
		return nil
	})
	if out == nil {
		writeError(w, http.StatusForbidden, "M_FORBIDDEN", "You are not allowed to view this room.")
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// parseHierarchyQuery reads limit, max_depth, suggested_only and from; on
// failure it has written the 400.
func parseHierarchyQuery(w http.ResponseWriter, r *http.Request, rootID string) (hierarchyQuery, bool) {
	v := r.URL.Query()
	q := hierarchyQuery{limit: hierarchyDefaultLimit, token: hierarchyToken{Root: rootID, MaxDepth: hierarchyMaxDepth}}
	bad := func(msg string) (hierarchyQuery, bool) {
		writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", msg)
		return q, false
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			return bad("limit must be an integer greater than zero")
		}
		q.limit = min(n, hierarchyMaxLimit)
	}
	if s := v.Get("max_depth"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return bad("max_depth must be a non-negative integer")
		}
		q.token.MaxDepth = min(n, hierarchyMaxDepth)
	}
	switch v.Get("suggested_only") {
	case "", "false":
	case "true":
		q.token.SuggestedOnly = true
	default:
		return bad("suggested_only must be true or false")
	}
	if s := v.Get("from"); s != "" {
		t, ok := decodeHierarchyToken(s)
		if !ok || t.Root != rootID {
			return bad("unknown from token")
		}
		if t.SuggestedOnly != q.token.SuggestedOnly || t.MaxDepth != q.token.MaxDepth {
			return bad("suggested_only and max_depth cannot change on paginated requests")
		}
		q.token = t
	}
	return q, true
}

// walkHierarchy walks depth first from the root: a room's children come
// right after it, in the spec's order, each space's subtree before its
// next sibling. Rooms the user may not preview are left out with their
// subtrees; a room reached twice (a loop) is visited once. It returns the
// page after token.Skip rooms and whether more follow.
func walkHierarchy(rt *fsm.ReadTx, userID string, q hierarchyQuery) ([]hierarchyRoom, bool) {
	type entry struct {
		roomID string
		depth  int
	}
	stack := []entry{{q.token.Root, 0}}
	seen := map[string]bool{}
	out := []hierarchyRoom{}
	emitted := 0
	for len(stack) > 0 && len(seen) < hierarchyMaxWalk {
		e := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[e.roomID] {
			continue
		}
		seen[e.roomID] = true
		room, err := rt.Room(e.roomID)
		if err != nil || !roomPreviewable(rt, room, userID) {
			continue
		}
		// Rooms up to Skip were on earlier pages: only their children
		// matter now.
		emitted++
		if emitted > q.token.Skip && len(out) == q.limit {
			return out, true
		}
		children := []strippedChild{} // required, even when empty
		if create, err := rt.StateEvent(room.RoomID, "m.room.create", ""); err == nil &&
			gjson.GetBytes(create.PDU, "content.type").Str == "m.space" {
			children = spaceChildren(rt, room.RoomID, q.token.SuggestedOnly)
		}
		if emitted > q.token.Skip {
			out = append(out, hierarchyRoom{roomSummaryChunk: summarizeRoom(rt, room), ChildrenState: children})
		}
		if e.depth < q.token.MaxDepth {
			for i := len(children) - 1; i >= 0; i-- {
				stack = append(stack, entry{children[i].StateKey, e.depth + 1})
			}
		}
	}
	return out, false
}

// spaceChildren lists a space's valid m.space.child events (a non-empty
// via list of strings) in the spec's order: by a valid order string, then
// by origin_server_ts, then by room ID.
func spaceChildren(rt *fsm.ReadTx, roomID string, suggestedOnly bool) []strippedChild {
	type sortable struct {
		child strippedChild
		order string
	}
	var list []sortable
	for k, evID := range rt.CurrentState(roomID, "m.space.child") {
		ev, err := rt.Event(evID)
		if err != nil || ev.Rejected || k[1] == "" {
			continue
		}
		content := gjson.GetBytes(ev.PDU, "content")
		if !validVia(content.Get("via")) || (suggestedOnly && content.Get("suggested").Type != gjson.True) {
			continue
		}
		list = append(list, sortable{
			child: strippedChild{Type: "m.space.child", StateKey: k[1], Content: json.RawMessage(content.Raw),
				Sender: ev.Sender, OriginServerTS: gjson.GetBytes(ev.PDU, "origin_server_ts").Int(), RoomID: roomID},
			order: validChildOrder(content.Get("order")),
		})
	}
	sort.Slice(list, func(i, j int) bool {
		a, b := list[i], list[j]
		if (a.order != "") != (b.order != "") {
			return a.order != ""
		}
		if a.order != b.order {
			return a.order < b.order
		}
		if a.child.OriginServerTS != b.child.OriginServerTS {
			return a.child.OriginServerTS < b.child.OriginServerTS
		}
		return a.child.StateKey < b.child.StateKey
	})
	out := make([]strippedChild, len(list))
	for i, s := range list {
		out[i] = s.child
	}
	return out
}

func validVia(via gjson.Result) bool {
	arr := via.Array()
	if !via.IsArray() || len(arr) == 0 {
		return false
	}
	for _, v := range arr {
		if v.Type != gjson.String || v.Str == "" {
			return false
		}
	}
	return true
}

// validChildOrder is the order key if it is a string of 1 to 50
// characters in \x20-\x7E, else "" (treated as absent).
func validChildOrder(v gjson.Result) string {
	if v.Type != gjson.String || len(v.Str) == 0 || len(v.Str) > 50 {
		return ""
	}
	for i := 0; i < len(v.Str); i++ {
		if v.Str[i] < 0x20 || v.Str[i] > 0x7e {
			return ""
		}
	}
	return v.Str
}
