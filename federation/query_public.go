package federation

import (
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/julienschmidt/httprouter"
	"github.com/tidwall/gjson"

	"github.com/ganglion/ganglion/fsm"
)

// GET and POST /publicRooms (public_rooms.yaml): this server's published
// rooms, in the client API's shape and order (joined members, largest
// first, then room ID); since tokens are offsets into that order ("p<n>",
// as the client API's).

type fedPublicRoom struct {
	RoomID           string `json:"room_id"`
	Name             string `json:"name,omitempty"`
	Topic            string `json:"topic,omitempty"`
	CanonicalAlias   string `json:"canonical_alias,omitempty"`
	AvatarURL        string `json:"avatar_url,omitempty"`
	NumJoinedMembers int    `json:"num_joined_members"`
	WorldReadable    bool   `json:"world_readable"`
	GuestCanJoin     bool   `json:"guest_can_join"`
	JoinRule         string `json:"join_rule,omitempty"`
	RoomType         string `json:"room_type,omitempty"`
}

type fedPublicRoomsQuery struct {
	Limit  *int   `json:"limit"`
	Since  string `json:"since"`
	Filter struct {
		GenericSearchTerm string     `json:"generic_search_term"`
		RoomTypes         *[]*string `json:"room_types"`
	} `json:"filter"`
}

func (a *API) publicRooms(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	if !a.serving(w) {
		return
	}
	q := &fedPublicRoomsQuery{}
	if r.Method == http.MethodPost {
		if !a.readJSON(w, r, q) {
			return
		}
	} else {
		q.Since = r.URL.Query().Get("since")
		if s := r.URL.Query().Get("limit"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil {
				writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "limit must be an integer")
				return
			}
			q.Limit = &n
		}
	}
	offset := 0
	if q.Since != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(q.Since, "p"))
		if err != nil || n < 0 || !strings.HasPrefix(q.Since, "p") {
			writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "invalid since token")
			return
		}
		offset = n
	}
	var all []fedPublicRoom
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		for _, roomID := range rt.PublishedRooms() {
			if pr := describePublicRoom(rt, roomID); q.matches(&pr) {
				all = append(all, pr)
			}
		}
		return nil
	})
	sort.Slice(all, func(i, j int) bool {
		if all[i].NumJoinedMembers != all[j].NumJoinedMembers {
			return all[i].NumJoinedMembers > all[j].NumJoinedMembers
		}
		return all[i].RoomID < all[j].RoomID
	})
	limit := len(all)
	if q.Limit != nil && *q.Limit > 0 {
		limit = *q.Limit
	}
	resp := map[string]any{"total_room_count_estimate": len(all)}
	end := min(offset+limit, len(all))
	chunk := []fedPublicRoom{}
	if offset < len(all) {
		chunk = all[offset:end]
	}
	resp["chunk"] = chunk
	if end < len(all) {
		resp["next_batch"] = "p" + strconv.Itoa(end)
	}
	if offset > 0 {
		resp["prev_batch"] = "p" + strconv.Itoa(max(offset-limit, 0))
	}
	writeJSON(w, http.StatusOK, resp)
}

// matches applies the filter: a case-insensitive search over name, topic
// and canonical alias, and the room types (null meaning "no type").
func (q *fedPublicRoomsQuery) matches(pr *fedPublicRoom) bool {
	if term := strings.ToLower(q.Filter.GenericSearchTerm); term != "" {
		hay := strings.ToLower(pr.Name + "\x00" + pr.Topic + "\x00" + pr.CanonicalAlias)
		if !strings.Contains(hay, term) {
			return false
		}
	}
	if q.Filter.RoomTypes == nil {
		return true
	}
	for _, t := range *q.Filter.RoomTypes {
		if (t == nil && pr.RoomType == "") || (t != nil && *t == pr.RoomType) {
			return true
		}
	}
	return false
}

// describePublicRoom builds a directory entry from the room's current
// state.
func describePublicRoom(rt *fsm.ReadTx, roomID string) fedPublicRoom {
	content := func(evType string) gjson.Result {
		ev, err := rt.StateEvent(roomID, evType, "")
		if err != nil {
			return gjson.Result{}
		}
		return gjson.GetBytes(ev.PDU, "content")
	}
	pr := fedPublicRoom{
		RoomID:         roomID,
		Name:           content("m.room.name").Get("name").Str,
		Topic:          plainTopic(content("m.room.topic")),
		CanonicalAlias: content("m.room.canonical_alias").Get("alias").Str,
		AvatarURL:      content("m.room.avatar").Get("url").Str,
		WorldReadable:  content("m.room.history_visibility").Get("history_visibility").Str == "world_readable",
		GuestCanJoin:   content("m.room.guest_access").Get("guest_access").Str == "can_join",
		JoinRule:       content("m.room.join_rules").Get("join_rule").Str,
		RoomType:       content("m.room.create").Get("type").Str,
	}
	for _, m := range rt.RoomMembers(roomID) {
		if m == "join" {
			pr.NumJoinedMembers++
		}
	}
	return pr
}

// plainTopic is the text/plain representation of an m.room.topic content
// (m.topic first, then the legacy topic field).
func plainTopic(c gjson.Result) string {
	for _, rep := range c.Get(`m\.topic.m\.text`).Array() {
		if mt := rep.Get("mimetype").Str; mt == "" || mt == "text/plain" {
			return rep.Get("body").Str
		}
	}
	return c.Get("topic").Str
}
