package clientapi

import (
	"encoding/json"
	"net/http"

	"github.com/julienschmidt/httprouter"

	"github.com/ganglion/ganglion/fsm"
)

// receipt is POST /rooms/{roomId}/receipt/{receiptType}/{eventId}. An
// m.fully_read "receipt" moves the read marker, as /read_markers does.
func (a *API) receipt(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	c := callerOf(r)
	roomID, rType, eventID := p.ByName("roomId"), p.ByName("receiptType"), p.ByName("eventId")
	if rType != fsm.ReceiptRead && rType != fsm.ReceiptReadPrivate && rType != fsm.ReceiptFullyRead {
		writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "receipt type must be m.read, m.read.private or m.fully_read")
		return
	}
	var body map[string]json.RawMessage
	if !a.readJSON(w, r, &body) {
		return
	}
	threadID := ""
	if raw, ok := body["thread_id"]; ok {
		if json.Unmarshal(raw, &threadID) != nil || threadID == "" {
			writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "thread_id field must be a non-empty string")
			return
		}
		if rType == fsm.ReceiptFullyRead {
			writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "thread_id is not allowed for m.fully_read")
			return
		}
	}
	if !validRoomID(roomID) {
		writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", roomID+" is not a valid room ID")
		return
	}
	cmd := fsm.ReceiptPut{RoomID: roomID, UserID: c.UserID}
	if rType == fsm.ReceiptFullyRead {
		cmd.FullyRead = eventID
	} else {
		cmd.Receipts = []fsm.ReceiptMark{{Type: rType, EventID: eventID, ThreadID: threadID}}
	}
	if _, ok := a.propose(w, r.Context(), fsm.OpReceiptPut, cmd); !ok {
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

// readMarkers is POST /rooms/{roomId}/read_markers: the fully-read marker
// and the (private) read receipt in one command.
func (a *API) readMarkers(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	c := callerOf(r)
	roomID := p.ByName("roomId")
	var body map[string]json.RawMessage
	if !a.readJSON(w, r, &body) {
		return
	}
	if !validRoomID(roomID) {
		writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", roomID+" is not a valid room ID")
		return
	}
	field := func(name string) (string, bool) {
		raw, present := body[name]
		if !present || isJSONNull(raw) {
			return "", true
		}
		var s string
		if json.Unmarshal(raw, &s) != nil || s == "" {
			writeError(w, http.StatusBadRequest, "M_BAD_JSON", name+" must be an event ID")
			return "", false
		}
		return s, true
	}
	cmd := fsm.ReceiptPut{RoomID: roomID, UserID: c.UserID}
	var ok bool
	if cmd.FullyRead, ok = field(fsm.ReceiptFullyRead); !ok {
		return
	}
	for _, rType := range []string{fsm.ReceiptRead, fsm.ReceiptReadPrivate} {
		eventID, ok := field(rType)
		if !ok {
			return
		}
		if eventID != "" {
			cmd.Receipts = append(cmd.Receipts, fsm.ReceiptMark{Type: rType, EventID: eventID})
		}
	}
	if cmd.FullyRead == "" && len(cmd.Receipts) == 0 {
		writeJSON(w, http.StatusOK, struct{}{})
		return
	}
	if _, ok := a.propose(w, r.Context(), fsm.OpReceiptPut, cmd); !ok {
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}
