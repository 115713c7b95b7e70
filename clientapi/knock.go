package clientapi

import (
	"net/http"
	"strings"

	"github.com/julienschmidt/httprouter"

	"github.com/ganglion/ganglion/fsm"
)

// POST /knock/{roomIdOrAlias} (knocking.yaml): asks to join a room whose
// join rule allows knocking. The auth rules (join rule knock or
// knock_restricted, not banned, not already joined or invited) are the
// room service's; this resolves the target and reports unknown rooms as
// 404. via only matters for remote rooms, which need federation.
func (a *API) knock(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	c := callerOf(r)
	target := p.ByName("roomIdOrAlias")
	roomID, known := "", false
	switch {
	case strings.HasPrefix(target, "#"):
		if _, _, ok := parseAlias(target); !ok {
			writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "invalid room alias")
			return
		}
		_ = a.store.View(func(rt *fsm.ReadTx) error {
			roomID, _, known = rt.AliasRoom(target)
			return nil
		})
	case validRoomID(target):
		roomID = target
		_ = a.store.View(func(rt *fsm.ReadTx) error {
			_, err := rt.Room(roomID)
			known = err == nil
			return nil
		})
	default:
		writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "expected a room ID or alias")
		return
	}
	var body membershipBody
	if !a.readJSON(w, r, &body) {
		return
	}
	if a.remote != nil && (!known || !a.resident(roomID)) {
		// Not in the room here: knock through a server that is.
		id, err := a.remote.KnockRemote(r.Context(), c.UserID, target, viaServers(r), body.Reason)
		if err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"room_id": id})
		return
	}
	if !known {
		writeError(w, http.StatusNotFound, "M_NOT_FOUND", "room "+target+" not found")
		return
	}
	if err := a.setMembership(r, roomID, c.UserID, c.UserID, "knock", body.Reason); err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"room_id": roomID})
}
