package rooms

import (
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/ganglion/ganglion/fsm"
)

// The published room directory, as the client API (list_public_rooms.yaml)
// and the federation API (public_rooms.yaml) both serve it: the same
// entries, order, filter and since tokens.

// PublicRoom is one PublishedRoomsChunk entry.
type PublicRoom struct {
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

// PublicRoomsFilter is the filter of POST /publicRooms.
type PublicRoomsFilter struct {
	GenericSearchTerm string `json:"generic_search_term"`
	// RoomTypes nil means any type; a nil entry means rooms without one.
	RoomTypes *[]*string `json:"room_types"`
}

// PublicRoomsQuery is the body of POST /publicRooms; GET carries Limit and
// Since as query parameters (ParseURL).
type PublicRoomsQuery struct {
	Limit  *int              `json:"limit"`
	Since  string            `json:"since"`
	Filter PublicRoomsFilter `json:"filter"`
}

// PublicRoomsPage is the answer of /publicRooms (PublicRoomsChunk).
type PublicRoomsPage struct {
	Chunk                  []PublicRoom `json:"chunk"`
	NextBatch              string       `json:"next_batch,omitempty"`
	PrevBatch              string       `json:"prev_batch,omitempty"`
	TotalRoomCountEstimate int          `json:"total_room_count_estimate"`
}

// ParseURL reads GET /publicRooms' since and limit parameters.
func (q *PublicRoomsQuery) ParseURL(v url.Values) error {
	q.Since = v.Get("since")
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			return fsm.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", "limit must be an integer")
		}
		q.Limit = &n
	}
	return nil
}

// PublicRooms pages through the published rooms that match q's filter,
// ordered by joined members (largest first) then room ID. Since tokens
// ("p<n>") are offsets into that order; a bad one is 400 M_INVALID_PARAM.
func (s *Service) PublicRooms(q *PublicRoomsQuery) (*PublicRoomsPage, error) {
	offset := 0
	if q.Since != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(q.Since, "p"))
		if err != nil || n < 0 || !strings.HasPrefix(q.Since, "p") {
			return nil, fsm.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", "invalid since token")
		}
		offset = n
	}
	var all []PublicRoom
	if err := s.store.View(func(rt *fsm.ReadTx) error {
		for _, roomID := range rt.PublishedRooms() {
			if pr := DescribePublicRoom(rt, roomID); q.Filter.matches(&pr) {
				all = append(all, pr)
			}
		}
		return nil
	}); err != nil {
		return nil, err
	}
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
	page := &PublicRoomsPage{Chunk: []PublicRoom{}, TotalRoomCountEstimate: len(all)}
	end := min(offset+limit, len(all))
	if offset < len(all) {
		page.Chunk = all[offset:end]
	}
	if end < len(all) {
		page.NextBatch = "p" + strconv.Itoa(end)
	}
	if offset > 0 {
		page.PrevBatch = "p" + strconv.Itoa(max(offset-limit, 0))
	}
	return page, nil
}

// matches applies the filter: a case-insensitive search over name, topic
// and canonical alias, and the room types.
func (f *PublicRoomsFilter) matches(pr *PublicRoom) bool {
	if term := strings.ToLower(f.GenericSearchTerm); term != "" {
		hay := strings.ToLower(pr.Name + "\x00" + pr.Topic + "\x00" + pr.CanonicalAlias)
		if !strings.Contains(hay, term) {
			return false
		}
	}
	if f.RoomTypes == nil {
		return true
	}
	for _, t := range *f.RoomTypes {
		if (t == nil && pr.RoomType == "") || (t != nil && *t == pr.RoomType) {
			return true
		}
	}
	return false
}

// DescribePublicRoom builds a directory entry from the room's current
// state.
func DescribePublicRoom(rt *fsm.ReadTx, roomID string) PublicRoom {
	content := func(evType string) gjson.Result {
		ev, err := rt.StateEvent(roomID, evType, "")
		if err != nil {
			return gjson.Result{}
		}
		return gjson.GetBytes(ev.PDU, "content")
	}
	pr := PublicRoom{
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
