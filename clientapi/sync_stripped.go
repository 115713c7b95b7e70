package clientapi

import (
	"encoding/json"

	"github.com/tidwall/gjson"

	"github.com/ganglion/ganglion/fsm"
)

// The invite and knock sections of /sync: stripped state.

// strippedStateTypes are the state events shown to invitees and knockers.
var strippedStateTypes = []string{"m.room.create", "m.room.join_rules", "m.room.name",
	"m.room.avatar", "m.room.topic", "m.room.canonical_alias", "m.room.encryption"}

type strippedEvent struct {
	Type     string          `json:"type"`
	StateKey string          `json:"state_key"`
	Sender   string          `json:"sender"`
	Content  json.RawMessage `json:"content"`
}

func (s *syncer) strippedRoom(roomID string, m fsm.MembershipRecord) *strippedRoom {
	if s.since >= 0 && m.Pos <= s.since && !s.p.fullState {
		return nil
	}
	ev := s.event(m.EventID)
	if ev == nil {
		return nil
	}
	events := s.strippedState(roomID, ev, "unsigned."+m.Membership+"_room_state")
	events = append(events, s.render(ev))
	list := &eventList{Events: events}
	if m.Membership == "knock" {
		return &strippedRoom{KnockState: list}
	}
	return &strippedRoom{InviteState: list}
}

// strippedState prefers the state a remote server attached to the member
// event (pruned to the stripped shape), else reads the room's own state.
func (s *syncer) strippedState(roomID string, member *fsm.EventRecord, attachedPath string) []any {
	out := []any{}
	if attached := gjson.GetBytes(member.PDU, attachedPath); attached.IsArray() {
		for _, e := range attached.Array() {
			content := e.Get("content").Raw
			if !e.Get("type").Exists() || content == "" {
				continue
			}
			out = append(out, strippedEvent{Type: e.Get("type").Str, StateKey: e.Get("state_key").Str,
				Sender: e.Get("sender").Str, Content: json.RawMessage(content)})
		}
		return out
	}
	for _, t := range strippedStateTypes {
		rec, err := s.rt.StateEvent(roomID, t, "")
		if err != nil {
			continue
		}
		content := gjson.GetBytes(rec.PDU, "content").Raw
		if content == "" {
			content = "{}"
		}
		out = append(out, strippedEvent{Type: rec.Type, StateKey: "", Sender: rec.Sender, Content: json.RawMessage(content)})
	}
	return out
}
