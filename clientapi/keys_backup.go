package clientapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/julienschmidt/httprouter"

	"github.com/ganglion/ganglion/fsm"
)

// Server-side key backup: /room_keys/version[/{version}] and
// /room_keys/keys[/{roomId}[/{sessionId}]].

// keyBackupData is KeyBackupData as a client sends it; every field is
// required.
type keyBackupData struct {
	FirstMessageIndex *int64          `json:"first_message_index"`
	ForwardedCount    *int64          `json:"forwarded_count"`
	IsVerified        *bool           `json:"is_verified"`
	SessionData       json.RawMessage `json:"session_data"`
}

func (d *keyBackupData) toFSM() (fsm.KeyBackupData, bool) {
	var obj map[string]json.RawMessage
	if d.FirstMessageIndex == nil || d.ForwardedCount == nil || d.IsVerified == nil ||
		json.Unmarshal(d.SessionData, &obj) != nil || obj == nil {
		return fsm.KeyBackupData{}, false
	}
	return fsm.KeyBackupData{FirstMessageIndex: *d.FirstMessageIndex, ForwardedCount: *d.ForwardedCount,
		IsVerified: *d.IsVerified, SessionData: d.SessionData}, true
}

type roomKeyBackup struct {
	Sessions map[string]keyBackupData `json:"sessions"`
}

func versionInfo(rec *fsm.BackupVersionRecord) map[string]any {
	return map[string]any{"algorithm": rec.Algorithm, "auth_data": rec.AuthData, "count": rec.Count,
		"etag": strconv.FormatInt(rec.Etag, 10), "version": rec.Version}
}

// getRoomKeysVersion is GET /room_keys/version[/{version}].
func (a *API) getRoomKeysVersion(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	c := callerOf(r)
	version := p.ByName("version")
	var rec *fsm.BackupVersionRecord
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		if version == "" {
			rec = rt.CurrentBackupVersion(c.UserID)
		} else {
			rec = rt.BackupVersion(c.UserID, version)
		}
		return nil
	})
	switch {
	case rec == nil && version == "":
		writeError(w, http.StatusNotFound, "M_NOT_FOUND", "No current backup version")
	case rec == nil:
		writeError(w, http.StatusNotFound, "M_NOT_FOUND", "Unknown backup version")
	default:
		writeJSON(w, http.StatusOK, versionInfo(rec))
	}
}

// readVersionBody reads a create or update body into cmd.
func (a *API) readVersionBody(w http.ResponseWriter, r *http.Request, cmd *fsm.BackupVersionCmd) (bodyVersion *string, ok bool) {
	var req struct {
		Algorithm *string         `json:"algorithm"`
		AuthData  json.RawMessage `json:"auth_data"`
		Version   *string         `json:"version"`
	}
	if !a.readJSON(w, r, &req) {
		return nil, false
	}
	if req.Algorithm == nil || *req.Algorithm == "" || isNull(req.AuthData) {
		writeError(w, http.StatusBadRequest, "M_MISSING_PARAM", "algorithm and auth_data are required")
		return nil, false
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(req.AuthData, &obj) != nil {
		writeError(w, http.StatusBadRequest, "M_BAD_JSON", "auth_data must be an object")
		return nil, false
	}
	cmd.Algorithm, cmd.AuthData = *req.Algorithm, req.AuthData
	return req.Version, true
}

// createRoomKeysVersion is POST /room_keys/version.
func (a *API) createRoomKeysVersion(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	cmd := fsm.BackupVersionCmd{UserID: callerOf(r).UserID}
	if _, ok := a.readVersionBody(w, r, &cmd); !ok {
		return
	}
	v, ok := a.propose(w, r.Context(), fsm.OpBackupCreate, cmd)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"version": v})
}

// updateRoomKeysVersion is PUT /room_keys/version/{version}: only
// auth_data changes.
func (a *API) updateRoomKeysVersion(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	cmd := fsm.BackupVersionCmd{UserID: callerOf(r).UserID, Version: p.ByName("version")}
	bodyVersion, ok := a.readVersionBody(w, r, &cmd)
	if !ok {
		return
	}
	if bodyVersion != nil && *bodyVersion != cmd.Version {
		writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "version in body does not match the path")
		return
	}
	if _, ok := a.propose(w, r.Context(), fsm.OpBackupUpdate, cmd); ok {
		writeJSON(w, http.StatusOK, struct{}{})
	}
}

// deleteRoomKeysVersion is DELETE /room_keys/version/{version}.
func (a *API) deleteRoomKeysVersion(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	cmd := fsm.BackupVersionCmd{UserID: callerOf(r).UserID, Version: p.ByName("version")}
	if _, ok := a.propose(w, r.Context(), fsm.OpBackupDelete, cmd); ok {
		writeJSON(w, http.StatusOK, struct{}{})
	}
}

// backupVersionParam is the required ?version= of the keys endpoints.
func backupVersionParam(w http.ResponseWriter, r *http.Request) (string, bool) {
	v := r.URL.Query().Get("version")
	if v == "" {
		writeError(w, http.StatusBadRequest, "M_MISSING_PARAM", "missing version")
		return "", false
	}
	return v, true
}

// getRoomKeys is GET /room_keys/keys[/{roomId}[/{sessionId}]].
func (a *API) getRoomKeys(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	c := callerOf(r)
	version, ok := backupVersionParam(w, r)
	if !ok {
		return
	}
	roomID, sessionID := p.ByName("roomId"), p.ByName("sessionId")
	found := false
	var one *fsm.KeyBackupData
	rooms := map[string]map[string]fsm.KeyBackupData{}
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		if found = rt.BackupVersion(c.UserID, version) != nil; !found {
			return nil
		}
		if sessionID != "" {
			one = rt.BackupKey(c.UserID, version, roomID, sessionID)
			return nil
		}
		rt.BackupKeys(c.UserID, version, roomID, func(room, session string, d fsm.KeyBackupData) {
			if rooms[room] == nil {
				rooms[room] = map[string]fsm.KeyBackupData{}
			}
			rooms[room][session] = d
		})
		return nil
	})
	switch {
	case !found:
		writeError(w, http.StatusNotFound, "M_NOT_FOUND", "Unknown backup version")
	case sessionID != "" && one == nil:
		writeError(w, http.StatusNotFound, "M_NOT_FOUND", "No room_keys found")
	case sessionID != "":
		writeJSON(w, http.StatusOK, one)
	case roomID != "":
		sessions := rooms[roomID]
		if sessions == nil {
			sessions = map[string]fsm.KeyBackupData{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"sessions": sessions})
	default:
		out := map[string]any{}
		for room, sessions := range rooms {
			out[room] = map[string]any{"sessions": sessions}
		}
		writeJSON(w, http.StatusOK, map[string]any{"rooms": out})
	}
}

// readRoomKeys reads a PUT body at the route's level into room -> session
// -> key.
func (a *API) readRoomKeys(w http.ResponseWriter, r *http.Request, roomID, sessionID string) (map[string]map[string]fsm.KeyBackupData, bool) {
	raw := map[string]map[string]keyBackupData{}
	switch {
	case sessionID != "":
		var d keyBackupData
		if !a.readJSON(w, r, &d) {
			return nil, false
		}
		raw[roomID] = map[string]keyBackupData{sessionID: d}
	case roomID != "":
		var rk roomKeyBackup
		if !a.readJSON(w, r, &rk) {
			return nil, false
		}
		raw[roomID] = rk.Sessions
	default:
		var all struct {
			Rooms map[string]roomKeyBackup `json:"rooms"`
		}
		if !a.readJSON(w, r, &all) {
			return nil, false
		}
		for room, rk := range all.Rooms {
			raw[room] = rk.Sessions
		}
	}
	out := map[string]map[string]fsm.KeyBackupData{}
	for room, sessions := range raw {
		if !validRoomID(room) {
			writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "invalid room ID "+room)
			return nil, false
		}
		for session, d := range sessions {
			kd, ok := d.toFSM()
			if !ok || session == "" {
				writeError(w, http.StatusBadRequest, "M_BAD_JSON",
					"each key needs first_message_index, forwarded_count, is_verified and a session_data object")
				return nil, false
			}
			if out[room] == nil {
				out[room] = map[string]fsm.KeyBackupData{}
			}
			out[room][session] = kd
		}
	}
	return out, true
}

// putRoomKeys is PUT /room_keys/keys[/{roomId}[/{sessionId}]]: only into
// the current version.
func (a *API) putRoomKeys(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	c := callerOf(r)
	version, ok := backupVersionParam(w, r)
	if !ok {
		return
	}
	rooms, ok := a.readRoomKeys(w, r, p.ByName("roomId"), p.ByName("sessionId"))
	if !ok {
		return
	}
	cmd := fsm.BackupPutKeys{UserID: c.UserID, Version: version, Rooms: rooms}
	v, _, err := a.node.Propose(r.Context(), fsm.OpBackupPutKeys, cmd)
	var fe *fsm.Error
	if errors.As(err, &fe) && fe.Errcode == "M_WRONG_ROOM_KEYS_VERSION" {
		var cur *fsm.BackupVersionRecord
		_ = a.store.View(func(rt *fsm.ReadTx) error {
			cur = rt.CurrentBackupVersion(c.UserID)
			return nil
		})
		body := map[string]any{"errcode": fe.Errcode, "error": fe.Message}
		if cur != nil {
			body["current_version"] = cur.Version
		}
		writeJSON(w, fe.Status, body)
		return
	}
	a.writeBackupKeysResult(w, v, err)
}

// deleteRoomKeys is DELETE /room_keys/keys[/{roomId}[/{sessionId}]].
func (a *API) deleteRoomKeys(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	version, ok := backupVersionParam(w, r)
	if !ok {
		return
	}
	cmd := fsm.BackupDeleteKeys{UserID: callerOf(r).UserID, Version: version, RoomID: p.ByName("roomId"), SessionID: p.ByName("sessionId")}
	v, _, err := a.node.Propose(r.Context(), fsm.OpBackupDeleteKeys, cmd)
	a.writeBackupKeysResult(w, v, err)
}

func (a *API) writeBackupKeysResult(w http.ResponseWriter, v any, err error) {
	if err != nil {
		writeErr(w, err)
		return
	}
	res, _ := v.(fsm.BackupKeysResult)
	writeJSON(w, http.StatusOK, map[string]any{"etag": res.Etag, "count": res.Count})
}
