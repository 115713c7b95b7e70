package clientapi

import (
	"encoding/json"
	"time"

	"github.com/tidwall/gjson"

	"github.com/ganglion/ganglion/fsm"
)

// ClientEvent is the client-format event of the spec's ClientEvent schema.
type ClientEvent struct {
	Content        json.RawMessage `json:"content"`
	EventID        string          `json:"event_id"`
	OriginServerTS int64           `json:"origin_server_ts"`
	RoomID         string          `json:"room_id,omitempty"`
	Sender         string          `json:"sender"`
	StateKey       *string         `json:"state_key,omitempty"`
	Type           string          `json:"type"`
	Redacts        string          `json:"redacts,omitempty"`
	Unsigned       map[string]any  `json:"unsigned,omitempty"`
}

// formatEvent turns a stored event into the client format for viewer
// (whose device alone sees unsigned.transaction_id, invariant 4). rt is
// used to fill prev_content and redacted_because.
func formatEvent(rt *fsm.ReadTx, rec *fsm.EventRecord, viewer *Caller) *ClientEvent {
	content := gjson.GetBytes(rec.PDU, "content").Raw
	if content == "" {
		content = "{}"
	}
	ev := &ClientEvent{
		Content: json.RawMessage(content), EventID: rec.EventID, OriginServerTS: rec.TS,
		RoomID: rec.RoomID, Sender: rec.Sender, StateKey: rec.StateKey, Type: rec.Type,
		Unsigned: map[string]any{},
	}
	if rec.Type == "m.room.redaction" {
		if r := gjson.GetBytes(rec.PDU, "redacts"); r.Exists() {
			ev.Redacts = r.Str
		} else {
			ev.Redacts = gjson.GetBytes(rec.PDU, "content.redacts").Str
		}
	}
	if age := time.Now().UnixMilli() - rec.TS; age >= 0 {
		ev.Unsigned["age"] = age
	}
	if viewer != nil && rec.TxnID != "" && viewer.UserID == rec.Sender && viewer.DeviceID == rec.TxnDevice {
		ev.Unsigned["transaction_id"] = rec.TxnID
	}
	if rec.StateKey != nil && rec.PrevState != "" && rt != nil {
		if prev, err := rt.Event(rec.PrevState); err == nil {
			ev.Unsigned["replaces_state"] = prev.EventID
			if pc := gjson.GetBytes(prev.PDU, "content"); pc.Exists() {
				ev.Unsigned["prev_content"] = json.RawMessage(pc.Raw)
			}
			ev.Unsigned["prev_sender"] = prev.Sender
		}
	}
	if rec.RedactedBecause != "" && rt != nil {
		if red, err := rt.Event(rec.RedactedBecause); err == nil {
			ev.Unsigned["redacted_because"] = formatEvent(nil, red, nil)
			// redacted_by is Synapse's shorthand, which Complement reads.
			ev.Unsigned["redacted_by"] = red.EventID
		}
	}
	return ev
}

// formatEvents formats a list in order.
func formatEvents(rt *fsm.ReadTx, recs []*fsm.EventRecord, viewer *Caller) []*ClientEvent {
	out := make([]*ClientEvent, 0, len(recs))
	for _, r := range recs {
		out = append(out, formatEvent(rt, r, viewer))
	}
	return out
}

// stripRoomID drops room_id, as /sync's room timelines do.
func stripRoomID(evs []*ClientEvent) []*ClientEvent {
	for _, e := range evs {
		e.RoomID = ""
	}
	return evs
}
