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
	a.sendEvent(w, r, roomID, evType, sendTxn(c, "send\x1f"+roomID+"\x1f"+evType, txnID))
}

// POST /rooms/{roomId}/send/{eventType}: the original API's send without
// a transaction ID (sytest and Complement's TestSendAndFetchMessage still
// use it; the spec keeps only the PUT form), so a retry may duplicate.
func (a *API) sendNoTxn(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	a.sendEvent(w, r, p.ByName("roomId"), p.ByName("eventType"), nil)
}

func (a *API) sendEvent(w http.ResponseWriter, r *http.Request, roomID, evType string, txn *fsm.TxnKey) {
	c := callerOf(r)
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
	eventID, err := a.rooms.Send(r.Context(), rooms.SendRequest{RoomID: roomID, EventSpec: spec, Txn: txn})
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
	a.redactEvent(w, r, roomID, target, sendTxn(c, "redact\x1f"+roomID+"\x1f"+target, txnID))
}

// POST /rooms/{roomId}/redact/{eventId}: the original API's redaction
// without a transaction ID (Complement's TestRoomVersions still uses it).
func (a *API) redactNoTxn(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	a.redactEvent(w, r, p.ByName("roomId"), p.ByName("eventId"), nil)
}

func (a *API) redactEvent(w http.ResponseWriter, r *http.Request, roomID, target string, txn *fsm.TxnKey) {
	c := callerOf(r)
	otherRoom := false
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		if ev, err := rt.Event(target); err == nil && ev.RoomID != roomID {
			otherRoom = true
		}
		return nil
	})
	if otherRoom {
		// An unknown event may be redacted; one of another room may not.
		writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "the event belongs to another room")
		return
	}
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
		Txn:       txn})
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
