package federation

import (
	"encoding/json"
	"net/http"
	"slices"

	"github.com/julienschmidt/httprouter"
	"maunium.net/go/mautrix/id"

	"github.com/ganglion/ganglion/fsm"
	"github.com/ganglion/ganglion/rooms"
)

// Queries about this server's users, aliases and published rooms
// (query.yaml, user_devices.yaml, public_rooms.yaml). Only local users and
// aliases are answered.

// maxDirectoryServers bounds the servers listed for an alias.
const maxDirectoryServers = 20

// publicRooms is GET and POST /publicRooms: this server's published rooms,
// as the client API lists them (rooms.Service.PublicRooms).
func (a *API) publicRooms(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	if !a.serving(w) {
		return
	}
	q := &rooms.PublicRoomsQuery{}
	if r.Method == http.MethodPost {
		if !a.readJSON(w, r, q) {
			return
		}
	} else if err := q.ParseURL(r.URL.Query()); err != nil {
		writeErr(w, err)
		return
	}
	page, err := a.rooms.PublicRooms(q)
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, page)
}

// queryDirectory is GET /query/directory?room_alias=: the room and the
// servers in it (this one first).
func (a *API) queryDirectory(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	if !a.serving(w) {
		return
	}
	alias := r.URL.Query().Get("room_alias")
	if alias == "" {
		writeError(w, http.StatusBadRequest, "M_MISSING_PARAM", "room_alias is required")
		return
	}
	var roomID string
	var servers []string
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		rid, _, ok := rt.AliasRoom(alias)
		if !ok {
			return nil
		}
		roomID = rid
		servers = residentServers(rt, rid, a.cfg.ServerName)
		return nil
	})
	if roomID == "" {
		writeError(w, http.StatusNotFound, "M_NOT_FOUND", "Room alias not found.")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"room_id": roomID, "servers": servers})
}

// residentServers lists self first, then the other servers with joined
// users, sorted, at most maxDirectoryServers.
func residentServers(rt *fsm.ReadTx, roomID, self string) []string {
	seen := map[string]bool{self: true}
	var others []string
	for user, m := range rt.RoomMembers(roomID) {
		if hs := id.UserID(user).Homeserver(); m == "join" && hs != "" && !seen[hs] {
			seen[hs] = true
			others = append(others, hs)
		}
	}
	slices.Sort(others)
	return append([]string{self}, others[:min(len(others), maxDirectoryServers-1)]...)
}

// queryProfile is GET /query/profile?user_id=&field=.
func (a *API) queryProfile(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	if !a.serving(w) {
		return
	}
	userID, field := r.URL.Query().Get("user_id"), r.URL.Query().Get("field")
	if userID == "" {
		writeError(w, http.StatusBadRequest, "M_MISSING_PARAM", "user_id is required")
		return
	}
	if !userOf(userID, a.cfg.ServerName) {
		writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "user "+userID+" is not a user of this server")
		return
	}
	var u *fsm.UserRecord
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		u, _ = rt.User(userID)
		return nil
	})
	if u == nil {
		writeError(w, http.StatusNotFound, "M_NOT_FOUND", "User does not exist.")
		return
	}
	profile := map[string]string{}
	if u.DisplayName != "" {
		profile["displayname"] = u.DisplayName
	}
	if u.AvatarURL != "" {
		profile["avatar_url"] = u.AvatarURL
	}
	if field == "" {
		writeJSON(w, http.StatusOK, profile)
		return
	}
	v, ok := profile[field]
	if !ok {
		writeError(w, http.StatusNotFound, "M_NOT_FOUND", "profile field not found")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{field: v})
}

// userDevice is one entry of /user/devices.
type userDevice struct {
	DeviceID    string          `json:"device_id"`
	Keys        json.RawMessage `json:"keys"`
	DisplayName string          `json:"device_display_name,omitempty"`
}

// userDevices is GET /user/devices/{userId}: the local user's devices that
// have keys, with the signatures the user made on them, and the master and
// self-signing keys. stream_id is the position of the user's latest
// device list change.
func (a *API) userDevices(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	if !a.serving(w) {
		return
	}
	userID := p.ByName("userId")
	if !userOf(userID, a.cfg.ServerName) {
		writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "user "+userID+" is not a user of this server")
		return
	}
	var resp map[string]any
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		if _, err := rt.User(userID); err != nil {
			return nil
		}
		devices := []userDevice{}
		for _, d := range rt.Devices(userID) {
			keys := rt.DeviceKeys(userID, d.DeviceID)
			if keys == nil {
				continue
			}
			devices = append(devices, userDevice{DeviceID: d.DeviceID, DisplayName: d.DisplayName,
				Keys: withOwnerSignatures(keys, rt.SignaturesOn(userID, d.DeviceID), userID)})
		}
		resp = map[string]any{"user_id": userID, "stream_id": rt.DeviceListPos(userID), "devices": devices}
		for usage, field := range map[string]string{fsm.UsageMaster: "master_key", fsm.UsageSelfSigning: "self_signing_key"} {
			k := rt.CrossSigningKey(userID, usage)
			if k == nil {
				continue
			}
			if pub, ok := fsm.CrossSigningPublicKey(k); ok {
				k = withOwnerSignatures(k, rt.SignaturesOn(userID, pub), userID)
			}
			resp[field] = k
		}
		return nil
	})
	if resp == nil {
		writeError(w, http.StatusNotFound, "M_NOT_FOUND", "User does not exist.")
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// withOwnerSignatures merges into a key object the separately uploaded
// signatures its owner made (cross-signing); others' are not shared.
func withOwnerSignatures(raw json.RawMessage, sigs map[string]map[string]string, owner string) json.RawMessage {
	extra := sigs[owner]
	if len(extra) == 0 {
		return raw
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(raw, &obj) != nil {
		return raw
	}
	all := map[string]map[string]json.RawMessage{}
	if s, ok := obj["signatures"]; ok && json.Unmarshal(s, &all) != nil {
		return raw
	}
	if all == nil {
		all = map[string]map[string]json.RawMessage{}
	}
	if all[owner] == nil {
		all[owner] = map[string]json.RawMessage{}
	}
	for keyID, sig := range extra {
		enc, _ := json.Marshal(sig)
		all[owner][keyID] = enc
	}
	enc, err := json.Marshal(all)
	if err != nil {
		return raw
	}
	obj["signatures"] = enc
	out, err := json.Marshal(obj)
	if err != nil {
		return raw
	}
	return out
}
