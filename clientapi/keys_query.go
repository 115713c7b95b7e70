package clientapi

import (
	"encoding/json"
	"net/http"

	"github.com/julienschmidt/httprouter"

	"github.com/ganglion/ganglion/fsm"
)

// POST /keys/query: device keys and cross-signing keys of local users,
// with the separately uploaded signatures merged in. A signature is shown
// when its signer owns the key or is the requester: a user-signing key's
// signatures on other users' master keys are the signer's own business.

// maxQueryUsers bounds one /keys/query.
const maxQueryUsers = 10000

type keysQueryResponse struct {
	DeviceKeys      map[string]map[string]json.RawMessage `json:"device_keys"`
	MasterKeys      map[string]json.RawMessage            `json:"master_keys"`
	SelfSigningKeys map[string]json.RawMessage            `json:"self_signing_keys"`
	UserSigningKeys map[string]json.RawMessage            `json:"user_signing_keys"`
	Failures        map[string]any                        `json:"failures"`
}

// queryKeys is POST /keys/query. Remote users need federation, which is
// not wired here: they are left out of the answer.
func (a *API) queryKeys(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	c := callerOf(r)
	var req struct {
		DeviceKeys map[string][]string `json:"device_keys"`
	}
	if !a.readJSON(w, r, &req) {
		return
	}
	if req.DeviceKeys == nil {
		writeError(w, http.StatusBadRequest, "M_MISSING_PARAM", "missing device_keys")
		return
	}
	if len(req.DeviceKeys) > maxQueryUsers {
		writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "too many users in one query")
		return
	}
	resp := keysQueryResponse{
		DeviceKeys: map[string]map[string]json.RawMessage{}, MasterKeys: map[string]json.RawMessage{},
		SelfSigningKeys: map[string]json.RawMessage{}, UserSigningKeys: map[string]json.RawMessage{},
		Failures: map[string]any{},
	}
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		for userID, deviceIDs := range req.DeviceKeys {
			if !a.isLocalUser(userID) {
				continue
			}
			resp.DeviceKeys[userID] = queryDevices(rt, c.UserID, userID, deviceIDs)
			for _, usage := range fsm.CrossSigningUsages {
				if usage == fsm.UsageUserSigning && userID != c.UserID {
					continue
				}
				k := rt.CrossSigningKey(userID, usage)
				if k == nil {
					continue
				}
				if pub, ok := fsm.CrossSigningPublicKey(k); ok {
					k = withSignatures(k, visibleSignatures(rt, c.UserID, userID, pub), nil)
				}
				switch usage {
				case fsm.UsageMaster:
					resp.MasterKeys[userID] = k
				case fsm.UsageSelfSigning:
					resp.SelfSigningKeys[userID] = k
				default:
					resp.UserSigningKeys[userID] = k
				}
			}
		}
		return nil
	})
	writeJSON(w, http.StatusOK, resp)
}

// queryDevices lists the user's devices that have keys (only the asked-for
// ones when deviceIDs is not empty).
func queryDevices(rt *fsm.ReadTx, requester, userID string, deviceIDs []string) map[string]json.RawMessage {
	out := map[string]json.RawMessage{}
	var devices []fsm.DeviceRecord
	if len(deviceIDs) == 0 {
		devices = rt.Devices(userID)
	} else {
		for _, id := range deviceIDs {
			if d, err := rt.Device(userID, id); err == nil {
				devices = append(devices, *d)
			}
		}
	}
	for _, d := range devices {
		keys := rt.DeviceKeys(userID, d.DeviceID)
		if keys == nil {
			continue
		}
		var unsigned map[string]any
		if d.DisplayName != "" {
			unsigned = map[string]any{"device_display_name": d.DisplayName}
		}
		out[d.DeviceID] = withSignatures(keys, visibleSignatures(rt, requester, userID, d.DeviceID), unsigned)
	}
	return out
}

// visibleSignatures are the uploaded signatures on a key that the
// requester may see.
func visibleSignatures(rt *fsm.ReadTx, requester, owner, targetKey string) map[string]map[string]string {
	sigs := rt.SignaturesOn(owner, targetKey)
	for signer := range sigs {
		if signer != owner && signer != requester {
			delete(sigs, signer)
		}
	}
	return sigs
}

// withSignatures adds extra signatures (and an unsigned object) to a
// stored key object. A key whose signatures are not the usual map of maps
// is returned as stored.
func withSignatures(raw json.RawMessage, extra map[string]map[string]string, unsigned map[string]any) json.RawMessage {
	if len(extra) == 0 && unsigned == nil {
		return raw
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(raw, &obj) != nil {
		return raw
	}
	if len(extra) > 0 {
		sigs := map[string]map[string]json.RawMessage{}
		if s, ok := obj["signatures"]; ok && json.Unmarshal(s, &sigs) != nil {
			return raw
		}
		if sigs == nil { // "signatures": null
			sigs = map[string]map[string]json.RawMessage{}
		}
		for signer, byKey := range extra {
			if sigs[signer] == nil {
				sigs[signer] = map[string]json.RawMessage{}
			}
			for keyID, sig := range byKey {
				enc, _ := json.Marshal(sig)
				sigs[signer][keyID] = enc
			}
		}
		obj["signatures"], _ = json.Marshal(sigs)
	}
	if unsigned != nil {
		obj["unsigned"], _ = json.Marshal(unsigned)
	}
	out, err := json.Marshal(obj)
	if err != nil {
		return raw
	}
	return out
}
