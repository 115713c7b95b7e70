package clientapi

import (
	"encoding/json"
	"net/http"

	"github.com/julienschmidt/httprouter"

	"github.com/ganglion/ganglion/fsm"
)

// sendToDevice is PUT /sendToDevice/{eventType}/{txnId}. The txn is scoped
// to the sending device, so a retry (even after a leader change) delivers
// nothing twice.
func (a *API) sendToDevice(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	c := callerOf(r)
	var body struct {
		Messages map[string]map[string]json.RawMessage `json:"messages"`
	}
	if !a.readJSON(w, r, &body) {
		return
	}
	if body.Messages == nil {
		writeError(w, http.StatusBadRequest, "M_MISSING_PARAM", "messages is required")
		return
	}
	for userID, devices := range body.Messages {
		if !validUserID(userID) {
			writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", userID+" is not a valid user ID")
			return
		}
		for _, content := range devices {
			if !isJSONObject(content) {
				writeError(w, http.StatusBadRequest, "M_BAD_JSON", "each message must be a JSON object")
				return
			}
		}
	}
	txn := &fsm.TxnKey{UserID: c.UserID, DeviceID: c.DeviceID, Endpoint: fsm.ToDeviceEndpoint, TxnID: p.ByName("txnId")}
	var seen bool
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		seen = rt.TxnResult(txn) != nil
		return nil
	})
	if !seen {
		if _, ok := a.propose(w, r.Context(), fsm.OpToDeviceSend, fsm.ToDeviceSend{
			Sender: c.UserID, Type: p.ByName("eventType"), Messages: body.Messages, Txn: txn,
		}); !ok {
			return
		}
	}
	writeJSON(w, http.StatusOK, struct{}{})
}
