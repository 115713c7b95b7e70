package fsm

import (
	"bytes"
	"encoding/json"
	"strings"
)

// Cross-signing keys (master, self_signing, user_signing) and the
// signatures uploaded separately through /keys/signatures/upload. The
// proposer verifies signatures and UIA; Apply re-checks what depends on
// the store so a concurrent change cannot slip past those checks.

// Cross-signing commands.
const (
	OpCrossSigningUpload = "e2ee.cross_signing_upload"
	OpSignaturesUpload   = "e2ee.signatures_upload"
)

// Cross-signing key usages, also the bucket's key suffixes.
const (
	UsageMaster      = "master"
	UsageSelfSigning = "self_signing"
	UsageUserSigning = "user_signing"
)

// CrossSigningUsages lists the usages in a fixed order.
var CrossSigningUsages = []string{UsageMaster, UsageSelfSigning, UsageUserSigning}

// CrossSigningUpload stores the given keys (canonical JSON, by usage).
// Without Authenticated (no UIA was done) it may only add a first master
// key or repeat the stored keys.
type CrossSigningUpload struct {
	UserID        string                     `json:"user_id"`
	Keys          map[string]json.RawMessage `json:"keys"`
	Authenticated bool                       `json:"authenticated,omitempty"`
}

// SignatureEntry is one signature by Signer's key SignerKeyID on the key
// TargetKey (a device ID or a cross-signing public key) of TargetUser.
type SignatureEntry struct {
	TargetUser  string `json:"target_user"`
	TargetKey   string `json:"target_key"`
	SignerKeyID string `json:"signer_key_id"`
	Signature   string `json:"signature"`
}

// SignaturesUpload stores verified signatures made by Signer.
type SignaturesUpload struct {
	Signer  string           `json:"signer"`
	Entries []SignatureEntry `json:"entries"`
}

func init() {
	register(OpCrossSigningUpload, applyCrossSigningUpload)
	register(OpSignaturesUpload, applySignaturesUpload)
}

// CrossSigningPublicKey extracts the unpadded base64 public key of a
// cross-signing key object: its only "keys" entry, "ed25519:<key>": "<key>".
func CrossSigningPublicKey(raw json.RawMessage) (string, bool) {
	var obj struct {
		Keys map[string]string `json:"keys"`
	}
	if json.Unmarshal(raw, &obj) != nil || len(obj.Keys) != 1 {
		return "", false
	}
	for id, pub := range obj.Keys {
		algo, kid, ok := SplitKeyID(id)
		return pub, ok && algo == "ed25519" && kid == pub
	}
	return "", false
}

// CrossSigningKey is the user's stored key of the usage (nil if none). It
// is a copy: bbolt's memory is only valid inside the transaction (and is
// unmapped when Restore swaps the file).
func (r *ReadTx) CrossSigningKey(userID, usage string) json.RawMessage {
	v := r.get(bE2ECrossSigning, key(userID, usage))
	if v == nil {
		return nil
	}
	return append(json.RawMessage{}, v...)
}

func applyCrossSigningUpload(w *WriteTx, cmd *Command) (any, error) {
	c, err := decode[CrossSigningUpload](cmd)
	if err != nil {
		return nil, err
	}
	if _, err := w.User(c.UserID); err != nil {
		return nil, errNotFound("unknown user %s", c.UserID)
	}
	devices := map[string]bool{}
	for _, d := range w.Devices(c.UserID) {
		devices[d.DeviceID] = true
	}
	changed := false
	for _, usage := range CrossSigningUsages {
		k, ok := c.Keys[usage]
		if !ok {
			continue
		}
		pub, ok := CrossSigningPublicKey(k)
		if !ok {
			return nil, errE2EEParam("%s key must have exactly one ed25519 key", usage)
		}
		if devices[pub] {
			return nil, errForbidden("Key ID in use")
		}
		if !bytes.Equal(w.CrossSigningKey(c.UserID, usage), k) {
			changed = true
		}
	}
	if changed && !c.Authenticated && w.CrossSigningKey(c.UserID, UsageMaster) != nil {
		// Another upload set a master key after the proposer checked.
		return nil, errForbidden("cross-signing keys changed meanwhile; authenticate to replace them")
	}
	if !changed {
		return nil, nil
	}
	for _, usage := range CrossSigningUsages {
		if k, ok := c.Keys[usage]; ok {
			if err := w.put(bE2ECrossSigning, key(c.UserID, usage), k); err != nil {
				return nil, err
			}
		}
	}
	return nil, w.markDeviceListChanged(c.UserID)
}

func applySignaturesUpload(w *WriteTx, cmd *Command) (any, error) {
	c, err := decode[SignaturesUpload](cmd)
	if err != nil {
		return nil, err
	}
	if c.Signer == "" || strings.ContainsRune(c.Signer, 0) {
		return nil, errBadRequest("signer is empty or invalid")
	}
	for _, e := range c.Entries {
		for _, s := range []string{e.TargetUser, e.TargetKey, e.SignerKeyID} {
			if s == "" || strings.ContainsRune(s, 0) {
				return nil, errBadRequest("signature entry has an empty or invalid field")
			}
		}
	}
	changed := map[string]bool{}
	for _, e := range c.Entries {
		if !w.signatureTargetExists(e.TargetUser, e.TargetKey) {
			continue // the key went away after the proposer checked it
		}
		k := key(e.TargetUser, e.TargetKey, c.Signer, e.SignerKeyID)
		if string(w.get(bE2ESignatures, k)) == e.Signature {
			continue
		}
		if err := w.put(bE2ESignatures, k, []byte(e.Signature)); err != nil {
			return nil, err
		}
		changed[e.TargetUser] = true
	}
	for _, u := range sortedKeysOf(changed) {
		if err := w.markDeviceListChanged(u); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

// signatureTargetExists reports whether targetKey names a device with
// published keys or a cross-signing key of the user.
func (r *ReadTx) signatureTargetExists(userID, targetKey string) bool {
	if r.DeviceKeys(userID, targetKey) != nil {
		return true
	}
	for _, usage := range CrossSigningUsages {
		if pub, ok := CrossSigningPublicKey(r.CrossSigningKey(userID, usage)); ok && pub == targetKey {
			return true
		}
	}
	return false
}

// SignaturesOn lists the uploaded signatures on a key of a user: signer ->
// signer key ID -> signature.
func (r *ReadTx) SignaturesOn(userID, targetKey string) map[string]map[string]string {
	out := map[string]map[string]string{}
	pfx := prefix(userID, targetKey)
	r.scan(bE2ESignatures, pfx, func(k, v []byte) bool {
		signer, keyID, ok := strings.Cut(string(k[len(pfx):]), "\x00")
		if !ok {
			return true
		}
		if out[signer] == nil {
			out[signer] = map[string]string{}
		}
		out[signer][keyID] = string(v)
		return true
	})
	return out
}
