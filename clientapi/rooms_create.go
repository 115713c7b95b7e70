package clientapi

import (
	"encoding/json"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/julienschmidt/httprouter"

	"github.com/ganglion/ganglion/fsm"
	"github.com/ganglion/ganglion/rooms"
)

// createRoomBody is the request body of POST /createRoom (create_room.yaml).
// Pointers tell "absent" from "empty": an empty name still sets m.room.name.
type createRoomBody struct {
	Visibility         string              `json:"visibility"`
	Preset             string              `json:"preset"`
	Name               *string             `json:"name"`
	Topic              *string             `json:"topic"`
	RoomAliasName      *string             `json:"room_alias_name"`
	Invite             []string            `json:"invite"`
	InitialState       []initialStateEvent `json:"initial_state"`
	PowerLevelOverride json.RawMessage     `json:"power_level_content_override"`
	CreationContent    json.RawMessage     `json:"creation_content"`
	RoomVersion        string              `json:"room_version"`
	IsDirect           bool                `json:"is_direct"`
}

type initialStateEvent struct {
	Type     *string         `json:"type"`
	StateKey string          `json:"state_key"`
	Content  json.RawMessage `json:"content"`
}

func (a *API) createRoom(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	c := callerOf(r)
	var body createRoomBody
	if !a.readJSON(w, r, &body) {
		return
	}
	req, ferr := a.createRoomRequest(c.UserID, &body)
	if ferr != nil {
		writeErr(w, ferr)
		return
	}
	alias := ""
	if req.AliasLocalpart != "" {
		alias = "#" + req.AliasLocalpart + ":" + a.rooms.ServerName()
		taken := false
		_ = a.store.View(func(rt *fsm.ReadTx) error {
			_, _, taken = rt.AliasRoom(alias)
			return nil
		})
		if taken {
			writeError(w, http.StatusBadRequest, "M_ROOM_IN_USE", "room alias "+alias+" is already in use")
			return
		}
	}
	roomID, err := a.rooms.CreateRoom(r.Context(), *req)
	if err != nil {
		writeErr(w, err)
		return
	}
	resp := map[string]any{"room_id": roomID}
	if alias != "" {
		resp["room_alias"] = alias // Synapse adds it; clients ignore unknown keys
	}
	writeJSON(w, http.StatusOK, resp)
}

// createRoomRequest validates the body and turns it into the service's
// request; every refusal is a 400.
func (a *API) createRoomRequest(creator string, b *createRoomBody) (*rooms.CreateRoomRequest, *fsm.Error) {
	invalid := func(format string, args ...any) *fsm.Error {
		return fsm.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", format, args...)
	}
	switch b.Visibility {
	case "", "public", "private":
	default:
		return nil, invalid("visibility must be public or private")
	}
	switch b.Preset {
	case "", "private_chat", "public_chat", "trusted_private_chat":
	default:
		return nil, invalid("unknown preset %q", b.Preset)
	}
	req := &rooms.CreateRoomRequest{
		Creator: creator, Visibility: b.Visibility, Preset: b.Preset,
		RoomVersion: b.RoomVersion, IsDirect: b.IsDirect,
	}
	if b.Name != nil {
		req.Name, req.HasName = *b.Name, true
	}
	if b.Topic != nil {
		req.Topic, req.HasTopic = *b.Topic, true
	}
	if b.RoomAliasName != nil && *b.RoomAliasName != "" {
		local := *b.RoomAliasName
		if !validAliasLocalpart(local) || strings.IndexFunc(local, unicode.IsSpace) >= 0 {
			return nil, invalid("room_alias_name must be an alias localpart (no ':' or whitespace), like 'wombat'")
		}
		if len("#"+local+":"+a.rooms.ServerName()) > maxIDLength {
			return nil, invalid("room alias is longer than %d bytes", maxIDLength)
		}
		req.AliasLocalpart = local
	}
	seen := map[string]bool{creator: true}
	for _, inv := range b.Invite {
		if !validUserID(inv) {
			return nil, invalid("invalid user ID in invite: %q", inv)
		}
		if !seen[inv] {
			seen[inv] = true
			req.Invite = append(req.Invite, inv)
		}
	}
	for _, st := range b.InitialState {
		if st.Type == nil || *st.Type == "" {
			return nil, fsm.Errorf(http.StatusBadRequest, "M_BAD_JSON", "initial_state entries need a type")
		}
		if !isJSONObject(st.Content) {
			return nil, fsm.Errorf(http.StatusBadRequest, "M_BAD_JSON", "initial_state content must be an object")
		}
		req.InitialState = append(req.InitialState, rooms.StateEventSpec{Type: *st.Type, StateKey: st.StateKey, Content: st.Content})
	}
	if !optionalObject(b.PowerLevelOverride) {
		return nil, fsm.Errorf(http.StatusBadRequest, "M_BAD_JSON", "power_level_content_override must be an object")
	}
	if !optionalObject(b.CreationContent) {
		return nil, fsm.Errorf(http.StatusBadRequest, "M_BAD_JSON", "creation_content must be an object")
	}
	if !isJSONNull(b.PowerLevelOverride) {
		req.PowerLevelOverride = b.PowerLevelOverride
	}
	if !isJSONNull(b.CreationContent) {
		req.CreationContent = b.CreationContent
	}
	return req, nil
}

// maxIDLength is the spec's limit on user IDs, room aliases and event IDs.
const maxIDLength = 255

// validAliasLocalpart follows the appendix: any valid codepoint except ':'
// and NUL, and not empty.
func validAliasLocalpart(s string) bool {
	return s != "" && utf8.ValidString(s) && !strings.ContainsAny(s, ":\x00")
}

// parseAlias splits "#localpart:server", checking the grammar and length.
func parseAlias(alias string) (local, server string, ok bool) {
	rest, ok := strings.CutPrefix(alias, "#")
	if !ok || len(alias) > maxIDLength {
		return "", "", false
	}
	local, server, ok = strings.Cut(rest, ":")
	if !ok || !validAliasLocalpart(local) || server == "" || strings.ContainsAny(server, "\x00/ ") {
		return "", "", false
	}
	return local, server, true
}

// validUserID accepts "@localpart:server" leniently (historical localparts
// too), within the length limit.
func validUserID(s string) bool {
	rest, ok := strings.CutPrefix(s, "@")
	if !ok || len(s) > maxIDLength || !utf8.ValidString(s) {
		return false
	}
	local, server, ok := strings.Cut(rest, ":")
	return ok && local != "" && server != "" && !strings.ContainsAny(s, "\x00 ")
}

// validRoomID checks the "!opaque[:server]" shape (v12 IDs have no server).
func validRoomID(s string) bool {
	return strings.HasPrefix(s, "!") && len(s) > 1 && len(s) <= maxIDLength && !strings.ContainsAny(s, "\x00 ")
}

func isJSONObject(raw json.RawMessage) bool {
	var m map[string]json.RawMessage
	return len(raw) > 0 && json.Unmarshal(raw, &m) == nil && m != nil
}

func isJSONNull(raw json.RawMessage) bool {
	s := strings.TrimSpace(string(raw))
	return s == "" || s == "null"
}

// optionalObject accepts an absent (or null) value or a JSON object.
func optionalObject(raw json.RawMessage) bool {
	return isJSONNull(raw) || isJSONObject(raw)
}
