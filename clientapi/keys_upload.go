package clientapi

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/julienschmidt/httprouter"
	"maunium.net/go/mautrix/crypto/canonicaljson"

	"github.com/ganglion/ganglion/fsm"
)

// POST /keys/upload, POST /keys/claim and GET /keys/changes. Keys travel
// in the log as canonical JSON so Apply can compare them byte for byte.

// otkAlgorithm is the one-time key algorithm clients expect a count for
// even when it is zero (Synapse always reports it).
const otkAlgorithm = "signed_curve25519"

// maxClaimDevices bounds one /keys/claim.
const maxClaimDevices = 10000

// canonical re-encodes JSON in canonical form; ok is false for bad JSON.
func canonical(raw json.RawMessage) (json.RawMessage, bool) {
	out, err := canonicaljson.CanonicalJSON(raw)
	return out, err == nil
}

// isNull reports whether a field was absent or JSON null.
func isNull(raw json.RawMessage) bool {
	return len(raw) == 0 || string(raw) == "null"
}

// otkCounts is the device's one-time key counts for a response.
func otkCounts(rt *fsm.ReadTx, userID, deviceID string) map[string]int {
	counts := rt.OneTimeKeyCounts(userID, deviceID)
	if _, ok := counts[otkAlgorithm]; !ok {
		counts[otkAlgorithm] = 0
	}
	return counts
}

// checkDeviceKeys validates an uploaded device_keys object and returns it
// canonical. It must be for the caller's own device.
func checkDeviceKeys(raw json.RawMessage, c *Caller) (json.RawMessage, *fsm.Error) {
	var dk struct {
		UserID     *string                      `json:"user_id"`
		DeviceID   *string                      `json:"device_id"`
		Algorithms []string                     `json:"algorithms"`
		Keys       map[string]string            `json:"keys"`
		Signatures map[string]map[string]string `json:"signatures"`
	}
	if err := json.Unmarshal(raw, &dk); err != nil {
		return nil, fsm.Errorf(http.StatusBadRequest, "M_BAD_JSON", "device_keys has the wrong shape: %v", err)
	}
	// The spec marks signatures required, but Synapse accepts keys without
	// them and Complement (device_lists_test.go) uploads such keys: only
	// the fields a reader cannot do without are insisted on.
	if dk.UserID == nil || dk.DeviceID == nil || dk.Algorithms == nil || dk.Keys == nil {
		return nil, fsm.Errorf(http.StatusBadRequest, "M_BAD_JSON", "device_keys needs user_id, device_id, algorithms and keys")
	}
	if *dk.UserID != c.UserID {
		return nil, fsm.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", "device_keys.user_id must be %s", c.UserID)
	}
	if *dk.DeviceID != c.DeviceID {
		return nil, fsm.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", "device_keys.device_id must be %s", c.DeviceID)
	}
	for id := range dk.Keys {
		if _, _, ok := fsm.SplitKeyID(id); !ok {
			return nil, fsm.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", "key ID %q is not <algorithm>:<device_id>", id)
		}
	}
	out, ok := canonical(raw)
	if !ok {
		return nil, fsm.Errorf(http.StatusBadRequest, "M_BAD_JSON", "device_keys is not valid JSON")
	}
	return out, nil
}

// checkKeyMap validates one_time_keys or fallback_keys: "<algorithm>:<id>"
// to a string or an object, returned canonical.
func checkKeyMap(field string, in map[string]json.RawMessage) (map[string]json.RawMessage, *fsm.Error) {
	if len(in) == 0 {
		return nil, nil
	}
	out := make(map[string]json.RawMessage, len(in))
	for id, raw := range in {
		if _, _, ok := fsm.SplitKeyID(id); !ok {
			return nil, fsm.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", "%s: key ID %q is not <algorithm>:<key_id>", field, id)
		}
		trimmed := strings.TrimSpace(string(raw))
		if trimmed == "" || (trimmed[0] != '"' && trimmed[0] != '{') {
			return nil, fsm.Errorf(http.StatusBadRequest, "M_BAD_JSON", "%s: key %s must be a string or an object", field, id)
		}
		c, ok := canonical(raw)
		if !ok {
			return nil, fsm.Errorf(http.StatusBadRequest, "M_BAD_JSON", "%s: key %s is not valid JSON", field, id)
		}
		out[id] = c
	}
	return out, nil
}

// uploadKeys is POST /keys/upload.
func (a *API) uploadKeys(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	c := callerOf(r)
	var req struct {
		DeviceKeys   json.RawMessage            `json:"device_keys"`
		OneTimeKeys  map[string]json.RawMessage `json:"one_time_keys"`
		FallbackKeys map[string]json.RawMessage `json:"fallback_keys"`
	}
	if !a.readJSON(w, r, &req) {
		return
	}
	cmd := fsm.KeysUpload{UserID: c.UserID, DeviceID: c.DeviceID}
	var herr *fsm.Error
	if !isNull(req.DeviceKeys) {
		if cmd.DeviceKeys, herr = checkDeviceKeys(req.DeviceKeys, c); herr != nil {
			writeErr(w, herr)
			return
		}
	}
	if cmd.OneTimeKeys, herr = checkKeyMap("one_time_keys", req.OneTimeKeys); herr != nil {
		writeErr(w, herr)
		return
	}
	if cmd.FallbackKeys, herr = checkKeyMap("fallback_keys", req.FallbackKeys); herr != nil {
		writeErr(w, herr)
		return
	}
	var counts map[string]int
	if cmd.DeviceKeys != nil || cmd.OneTimeKeys != nil || cmd.FallbackKeys != nil {
		v, ok := a.propose(w, r.Context(), fsm.OpKeysUpload, cmd)
		if !ok {
			return
		}
		counts, _ = v.(map[string]int) // as of the upload, whichever node applied it
	}
	if counts == nil {
		_ = a.store.View(func(rt *fsm.ReadTx) error {
			counts = rt.OneTimeKeyCounts(c.UserID, c.DeviceID)
			return nil
		})
	}
	if _, ok := counts[otkAlgorithm]; !ok {
		counts[otkAlgorithm] = 0
	}
	writeJSON(w, http.StatusOK, map[string]any{"one_time_key_counts": counts})
}

// isLocalUser reports whether a valid user ID belongs to this server.
func (a *API) isLocalUser(userID string) bool {
	if !validUserID(userID) {
		return false
	}
	_, server, _ := strings.Cut(userID, ":")
	return server == a.cfg.ServerName
}

// claimKeys is POST /keys/claim. Remote users' keys need federation, which
// is not wired here: they are left out of the answer.
func (a *API) claimKeys(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	var req struct {
		OneTimeKeys map[string]map[string]string `json:"one_time_keys"`
	}
	if !a.readJSON(w, r, &req) {
		return
	}
	if req.OneTimeKeys == nil {
		writeError(w, http.StatusBadRequest, "M_MISSING_PARAM", "missing one_time_keys")
		return
	}
	cmd := fsm.KeysClaim{Claims: map[string]map[string]string{}}
	n := 0
	for userID, devices := range req.OneTimeKeys {
		if !a.isLocalUser(userID) {
			continue
		}
		n += len(devices)
		if len(devices) > 0 {
			cmd.Claims[userID] = devices
		}
	}
	if n > maxClaimDevices {
		writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "too many devices in one claim")
		return
	}
	result := fsm.ClaimedKeys{}
	if len(cmd.Claims) > 0 {
		v, ok := a.propose(w, r.Context(), fsm.OpKeysClaim, cmd)
		if !ok {
			return
		}
		if got, ok := v.(fsm.ClaimedKeys); ok {
			result = got
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"one_time_keys": result, "failures": map[string]any{}})
}

// keyChanges is GET /keys/changes: users whose keys changed after the
// `from` sync token and who share a room with the caller, and those who no
// longer do. `to` is only checked: a later change is still a change.
func (a *API) keyChanges(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	c := callerOf(r)
	q := r.URL.Query()
	if q.Get("from") == "" {
		writeError(w, http.StatusBadRequest, "M_MISSING_PARAM", "missing from")
		return
	}
	from, err := parseSyncToken(q.Get("from"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "invalid from token")
		return
	}
	if to := q.Get("to"); to != "" {
		if _, err := parseSyncToken(to); err != nil {
			writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "invalid to token")
			return
		}
	}
	var changed, left []string
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		changed, left = deviceListDelta(rt, c.UserID, rt.UserRooms(c.UserID), from.Pos)
		return nil
	})
	writeJSON(w, http.StatusOK, map[string]any{"changed": changed, "left": left})
}
