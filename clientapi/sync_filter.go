package clientapi

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/ganglion/ganglion/fsm"
)

// syncFilter is the spec's Filter (sync_filter.yaml) as /sync applies it.
type syncFilter struct {
	EventFields []string    `json:"event_fields,omitempty"`
	EventFormat string      `json:"event_format,omitempty"`
	Presence    eventFilter `json:"presence"`
	AccountData eventFilter `json:"account_data"`
	Room        roomFilter  `json:"room"`
}

// eventFilter is EventFilter. Nil list pointers mean "absent" (everything
// passes); an empty list means nothing passes.
type eventFilter struct {
	Limit      *int      `json:"limit,omitempty"`
	Types      *[]string `json:"types,omitempty"`
	NotTypes   []string  `json:"not_types,omitempty"`
	Senders    *[]string `json:"senders,omitempty"`
	NotSenders []string  `json:"not_senders,omitempty"`
}

// roomEventFilter is RoomEventFilter.
type roomEventFilter struct {
	eventFilter
	Rooms                   *[]string `json:"rooms,omitempty"`
	NotRooms                []string  `json:"not_rooms,omitempty"`
	LazyLoadMembers         bool      `json:"lazy_load_members,omitempty"`
	IncludeRedundantMembers bool      `json:"include_redundant_members,omitempty"`
	ContainsURL             *bool     `json:"contains_url,omitempty"`
	// UnreadThreadNotifications asks /sync for per-thread unread counts.
	UnreadThreadNotifications bool `json:"unread_thread_notifications,omitempty"`
	// LateEvents opts in to late federated messages (sync_late.go).
	LateEvents bool `json:"org.ganglion.late_events,omitempty"`
}

// roomFilter is RoomFilter.
type roomFilter struct {
	Rooms        *[]string       `json:"rooms,omitempty"`
	NotRooms     []string        `json:"not_rooms,omitempty"`
	IncludeLeave bool            `json:"include_leave,omitempty"`
	Ephemeral    roomEventFilter `json:"ephemeral"`
	State        roomEventFilter `json:"state"`
	Timeline     roomEventFilter `json:"timeline"`
	AccountData  roomEventFilter `json:"account_data"`
}

const (
	defaultTimelineLimit = 10
	maxTimelineLimit     = 100
)

// timelineLimit is the per-room timeline size: default 10, capped.
func (f *syncFilter) timelineLimit() int {
	l := f.Room.Timeline.Limit
	switch {
	case l == nil || *l < 0:
		return defaultTimelineLimit
	case *l > maxTimelineLimit:
		return maxTimelineLimit
	}
	return *l
}

// loadSyncFilter resolves the filter query parameter: inline JSON when it
// starts with "{", else a stored filter ID. On failure it writes the error.
func (a *API) loadSyncFilter(w http.ResponseWriter, userID, param string) (*syncFilter, bool) {
	f := &syncFilter{}
	if param == "" {
		return f, true
	}
	raw := json.RawMessage(param)
	if !strings.HasPrefix(param, "{") {
		var err error
		_ = a.store.View(func(rt *fsm.ReadTx) error {
			raw, err = rt.Filter(userID, param)
			return nil
		})
		if err != nil || raw == nil {
			writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "no such filter: "+param)
			return nil, false
		}
	} else if !json.Valid(raw) {
		writeError(w, http.StatusBadRequest, "M_NOT_JSON", "filter is not valid JSON")
		return nil, false
	}
	if err := json.Unmarshal(raw, f); err != nil {
		writeError(w, http.StatusBadRequest, "M_BAD_JSON", "invalid filter: "+err.Error())
		return nil, false
	}
	if f.EventFormat != "" && f.EventFormat != "client" && f.EventFormat != "federation" {
		writeError(w, http.StatusBadRequest, "M_BAD_JSON", "event_format must be client or federation")
		return nil, false
	}
	return f, true
}

// globMatch matches s against a pattern where "*" is any run of characters.
func globMatch(pattern, s string) bool {
	if !strings.Contains(pattern, "*") {
		return pattern == s
	}
	parts := strings.Split(pattern, "*")
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	for i, p := range parts[1:] {
		if i == len(parts)-2 {
			return strings.HasSuffix(s, p)
		}
		j := strings.Index(s, p)
		if j < 0 {
			return false
		}
		s = s[j+len(p):]
	}
	return true
}

func anyGlob(patterns []string, s string) bool {
	for _, p := range patterns {
		if globMatch(p, s) {
			return true
		}
	}
	return false
}

// allows reports whether an event of this type and sender passes.
func (f *eventFilter) allows(evType, sender string) bool {
	if anyGlob(f.NotTypes, evType) {
		return false
	}
	if f.Types != nil && !anyGlob(*f.Types, evType) {
		return false
	}
	if slices.Contains(f.NotSenders, sender) {
		return false
	}
	if f.Senders != nil && !slices.Contains(*f.Senders, sender) {
		return false
	}
	return true
}

// allowsNone reports the {"types": []} shape that switches a section off.
func (f *eventFilter) allowsNone() bool {
	return (f.Types != nil && len(*f.Types) == 0) || slices.Contains(f.NotTypes, "*")
}

func roomListAllows(rooms *[]string, notRooms []string, roomID string) bool {
	if slices.Contains(notRooms, roomID) {
		return false
	}
	return rooms == nil || slices.Contains(*rooms, roomID)
}

// allowsRoom applies the room filter's rooms/not_rooms.
func (f *roomFilter) allowsRoom(roomID string) bool {
	return roomListAllows(f.Rooms, f.NotRooms, roomID)
}

// allowsEvent applies a RoomEventFilter to a stored event.
func (f *roomEventFilter) allowsEvent(rec *fsm.EventRecord) bool {
	if !roomListAllows(f.Rooms, f.NotRooms, rec.RoomID) || !f.allows(rec.Type, rec.Sender) {
		return false
	}
	if f.ContainsURL != nil {
		has := gjson.GetBytes(rec.PDU, "content.url").Exists()
		if has != *f.ContainsURL {
			return false
		}
	}
	return true
}

// passesAll reports whether the filter lets every event through.
func (f *roomEventFilter) passesAll() bool {
	return f.Types == nil && len(f.NotTypes) == 0 && f.Senders == nil && len(f.NotSenders) == 0 &&
		f.Rooms == nil && len(f.NotRooms) == 0 && f.ContainsURL == nil
}

// renderEvent formats an event as the filter asks: client format (room_id
// dropped when stripRoom, then decorate when given), or federation format,
// then event_fields.
func (f *syncFilter) renderEvent(rt *fsm.ReadTx, rec *fsm.EventRecord, viewer *Caller, stripRoom bool, membership string, decorate func(*ClientEvent)) any {
	if f.EventFormat == "federation" {
		raw := []byte(rec.PDU)
		if !gjson.GetBytes(raw, "event_id").Exists() {
			// Room v3+ PDUs carry no event_id; clients still need it.
			if withID, err := sjson.SetBytes(append([]byte(nil), raw...), "event_id", rec.EventID); err == nil {
				raw = withID
			}
		}
		if len(f.EventFields) == 0 {
			return json.RawMessage(raw)
		}
		return projectFields(raw, f.EventFields)
	}
	ev := formatEvent(rt, rec, viewer)
	if stripRoom {
		ev.RoomID = ""
	}
	if membership != "" {
		ev.Unsigned["membership"] = membership
	}
	if decorate != nil {
		decorate(ev)
	}
	if len(f.EventFields) == 0 {
		return ev
	}
	raw, err := json.Marshal(ev)
	if err != nil {
		return ev
	}
	return projectFields(raw, f.EventFields)
}

// projectFields keeps only the listed dot-separated paths (a backslash
// escapes a literal dot).
func projectFields(raw json.RawMessage, fields []string) any {
	if len(fields) == 0 {
		return raw
	}
	out := []byte("{}")
	for _, field := range fields {
		path := gjsonPath(field)
		v := gjson.GetBytes(raw, path)
		if !v.Exists() {
			continue
		}
		if next, err := sjson.SetRawBytes(out, path, []byte(v.Raw)); err == nil {
			out = next
		}
	}
	return json.RawMessage(out)
}

// gjsonPath turns a spec property path into gjson/sjson syntax, escaping
// the characters those libraries treat specially.
func gjsonPath(field string) string {
	var b strings.Builder
	for i := 0; i < len(field); i++ {
		c := field[i]
		switch {
		case c == '\\' && i+1 < len(field) && field[i+1] == '.':
			b.WriteString(`\.`)
			i++
		case c == '.':
			b.WriteByte('.')
		case strings.IndexByte(`*?|#@\!=<>%:`, c) >= 0:
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
