package clientapi

import (
	"encoding/json"
	"net/http"

	"github.com/julienschmidt/httprouter"
	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
	"maunium.net/go/mautrix/id"

	"github.com/ganglion/ganglion/fsm"
	"github.com/ganglion/ganglion/rooms"
)

// Transaction IDs are scoped to the device and the request path (the spec:
// a retransmission has the same txnId and the same path), so the endpoint
// part of the key carries the path's other parameters.
func sendTxn(c *Caller, endpoint, txnID string) *fsm.TxnKey {
	return &fsm.TxnKey{UserID: c.UserID, DeviceID: c.DeviceID, Endpoint: endpoint, TxnID: txnID}
}

// PUT /rooms/{roomId}/send/{eventType}/{txnId}.
func (a *API) send(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	c := callerOf(r)
	roomID, evType, txnID := p.ByName("roomId"), p.ByName("eventType"), p.ByName("txnId")
	content, ok := a.readObject(w, r)
	if !ok {
		return
	}
	spec := rooms.EventSpec{Type: evType, Sender: c.UserID, Content: content}
	if evType == "m.room.redaction" {
		// Clients send redactions here with content.redacts in every room
		// version; before v11 it moves to the top level.
		if v := gjson.GetBytes(content, "redacts"); v.Type == gjson.String {
			spec.Redacts = v.Str
			if !a.roomVersion(roomID).RedactsInContent() {
				if stripped, err := sjson.DeleteBytes(content, "redacts"); err == nil {
					spec.Content = stripped
				}
			}
		}
	}
	eventID, err := a.rooms.Send(r.Context(), rooms.SendRequest{RoomID: roomID, EventSpec: spec,
		Txn: sendTxn(c, "send\x1f"+roomID+"\x1f"+evType, txnID)})
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"event_id": eventID})
}

// PUT /rooms/{roomId}/redact/{eventId}/{txnId}.
func (a *API) redact(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	c := callerOf(r)
	roomID, target, txnID := p.ByName("roomId"), p.ByName("eventId"), p.ByName("txnId")
	var body struct {
		Reason *string `json:"reason"`
	}
	if !a.readJSON(w, r, &body) {
		return
	}
	content := map[string]any{}
	if body.Reason != nil {
		content["reason"] = *body.Reason
	}
	raw, _ := json.Marshal(content)
	eventID, err := a.rooms.Send(r.Context(), rooms.SendRequest{RoomID: roomID,
		EventSpec: rooms.EventSpec{Type: "m.room.redaction", Sender: c.UserID, Content: raw, Redacts: target},
		Txn:       sendTxn(c, "redact\x1f"+roomID+"\x1f"+target, txnID)})
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"event_id": eventID})
}

// roomVersion is the stored room's version ("" when unknown).
func (a *API) roomVersion(roomID string) id.RoomVersion {
	var v id.RoomVersion
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		if room, err := rt.Room(roomID); err == nil {
			v = id.RoomVersion(room.Version)
		}
		return nil
	})
	return v
}
