package clientapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"github.com/julienschmidt/httprouter"
	"maunium.net/go/mautrix/federation/signutil"
	"maunium.net/go/mautrix/id"

	"github.com/ganglion/ganglion/fsm"
)

// Cross-signing: POST /keys/device_signing/upload and
// /keys/signatures/upload. Signatures are verified here, before the
// command is proposed (ed25519 over canonical JSON, as Synapse does).

// checkCrossSigningKey validates one uploaded cross-signing key and returns
// it canonical with its public key.
func checkCrossSigningKey(raw json.RawMessage, usage, userID string) (json.RawMessage, string, *fsm.Error) {
	var k struct {
		UserID string            `json:"user_id"`
		Usage  []string          `json:"usage"`
		Keys   map[string]string `json:"keys"`
	}
	if err := json.Unmarshal(raw, &k); err != nil {
		return nil, "", fsm.Errorf(http.StatusBadRequest, "M_BAD_JSON", "%s key has the wrong shape: %v", usage, err)
	}
	if k.UserID != userID {
		return nil, "", fsm.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", "%s key must belong to %s", usage, userID)
	}
	if !slices.Contains(k.Usage, usage) {
		return nil, "", fsm.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", "%s key must have usage %q", usage, usage)
	}
	canon, ok := canonical(raw)
	if !ok {
		return nil, "", fsm.Errorf(http.StatusBadRequest, "M_BAD_JSON", "%s key is not valid JSON", usage)
	}
	pub, ok := fsm.CrossSigningPublicKey(canon)
	if !ok {
		return nil, "", fsm.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", "%s key must have exactly one ed25519 key", usage)
	}
	return canon, pub, nil
}

// verifySignedBy checks signer's signature with the ed25519 public key pub
// (key ID "ed25519:<keyName>") on obj.
func verifySignedBy(obj json.RawMessage, signer, keyName, pub string) bool {
	return signutil.VerifyJSON(signer, id.KeyID("ed25519:"+keyName), id.SigningKey(pub), obj) == nil
}

// uploadCrossSigningKeys is POST /keys/device_signing/upload. UIA is needed
// unless the user has no master key yet or the request repeats the
// stored keys.
func (a *API) uploadCrossSigningKeys(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	c := callerOf(r)
	var req struct {
		MasterKey      json.RawMessage `json:"master_key"`
		SelfSigningKey json.RawMessage `json:"self_signing_key"`
		UserSigningKey json.RawMessage `json:"user_signing_key"`
		Auth           json.RawMessage `json:"auth"`
	}
	if !a.readJSON(w, r, &req) {
		return
	}
	keys, pubs := map[string]json.RawMessage{}, map[string]string{}
	for usage, raw := range map[string]json.RawMessage{fsm.UsageMaster: req.MasterKey,
		fsm.UsageSelfSigning: req.SelfSigningKey, fsm.UsageUserSigning: req.UserSigningKey} {
		if isNull(raw) {
			continue
		}
		canon, pub, herr := checkCrossSigningKey(raw, usage, c.UserID)
		if herr != nil {
			writeErr(w, herr)
			return
		}
		keys[usage], pubs[usage] = canon, pub
	}
	stored := map[string]json.RawMessage{}
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		for _, usage := range fsm.CrossSigningUsages {
			stored[usage] = rt.CrossSigningKey(c.UserID, usage)
		}
		return nil
	})
	masterPub, ok := pubs[fsm.UsageMaster]
	if !ok {
		masterPub, _ = fsm.CrossSigningPublicKey(stored[fsm.UsageMaster])
	}
	for _, usage := range []string{fsm.UsageSelfSigning, fsm.UsageUserSigning} {
		k, ok := keys[usage]
		if !ok {
			continue
		}
		if masterPub == "" {
			writeError(w, http.StatusBadRequest, "M_MISSING_PARAM", "No master key available")
			return
		}
		if !verifySignedBy(k, c.UserID, masterPub, masterPub) {
			writeError(w, http.StatusBadRequest, "M_INVALID_SIGNATURE", "Invalid signature on "+usage+" key")
			return
		}
	}
	if len(keys) == 0 {
		writeJSON(w, http.StatusOK, struct{}{})
		return
	}
	changes := false
	for usage, k := range keys {
		changes = changes || !bytes.Equal(k, stored[usage])
	}
	needUIA := changes && stored[fsm.UsageMaster] != nil
	if needUIA && !a.requireUIA(w, req.Auth, uiaRequest{endpoint: "POST /keys/device_signing/upload", stage: stagePassword, userID: c.UserID}) {
		return
	}
	cmd := fsm.CrossSigningUpload{UserID: c.UserID, Keys: keys, Authenticated: needUIA}
	if _, ok := a.propose(w, r.Context(), fsm.OpCrossSigningUpload, cmd); !ok {
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

type signingKey struct{ name, pub string } // key ID "ed25519:<name>"

// sameKey compares two key objects ignoring signatures and unsigned.
func sameKey(a, b json.RawMessage) bool {
	strip := func(raw json.RawMessage) []byte {
		var obj map[string]json.RawMessage
		if json.Unmarshal(raw, &obj) != nil {
			return nil
		}
		delete(obj, "signatures")
		delete(obj, "unsigned")
		enc, _ := json.Marshal(obj)
		out, _ := canonical(enc)
		return out
	}
	sa, sb := strip(a), strip(b)
	return sa != nil && bytes.Equal(sa, sb)
}

// deviceSigningKey is the device's ed25519 key from its published keys.
func deviceSigningKey(rt *fsm.ReadTx, userID, deviceID string) string {
	var dk struct {
		Keys map[string]string `json:"keys"`
	}
	_ = json.Unmarshal(rt.DeviceKeys(userID, deviceID), &dk)
	return dk.Keys["ed25519:"+deviceID]
}

// signatureEntries checks one signed object of /keys/signatures/upload and
// returns the caller's verified signatures on it.
func signatureEntries(rt *fsm.ReadTx, caller, target, keyID string, obj json.RawMessage) ([]fsm.SignatureEntry, *fsm.Error) {
	var sigs struct {
		Signatures map[string]map[string]string `json:"signatures"`
	}
	if json.Unmarshal(obj, &sigs) != nil {
		return nil, fsm.Errorf(http.StatusBadRequest, "M_BAD_JSON", "signed object has the wrong shape")
	}
	pubOf := func(user, usage string) (json.RawMessage, string) {
		k := rt.CrossSigningKey(user, usage)
		pub, _ := fsm.CrossSigningPublicKey(k)
		return k, pub
	}
	var stored json.RawMessage
	var signers []signingKey
	switch master, masterPub := pubOf(target, fsm.UsageMaster); {
	case target == caller && masterPub != "" && keyID == masterPub:
		// The caller's devices vouching for their own master key.
		stored = master
		for sigID := range sigs.Signatures[caller] {
			if dev, ok := strings.CutPrefix(sigID, "ed25519:"); ok {
				if pub := deviceSigningKey(rt, caller, dev); pub != "" {
					signers = append(signers, signingKey{dev, pub})
				}
			}
		}
	case target == caller:
		if stored = rt.DeviceKeys(caller, keyID); stored == nil {
			return nil, fsm.Errorf(http.StatusNotFound, "M_NOT_FOUND", "unknown device or key %s", keyID)
		}
		_, ssk := pubOf(caller, fsm.UsageSelfSigning)
		if ssk == "" {
			return nil, fsm.Errorf(http.StatusBadRequest, "M_MISSING_PARAM", "no self-signing key uploaded")
		}
		signers = []signingKey{{ssk, ssk}}
	default:
		if masterPub == "" || keyID != masterPub {
			return nil, fsm.Errorf(http.StatusNotFound, "M_NOT_FOUND", "no master key %s for %s", keyID, target)
		}
		stored = master
		_, usk := pubOf(caller, fsm.UsageUserSigning)
		if usk == "" {
			return nil, fsm.Errorf(http.StatusBadRequest, "M_MISSING_PARAM", "no user-signing key uploaded")
		}
		signers = []signingKey{{usk, usk}}
	}
	if !sameKey(stored, obj) {
		return nil, fsm.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", "signed object does not match the stored key")
	}
	var out []fsm.SignatureEntry
	for _, s := range signers {
		sig := sigs.Signatures[caller]["ed25519:"+s.name]
		if sig == "" {
			continue
		}
		if !verifySignedBy(obj, caller, s.name, s.pub) {
			return nil, fsm.Errorf(http.StatusBadRequest, "M_INVALID_SIGNATURE", "Invalid signature")
		}
		out = append(out, fsm.SignatureEntry{TargetUser: target, TargetKey: keyID, SignerKeyID: "ed25519:" + s.name, Signature: sig})
	}
	if len(out) == 0 {
		return nil, fsm.Errorf(http.StatusBadRequest, "M_INVALID_SIGNATURE", "no signature by an expected key")
	}
	return out, nil
}

// uploadSignatures is POST /keys/signatures/upload. Each signed object
// that fails is reported in failures; the rest are stored.
func (a *API) uploadSignatures(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	c := callerOf(r)
	var req map[string]map[string]json.RawMessage
	if !a.readJSON(w, r, &req) {
		return
	}
	failures := map[string]map[string]any{}
	var entries []fsm.SignatureEntry
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		for target, objs := range req {
			for keyID, obj := range objs {
				var got []fsm.SignatureEntry
				herr := fsm.Errorf(http.StatusNotFound, "M_NOT_FOUND", "unknown user %s", target)
				if a.isLocalUser(target) {
					got, herr = signatureEntries(rt, c.UserID, target, keyID, obj)
				}
				if herr != nil {
					if failures[target] == nil {
						failures[target] = map[string]any{}
					}
					failures[target][keyID] = map[string]any{"status": herr.Status, "errcode": herr.Errcode, "error": herr.Message}
					continue
				}
				entries = append(entries, got...)
			}
		}
		return nil
	})
	if len(entries) > 0 {
		cmd := fsm.SignaturesUpload{Signer: c.UserID, Entries: entries}
		if _, ok := a.propose(w, r.Context(), fsm.OpSignaturesUpload, cmd); !ok {
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"failures": failures})
}
