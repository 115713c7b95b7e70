package clientapi

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/ganglion/ganglion/fsm"
)

// RemoteMembership joins, leaves and knocks on rooms this server is not in,
// through another server (federation implements it; the clientapi cannot
// import federation).
type RemoteMembership interface {
	JoinRemote(ctx context.Context, userID, roomIDOrAlias string, via []string, content map[string]any) (string, error)
	LeaveRemote(ctx context.Context, userID, roomID, reason string) error
	KnockRemote(ctx context.Context, userID, roomIDOrAlias string, via []string, reason string) (string, error)
}

// SetRemoteMembership wires federation (before serving).
func (a *API) SetRemoteMembership(rm RemoteMembership) { a.remote = rm }

// viaServers are the servers a client names for a remote room: the via
// and (deprecated) server_name query parameters.
func viaServers(r *http.Request) []string {
	q := r.URL.Query()
	return append(append([]string{}, q["via"]...), q["server_name"]...)
}

// joinContent is the member event content a remote join carries.
func joinContent(extra map[string]json.RawMessage, reason string) map[string]any {
	out := map[string]any{}
	for k, v := range extra {
		out[k] = v
	}
	if reason != "" {
		out["reason"] = reason
	}
	return out
}

// joinRemote joins the caller to a room through another server and
// answers the client.
func (a *API) joinRemote(w http.ResponseWriter, r *http.Request, target string, extra map[string]json.RawMessage, reason string) {
	c := callerOf(r)
	if a.remote == nil {
		writeError(w, http.StatusNotFound, "M_NOT_FOUND", "room "+target+" is not known here and federation is off")
		return
	}
	roomID, err := a.remote.JoinRemote(r.Context(), c.UserID, target, viaServers(r), joinContent(extra, reason))
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"room_id": roomID})
}

// resident reports whether the room's events can be built here: one of
// this server's users is joined, or the room never had a member of another
// server (a local room everyone left).
func (a *API) resident(roomID string) bool {
	if a.rooms.IsResident(roomID) {
		return true
	}
	local := true
	suffix := ":" + a.rooms.ServerName()
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		if _, err := rt.Room(roomID); err != nil {
			local = false
			return nil
		}
		for user := range rt.RoomMembers(roomID) {
			if !strings.HasSuffix(user, suffix) {
				local = false
			}
		}
		return nil
	})
	return local
}
