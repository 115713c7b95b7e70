package fsm

import (
	"encoding/json"
	"net/http"
	"reflect"
	"testing"
)

func csKey(user, usage, pub string) json.RawMessage {
	return json.RawMessage(`{"keys":{"ed25519:` + pub + `":"` + pub + `"},"usage":["` + usage + `"],"user_id":"` + user + `"}`)
}

func TestCrossSigningAndSignatures(t *testing.T) {
	u := newUDFSM(t)
	u.world()
	u.mustApply(OpKeysUpload, KeysUpload{UserID: "@alice:t", DeviceID: "A1", DeviceKeys: deviceKeysJSON("@alice:t", "A1", "c1")})
	pos := u.maxPos()
	first := CrossSigningUpload{UserID: "@alice:t", Keys: map[string]json.RawMessage{
		UsageMaster: csKey("@alice:t", "master", "MK"), UsageSelfSigning: csKey("@alice:t", "self_signing", "SSK")}}
	u.mustApply(OpCrossSigningUpload, first)
	u.mustApply(OpCrossSigningUpload, first) // a repeat needs no authentication
	u.view(func(r *ReadTx) {
		if got := r.DeviceListChangesSince(pos); !reflect.DeepEqual(got, []string{"@alice:t"}) {
			t.Fatalf("changes = %v", got)
		}
		if pub, ok := CrossSigningPublicKey(r.CrossSigningKey("@alice:t", UsageMaster)); !ok || pub != "MK" {
			t.Fatalf("master = %s", r.CrossSigningKey("@alice:t", UsageMaster))
		}
	})
	replace := CrossSigningUpload{UserID: "@alice:t", Keys: map[string]json.RawMessage{UsageMaster: csKey("@alice:t", "master", "MK2")}}
	u.wantRefusal(OpCrossSigningUpload, replace, http.StatusForbidden, "M_FORBIDDEN")
	replace.Authenticated = true
	u.mustApply(OpCrossSigningUpload, replace)
	u.wantRefusal(OpCrossSigningUpload, CrossSigningUpload{UserID: "@alice:t", Authenticated: true,
		Keys: map[string]json.RawMessage{UsageUserSigning: csKey("@alice:t", "user_signing", "A2")}}, http.StatusForbidden, "M_FORBIDDEN")

	pos = u.maxPos()
	u.mustApply(OpSignaturesUpload, SignaturesUpload{Signer: "@alice:t", Entries: []SignatureEntry{
		{TargetUser: "@alice:t", TargetKey: "A1", SignerKeyID: "ed25519:SSK", Signature: "sig1"},
		{TargetUser: "@alice:t", TargetKey: "MK2", SignerKeyID: "ed25519:A1", Signature: "sig2"},
		{TargetUser: "@alice:t", TargetKey: "gone", SignerKeyID: "ed25519:A1", Signature: "sig3"},
	}})
	u.view(func(r *ReadTx) {
		if got := r.SignaturesOn("@alice:t", "A1"); got["@alice:t"]["ed25519:SSK"] != "sig1" {
			t.Fatalf("device signatures = %v", got)
		}
		if got := r.SignaturesOn("@alice:t", "MK2"); got["@alice:t"]["ed25519:A1"] != "sig2" {
			t.Fatalf("master signatures = %v", got)
		}
		if got := r.SignaturesOn("@alice:t", "gone"); len(got) != 0 {
			t.Fatalf("signature on an unknown key stored: %v", got)
		}
		if got := r.DeviceListChangesSince(pos); !reflect.DeepEqual(got, []string{"@alice:t"}) {
			t.Fatalf("changes = %v", got)
		}
	})
}

func backupData(fmi, fwd int64, verified bool, tag string) KeyBackupData {
	return KeyBackupData{FirstMessageIndex: fmi, ForwardedCount: fwd, IsVerified: verified,
		SessionData: json.RawMessage(`{"tag":"` + tag + `"}`)}
}

func TestBackupLifecycleAndReplacement(t *testing.T) {
	u := newUDFSM(t)
	u.world()
	create := BackupVersionCmd{UserID: "@alice:t", Algorithm: "m.megolm_backup.v1.curve25519-aes-sha2", AuthData: json.RawMessage(`{"public_key":"x"}`)}
	v1 := u.mustApply(OpBackupCreate, create).(string)
	v2 := u.mustApply(OpBackupCreate, create).(string)
	u.view(func(r *ReadTx) {
		if cur := r.CurrentBackupVersion("@alice:t"); cur == nil || cur.Version != v2 {
			t.Fatalf("current = %+v, want %s", cur, v2)
		}
		if r.CurrentBackupVersion("@bob:t") != nil {
			t.Fatal("bob has a backup")
		}
	})
	put := func(version string, d KeyBackupData) (any, error) {
		return u.apply(OpBackupPutKeys, BackupPutKeys{UserID: "@alice:t", Version: version,
			Rooms: map[string]map[string]KeyBackupData{"!r:t": {"s1": d}}})
	}
	if _, err := put(v1, backupData(5, 0, false, "a")); err == nil || err.(*Error).Errcode != "M_WRONG_ROOM_KEYS_VERSION" {
		t.Fatalf("put to old version: %v", err)
	}
	steps := []struct {
		d        KeyBackupData
		keptTag  string
		wantEtag string
	}{
		{backupData(5, 2, false, "a"), "a", "1"},
		{backupData(6, 0, false, "worse-index"), "a", "1"},
		{backupData(5, 1, false, "fewer-forwards"), "fewer-forwards", "2"},
		{backupData(9, 9, true, "verified"), "verified", "3"},
		{backupData(0, 0, false, "unverified"), "verified", "3"},
		{backupData(9, 9, true, "tie"), "verified", "3"},
	}
	for i, s := range steps {
		v, err := put(v2, s.d)
		if err != nil {
			t.Fatal(err)
		}
		res := v.(BackupKeysResult)
		if res.Count != 1 || res.Etag != s.wantEtag {
			t.Fatalf("step %d: result %+v, want etag %s", i, res, s.wantEtag)
		}
		u.view(func(r *ReadTx) {
			if got := r.BackupKey("@alice:t", v2, "!r:t", "s1"); got == nil || string(got.SessionData) != `{"tag":"`+s.keptTag+`"}` {
				t.Fatalf("step %d: kept %+v, want %s", i, got, s.keptTag)
			}
		})
	}
	_, _ = put(v2, backupData(0, 0, false, "other"))
	u.mustApply(OpBackupPutKeys, BackupPutKeys{UserID: "@alice:t", Version: v2,
		Rooms: map[string]map[string]KeyBackupData{"!other:t": {"s2": backupData(0, 0, false, "x")}}})
	res := u.mustApply(OpBackupDeleteKeys, BackupDeleteKeys{UserID: "@alice:t", Version: v2, RoomID: "!r:t"}).(BackupKeysResult)
	if res.Count != 1 {
		t.Fatalf("after room delete: %+v", res)
	}
	u.wantRefusal(OpBackupUpdate, BackupVersionCmd{UserID: "@alice:t", Version: v2, Algorithm: "other", AuthData: json.RawMessage(`{}`)},
		http.StatusBadRequest, "M_INVALID_PARAM")
	u.mustApply(OpBackupUpdate, BackupVersionCmd{UserID: "@alice:t", Version: v2, Algorithm: create.Algorithm, AuthData: json.RawMessage(`{"public_key":"y"}`)})

	// Deleting the current version makes the previous one current again;
	// deleting twice succeeds, an unknown version does not.
	u.mustApply(OpBackupDelete, BackupVersionCmd{UserID: "@alice:t", Version: v2})
	u.mustApply(OpBackupDelete, BackupVersionCmd{UserID: "@alice:t", Version: v2})
	u.wantRefusal(OpBackupDelete, BackupVersionCmd{UserID: "@alice:t", Version: "999999"}, http.StatusNotFound, "M_NOT_FOUND")
	u.view(func(r *ReadTx) {
		if cur := r.CurrentBackupVersion("@alice:t"); cur == nil || cur.Version != v1 {
			t.Fatalf("current after delete = %+v", cur)
		}
		if r.BackupVersion("@alice:t", v2) != nil || r.BackupKey("@alice:t", v2, "!other:t", "s2") != nil {
			t.Fatal("deleted version still readable")
		}
	})
	u.mustApply(OpBackupDelete, BackupVersionCmd{UserID: "@alice:t", Version: v1})
	u.wantRefusal(OpBackupPutKeys, BackupPutKeys{UserID: "@alice:t", Version: v1}, http.StatusNotFound, "M_NOT_FOUND")
}
