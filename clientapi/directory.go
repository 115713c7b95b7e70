package clientapi

import (
	"net/http"

	"github.com/julienschmidt/httprouter"
	"github.com/tidwall/gjson"
	"maunium.net/go/mautrix/id"

	"github.com/ganglion/ganglion/fsm"
	"github.com/ganglion/ganglion/rooms"
)

// Room aliases (directory.yaml), directory visibility and the published
// room directory (list_public_rooms.yaml).

// GET /directory/room/{roomAlias}.
func (a *API) getAlias(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	alias := p.ByName("alias")
	if _, _, ok := parseAlias(alias); !ok {
		writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "room alias invalid")
		return
	}
	roomID, found := "", false
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		roomID, _, found = rt.AliasRoom(alias)
		return nil
	})
	if !found {
		writeError(w, http.StatusNotFound, "M_NOT_FOUND", "room alias "+alias+" not found")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"room_id": roomID, "servers": []string{a.rooms.ServerName()}})
}

// PUT /directory/room/{roomAlias}: only our own aliases, only by members.
func (a *API) putAlias(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	c := callerOf(r)
	alias := p.ByName("alias")
	var body struct {
		RoomID *string `json:"room_id"`
	}
	if !a.readJSON(w, r, &body) {
		return
	}
	_, server, ok := parseAlias(alias)
	if !ok || server != a.rooms.ServerName() {
		writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "room alias invalid or not on this server")
		return
	}
	if body.RoomID == nil {
		writeError(w, http.StatusBadRequest, "M_BAD_JSON", "room_id is required")
		return
	}
	if !validRoomID(*body.RoomID) {
		writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "room_id must be a room ID")
		return
	}
	roomID := *body.RoomID
	var ferr *fsm.Error
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		switch _, _, taken := rt.AliasRoom(alias); {
		case taken:
			ferr = fsm.Errorf(http.StatusConflict, "M_UNKNOWN", "room alias %s already exists", alias)
		case !roomExists(rt, roomID):
			ferr = fsm.Errorf(http.StatusNotFound, "M_NOT_FOUND", "unknown room %s", roomID)
		case !isJoined(rt, c.UserID, roomID):
			ferr = fsm.Errorf(http.StatusForbidden, "M_FORBIDDEN", "you must be in the room to give it an alias")
		}
		return nil
	})
	if ferr != nil {
		writeErr(w, ferr)
		return
	}
	if _, _, err := a.node.Propose(r.Context(), fsm.OpAliasPut, fsm.AliasCmd{Alias: alias, RoomID: roomID, Creator: c.UserID}); err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

// DELETE /directory/room/{roomAlias}: by the alias's creator, a server
// admin, or someone who may change the room's canonical alias.
func (a *API) deleteAlias(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	c := callerOf(r)
	alias := p.ByName("alias")
	if _, _, ok := parseAlias(alias); !ok {
		writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "room alias invalid")
		return
	}
	var ferr *fsm.Error
	var roomID string
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		var creator string
		var found bool
		roomID, creator, found = rt.AliasRoom(alias)
		switch {
		case !found:
			ferr = fsm.Errorf(http.StatusNotFound, "M_NOT_FOUND", "room alias %s not found", alias)
		case creator == c.UserID || isServerAdmin(rt, c.UserID):
		case !isJoined(rt, c.UserID, roomID) || !mayChangeDirectory(rt, roomID, c.UserID):
			ferr = fsm.Errorf(http.StatusForbidden, "M_FORBIDDEN", "you may not remove this alias")
		}
		return nil
	})
	if ferr != nil {
		writeErr(w, ferr)
		return
	}
	if _, _, err := a.node.Propose(r.Context(), fsm.OpAliasDelete, fsm.AliasCmd{Alias: alias}); err != nil {
		writeErr(w, err)
		return
	}
	a.dropCanonicalAlias(r, roomID, c.UserID, alias)
	writeJSON(w, http.StatusOK, struct{}{})
}

// GET /rooms/{roomId}/aliases: joined members, or anyone if world-readable.
func (a *API) roomAliases(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	c := callerOf(r)
	roomID := p.ByName("roomId")
	var aliases []string
	var ferr *fsm.Error
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		if !roomExists(rt, roomID) || (!isJoined(rt, c.UserID, roomID) && !worldReadable(rt, roomID)) {
			ferr = errNotInRoom
			return nil
		}
		aliases = rt.RoomAliases(roomID)
		return nil
	})
	if ferr != nil {
		writeErr(w, ferr)
		return
	}
	if aliases == nil {
		aliases = []string{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"aliases": aliases})
}

// GET /directory/list/room/{roomId}.
func (a *API) getVisibility(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	var room *fsm.RoomRecord
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		room, _ = rt.Room(p.ByName("roomId"))
		return nil
	})
	if room == nil {
		writeError(w, http.StatusNotFound, "M_NOT_FOUND", "room not found")
		return
	}
	vis := "private"
	if room.Published {
		vis = "public"
	}
	writeJSON(w, http.StatusOK, map[string]string{"visibility": vis})
}

// PUT /directory/list/room/{roomId}: members who may change the canonical
// alias (or server admins) publish or unpublish.
func (a *API) putVisibility(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	c := callerOf(r)
	roomID := p.ByName("roomId")
	var body struct {
		Visibility string `json:"visibility"`
	}
	if !a.readJSON(w, r, &body) {
		return
	}
	if body.Visibility == "" {
		body.Visibility = "public"
	}
	if body.Visibility != "public" && body.Visibility != "private" {
		writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "visibility must be public or private")
		return
	}
	var ferr *fsm.Error
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		switch {
		case !roomExists(rt, roomID):
			ferr = fsm.Errorf(http.StatusNotFound, "M_NOT_FOUND", "room not found")
		case isServerAdmin(rt, c.UserID):
		case !isJoined(rt, c.UserID, roomID) || !mayChangeDirectory(rt, roomID, c.UserID):
			ferr = fsm.Errorf(http.StatusForbidden, "M_FORBIDDEN", "you may not change this room's directory visibility")
		}
		return nil
	})
	if ferr != nil {
		writeErr(w, ferr)
		return
	}
	cmd := fsm.PublishCmd{RoomID: roomID, Published: body.Visibility == "public"}
	if _, _, err := a.node.Propose(r.Context(), fsm.OpRoomPublish, cmd); err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

// GET and POST /publicRooms: rooms.Service.PublicRooms, this server's
// directory; server names another server's, which needs federation.
func (a *API) publicRooms(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	q := &rooms.PublicRoomsQuery{}
	if r.Method == http.MethodPost {
		if !a.readJSON(w, r, q) {
			return
		}
	} else if err := q.ParseURL(r.URL.Query()); err != nil {
		writeErr(w, err)
		return
	}
	if server := r.URL.Query().Get("server"); server != "" && server != a.rooms.ServerName() {
		writeError(w, http.StatusNotFound, "M_NOT_FOUND", "cannot list the directory of "+server+": federation is not available")
		return
	}
	page, err := a.rooms.PublicRooms(q)
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, page)
}

func roomExists(rt *fsm.ReadTx, roomID string) bool {
	_, err := rt.Room(roomID)
	return err == nil
}

func isJoined(rt *fsm.ReadTx, userID, roomID string) bool {
	m := rt.Membership(userID, roomID)
	return m != nil && m.Membership == "join"
}

func isServerAdmin(rt *fsm.ReadTx, userID string) bool {
	u, err := rt.User(userID)
	return err == nil && u.Admin
}

// mayChangeDirectory is Synapse's rule for the room list and aliases: the
// power to send m.room.canonical_alias.
func mayChangeDirectory(rt *fsm.ReadTx, roomID, userID string) bool {
	return userPowerLevel(rt, roomID, userID) >= stateEventLevel(rt, roomID, "m.room.canonical_alias")
}

// creatorPower stands for the unlimited power of v12 room creators.
const creatorPower = int64(1) << 53

// userPowerLevel follows the power_levels event (and, from room v12, the
// creators' unlimited power); without one the creator has 100.
func userPowerLevel(rt *fsm.ReadTx, roomID, userID string) int64 {
	room, err := rt.Room(roomID)
	if err != nil {
		return 0
	}
	create, _ := rt.StateEvent(roomID, "m.room.create", "")
	if id.RoomVersion(room.Version).PrivilegedRoomCreators() {
		if userID == room.Creator {
			return creatorPower
		}
		if create != nil {
			for _, ac := range gjson.GetBytes(create.PDU, "content.additional_creators").Array() {
				if ac.Str == userID {
					return creatorPower
				}
			}
		}
	}
	pl, err := rt.StateEvent(roomID, "m.room.power_levels", "")
	if err != nil {
		if userID == room.Creator {
			return 100
		}
		return 0
	}
	c := gjson.GetBytes(pl.PDU, "content")
	if v, ok := c.Get("users").Map()[userID]; ok {
		return v.Int()
	}
	return c.Get("users_default").Int()
}

// stateEventLevel is the power needed to send a state event of evType
// (0 in a room without power levels, as the auth rules say).
func stateEventLevel(rt *fsm.ReadTx, roomID, evType string) int64 {
	pl, err := rt.StateEvent(roomID, "m.room.power_levels", "")
	if err != nil {
		return 0
	}
	c := gjson.GetBytes(pl.PDU, "content")
	if v, ok := c.Get("events").Map()[evType]; ok {
		return v.Int()
	}
	if v := c.Get("state_default"); v.Exists() {
		return v.Int()
	}
	return 50
}
