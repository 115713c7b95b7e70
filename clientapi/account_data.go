package clientapi

import (
	"errors"
	"net/http"

	"github.com/julienschmidt/httprouter"

	"github.com/ganglion/ganglion/fsm"
)

// serverManagedAccountData are the types clients may read but not set
// (account_data.md: 405 M_BAD_JSON, global and per room).
var serverManagedAccountData = map[string]bool{"m.fully_read": true, "m.push_rules": true}

// ownUserParam checks that the path's userId is the caller; on failure it
// writes 403 M_FORBIDDEN.
func ownUserParam(w http.ResponseWriter, r *http.Request, p httprouter.Params, what string) (*Caller, bool) {
	c := callerOf(r)
	if p.ByName("userId") != c.UserID {
		writeError(w, http.StatusForbidden, "M_FORBIDDEN", "cannot "+what+" for other users")
		return nil, false
	}
	return c, true
}

func (a *API) getAccountData(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	a.readAccountData(w, r, p, "")
}

func (a *API) getRoomAccountData(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	roomID := p.ByName("roomId")
	if !validRoomID(roomID) {
		writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", roomID+" is not a valid room ID")
		return
	}
	a.readAccountData(w, r, p, roomID)
}

func (a *API) readAccountData(w http.ResponseWriter, r *http.Request, p httprouter.Params, roomID string) {
	c, ok := ownUserParam(w, r, p, "read account data")
	if !ok {
		return
	}
	var rec *fsm.AccountDataRecord
	err := a.store.View(func(rt *fsm.ReadTx) error {
		var err error
		rec, err = rt.AccountData(c.UserID, roomID, p.ByName("type"))
		return err
	})
	switch {
	case errors.Is(err, fsm.ErrNotFound):
		writeError(w, http.StatusNotFound, "M_NOT_FOUND", "account data not found")
	case err != nil:
		writeErr(w, err)
	default:
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(rec.Content)
	}
}

func (a *API) putAccountData(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	a.writeAccountData(w, r, p, "")
}

func (a *API) putRoomAccountData(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	roomID := p.ByName("roomId")
	if !validRoomID(roomID) {
		writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", roomID+" is not a valid room ID")
		return
	}
	a.writeAccountData(w, r, p, roomID)
}

func (a *API) writeAccountData(w http.ResponseWriter, r *http.Request, p httprouter.Params, roomID string) {
	c, ok := ownUserParam(w, r, p, "add account data")
	if !ok {
		return
	}
	evType := p.ByName("type")
	if serverManagedAccountData[evType] {
		writeError(w, http.StatusMethodNotAllowed, "M_BAD_JSON", "cannot set "+evType+" through this API")
		return
	}
	content, ok := a.readObject(w, r)
	if !ok {
		return
	}
	if _, ok := a.propose(w, r.Context(), fsm.OpAccountDataPut, fsm.AccountDataPut{
		UserID: c.UserID, RoomID: roomID, Type: evType, Content: content,
	}); !ok {
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}
