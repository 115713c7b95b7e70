package clientapi

import (
	"crypto/ed25519"
	"encoding/json"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"
)

func TestCrossSigningUploadAndUIA(t *testing.T) {
	base := testServer(t)
	alice := keRegister(t, base, "alice", "ALICE1")
	master, ssk, usk := keNewKey(t), keNewKey(t), keNewKey(t)
	body := map[string]any{
		"master_key":       keCrossKey(t, alice.user, "master", master, nil),
		"self_signing_key": keCrossKey(t, alice.user, "self_signing", ssk, master),
		"user_signing_key": keCrossKey(t, alice.user, "user_signing", usk, master),
	}
	// No master key yet: no UIA. A retry of the same keys needs none either.
	s, out := kePost(t, base, alice.token, "/keys/device_signing/upload", body)
	wantOK(t, "first upload", s, out)
	s, out = kePost(t, base, alice.token, "/keys/device_signing/upload", body)
	wantOK(t, "repeat upload", s, out)

	// Replacing keys needs the password.
	master2 := keNewKey(t)
	body2 := map[string]any{
		"master_key":       keCrossKey(t, alice.user, "master", master2, nil),
		"self_signing_key": keCrossKey(t, alice.user, "self_signing", ssk, master2),
	}
	s, out = kePost(t, base, alice.token, "/keys/device_signing/upload", body2)
	if s != 401 || out["session"] == nil || keGet(out, "flows") == nil {
		t.Fatalf("replacement without auth: %d %v", s, out)
	}
	body2["auth"] = map[string]any{"type": "m.login.password", "session": out["session"], "password": "wrong",
		"identifier": map[string]any{"type": "m.id.user", "user": alice.user}}
	s, out = kePost(t, base, alice.token, "/keys/device_signing/upload", body2)
	if s != 401 || out["errcode"] != "M_FORBIDDEN" {
		t.Fatalf("wrong password: %d %v", s, out)
	}
	body2["auth"] = map[string]any{"type": "m.login.password", "password": "pass-alice",
		"identifier": map[string]any{"type": "m.id.user", "user": alice.user}}
	s, out = kePost(t, base, alice.token, "/keys/device_signing/upload", body2)
	wantOK(t, "replacement with auth", s, out)

	s, out = kePost(t, base, alice.token, "/keys/query", map[string]any{"device_keys": map[string]any{alice.user: []any{}}})
	wantOK(t, "query", s, out)
	pub2 := keB64(master2.Public().(ed25519.PublicKey))
	if keGet(out, "master_keys", alice.user, "keys", "ed25519:"+pub2) != pub2 {
		t.Fatalf("master after replacement = %v", out["master_keys"])
	}
	if keGet(out, "user_signing_keys", alice.user) == nil || keGet(out, "self_signing_keys", alice.user) == nil {
		t.Fatalf("own query lacks self/user-signing keys: %v", out)
	}

	// Bad signatures and missing masters.
	bad := map[string]any{"self_signing_key": keCrossKey(t, alice.user, "self_signing", keNewKey(t), keNewKey(t))}
	s, out = kePost(t, base, alice.token, "/keys/device_signing/upload", bad)
	wantErr(t, "bad signature", s, out, 400, "M_INVALID_SIGNATURE")
	bob := keRegister(t, base, "bob", "BOB1")
	s, out = kePost(t, base, bob.token, "/keys/device_signing/upload",
		map[string]any{"self_signing_key": keCrossKey(t, bob.user, "self_signing", ssk, master)})
	wantErr(t, "no master key", s, out, 400, "M_MISSING_PARAM")
	s, out = kePost(t, base, bob.token, "/keys/device_signing/upload",
		map[string]any{"master_key": keCrossKey(t, alice.user, "master", keNewKey(t), nil)})
	wantErr(t, "someone else's key", s, out, 400, "M_INVALID_PARAM")
}

func TestSignaturesUploadVisibleInQuery(t *testing.T) {
	base := testServer(t)
	alice := keRegister(t, base, "alice", "ALICE1")
	bob := keRegister(t, base, "bob", "BOB1")
	aMaster, aSSK := keNewKey(t), keNewKey(t)
	bMaster, bUSK := keNewKey(t), keNewKey(t)
	s, out := kePost(t, base, alice.token, "/keys/upload", map[string]any{"device_keys": keDeviceKeys(t, alice)})
	wantOK(t, "alice device keys", s, out)
	s, out = kePost(t, base, alice.token, "/keys/device_signing/upload", map[string]any{
		"master_key":       keCrossKey(t, alice.user, "master", aMaster, nil),
		"self_signing_key": keCrossKey(t, alice.user, "self_signing", aSSK, aMaster)})
	wantOK(t, "alice cross-signing", s, out)
	s, out = kePost(t, base, bob.token, "/keys/device_signing/upload", map[string]any{
		"master_key":       keCrossKey(t, bob.user, "master", bMaster, nil),
		"user_signing_key": keCrossKey(t, bob.user, "user_signing", bUSK, bMaster)})
	wantOK(t, "bob cross-signing", s, out)

	aSSKPub, aMasterPub, bUSKPub := keB64(aSSK.Public().(ed25519.PublicKey)), keB64(aMaster.Public().(ed25519.PublicKey)), keB64(bUSK.Public().(ed25519.PublicKey))
	// Alice signs her device with her self-signing key, and her master key
	// with her device; one more object carries a forged signature.
	signedDevice := keSign(t, keDeviceKeys(t, alice), alice.user, aSSKPub, aSSK)
	signedMaster := keSign(t, keCrossKey(t, alice.user, "master", aMaster, nil), alice.user, alice.device, alice.priv)
	s, out = kePost(t, base, alice.token, "/keys/signatures/upload", map[string]any{alice.user: map[string]any{
		alice.device: signedDevice, aMasterPub: signedMaster}})
	wantOK(t, "alice signatures", s, out)
	if f, _ := out["failures"].(map[string]any); len(f) != 0 {
		t.Fatalf("failures = %v", f)
	}
	forged := keSign(t, keDeviceKeys(t, alice), alice.user, aSSKPub, keNewKey(t))
	s, out = kePost(t, base, alice.token, "/keys/signatures/upload", map[string]any{alice.user: map[string]any{
		alice.device: forged, "NOSUCHDEVICE": forged}})
	wantOK(t, "forged signatures", s, out)
	if keGet(out, "failures", alice.user, alice.device, "errcode") != "M_INVALID_SIGNATURE" ||
		keGet(out, "failures", alice.user, "NOSUCHDEVICE", "errcode") != "M_NOT_FOUND" {
		t.Fatalf("failures = %v", out)
	}

	// Bob signs alice's master key with his user-signing key.
	bobsView := keSign(t, keCrossKey(t, alice.user, "master", aMaster, nil), bob.user, bUSKPub, bUSK)
	s, out = kePost(t, base, bob.token, "/keys/signatures/upload", map[string]any{alice.user: map[string]any{aMasterPub: bobsView}})
	wantOK(t, "bob signs alice", s, out)
	if f, _ := out["failures"].(map[string]any); len(f) != 0 {
		t.Fatalf("failures = %v", f)
	}

	query := func(tok string) map[string]any {
		s, out := kePost(t, base, tok, "/keys/query", map[string]any{"device_keys": map[string]any{alice.user: []any{}}})
		wantOK(t, "query", s, out)
		return out
	}
	asBob := query(bob.token)
	if keGet(asBob, "device_keys", alice.user, alice.device, "signatures", alice.user, "ed25519:"+aSSKPub) == nil {
		t.Fatalf("device signature missing: %v", keGet(asBob, "device_keys", alice.user))
	}
	if keGet(asBob, "master_keys", alice.user, "signatures", bob.user, "ed25519:"+bUSKPub) == nil ||
		keGet(asBob, "master_keys", alice.user, "signatures", alice.user, "ed25519:"+alice.device) == nil {
		t.Fatalf("master signatures seen by bob = %v", keGet(asBob, "master_keys", alice.user))
	}
	// The merged objects still verify, for the device's own key and for
	// the self-signing key, as a client checks them.
	dev, _ := json.Marshal(keGet(asBob, "device_keys", alice.user, alice.device))
	if !verifySignedBy(dev, alice.user, alice.device, alice.pub()) || !verifySignedBy(dev, alice.user, aSSKPub, aSSKPub) {
		t.Fatalf("queried device keys do not verify: %s", dev)
	}
	var parsed mautrix.RespQueryKeys
	raw, _ := json.Marshal(asBob)
	if err := json.Unmarshal(raw, &parsed); err != nil || parsed.MasterKeys[id.UserID(alice.user)].Keys == nil {
		t.Fatalf("mautrix cannot read the query answer: %v %s", err, raw)
	}
	if keGet(asBob, "user_signing_keys", alice.user) != nil {
		t.Fatal("bob sees alice's user-signing key")
	}
	if keGet(query(alice.token), "master_keys", alice.user, "signatures", bob.user) != nil {
		t.Fatal("alice sees bob's private user-signing signature")
	}
}
