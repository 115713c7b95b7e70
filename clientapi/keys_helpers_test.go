package clientapi

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"maunium.net/go/mautrix/crypto/canonicaljson"
)

// Helpers for the end-to-end key tests (prefix ke).

// keDevice is a logged-in device with its own ed25519 signing key.
type keDevice struct {
	user, device, token string
	priv                ed25519.PrivateKey
}

func (d *keDevice) pub() string { return keB64(d.priv.Public().(ed25519.PublicKey)) }

func keB64(b []byte) string { return base64.RawStdEncoding.EncodeToString(b) }

func keNewKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return priv
}

// keRegister registers localpart on the given device ID.
func keRegister(t *testing.T, base, localpart, deviceID string) *keDevice {
	t.Helper()
	status, out := call(t, "POST", base+"/_matrix/client/v3/register", "", map[string]any{
		"username": localpart, "password": "pass-" + localpart, "device_id": deviceID,
		"auth": map[string]any{"type": "m.login.dummy"},
	})
	if status != 200 {
		t.Fatalf("register %s: %d %v", localpart, status, out)
	}
	return &keDevice{user: fmt.Sprint(out["user_id"]), device: deviceID, token: fmt.Sprint(out["access_token"]), priv: keNewKey(t)}
}

// keLogin logs d's user in on another device.
func keLogin(t *testing.T, base string, d *keDevice, deviceID string) *keDevice {
	t.Helper()
	local, _, _ := strings.Cut(strings.TrimPrefix(d.user, "@"), ":")
	tok := mustLogin(t, base, local, "pass-"+local, deviceID)
	return &keDevice{user: d.user, device: deviceID, token: tok, priv: keNewKey(t)}
}

// keSign adds signer's signature with key "ed25519:<keyName>" to obj.
func keSign(t *testing.T, obj map[string]any, signer, keyName string, priv ed25519.PrivateKey) map[string]any {
	t.Helper()
	bare := map[string]any{}
	for k, v := range obj {
		if k != "signatures" && k != "unsigned" {
			bare[k] = v
		}
	}
	raw, _ := json.Marshal(bare)
	canon, err := canonicaljson.CanonicalJSON(raw)
	if err != nil {
		t.Fatal(err)
	}
	sigs, _ := obj["signatures"].(map[string]any)
	if sigs == nil {
		sigs = map[string]any{}
	}
	mine, _ := sigs[signer].(map[string]any)
	if mine == nil {
		mine = map[string]any{}
	}
	mine["ed25519:"+keyName] = keB64(ed25519.Sign(priv, canon))
	sigs[signer] = mine
	obj["signatures"] = sigs
	return obj
}

// keDeviceKeys is d's self-signed device_keys object.
func keDeviceKeys(t *testing.T, d *keDevice) map[string]any {
	t.Helper()
	obj := map[string]any{
		"user_id": d.user, "device_id": d.device,
		"algorithms": []any{"m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"},
		"keys":       map[string]any{"curve25519:" + d.device: "curve-" + d.device, "ed25519:" + d.device: d.pub()},
	}
	return keSign(t, obj, d.user, d.device, d.priv)
}

// keCrossKey is a cross-signing key object for priv, signed by signer's
// priv when given.
func keCrossKey(t *testing.T, user, usage string, priv, signer ed25519.PrivateKey) map[string]any {
	t.Helper()
	pub := keB64(priv.Public().(ed25519.PublicKey))
	obj := map[string]any{"user_id": user, "usage": []any{usage}, "keys": map[string]any{"ed25519:" + pub: pub}}
	if signer != nil {
		keSign(t, obj, user, keB64(signer.Public().(ed25519.PublicKey)), signer)
	}
	return obj
}

func kePost(t *testing.T, base, tok, path string, body any) (int, map[string]any) {
	t.Helper()
	return call(t, "POST", base+"/_matrix/client/v3"+path, tok, body)
}

// keGet walks a decoded JSON answer along keys.
func keGet(v any, path ...string) any {
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}
