package fsm

import (
	"encoding/json"
	"net/http"
	"reflect"
	"testing"
)

func deviceKeysJSON(user, device, curve string) json.RawMessage {
	return json.RawMessage(`{"algorithms":["m.olm.v1.curve25519-aes-sha2"],"device_id":"` + device +
		`","keys":{"curve25519:` + device + `":"` + curve + `"},"signatures":{},"user_id":"` + user + `"}`)
}

func otks(ids ...string) map[string]json.RawMessage {
	out := map[string]json.RawMessage{}
	for _, id := range ids {
		out[id] = json.RawMessage(`{"key":"` + id + `"}`)
	}
	return out
}

func TestKeysUploadClaimAndFallback(t *testing.T) {
	u := newUDFSM(t)
	u.world()
	start := u.maxPos()
	counts := u.mustApply(OpKeysUpload, KeysUpload{UserID: "@alice:t", DeviceID: "A1",
		DeviceKeys:   deviceKeysJSON("@alice:t", "A1", "c1"),
		OneTimeKeys:  otks("signed_curve25519:BBB", "signed_curve25519:AAA"),
		FallbackKeys: map[string]json.RawMessage{"signed_curve25519:FB": json.RawMessage(`{"key":"fb","fallback":true}`)},
	}).(map[string]int)
	if counts["signed_curve25519"] != 2 {
		t.Fatalf("counts = %v", counts)
	}
	// A later upload's keys are claimed after the earlier upload's.
	u.mustApply(OpKeysUpload, KeysUpload{UserID: "@alice:t", DeviceID: "A1", OneTimeKeys: otks("signed_curve25519:000")})
	u.view(func(r *ReadTx) {
		if got := r.DeviceListChangesSince(start); !reflect.DeepEqual(got, []string{"@alice:t"}) {
			t.Fatalf("changes = %v", got)
		}
		if got := r.UnusedFallbackKeyTypes("@alice:t", "A1"); !reflect.DeepEqual(got, []string{"signed_curve25519"}) {
			t.Fatalf("fallback types = %v", got)
		}
	})
	claim := KeysClaim{Claims: map[string]map[string]string{"@alice:t": {"A1": "signed_curve25519", "A2": "signed_curve25519"}}}
	var got []string
	for range 5 {
		res := u.mustApply(OpKeysClaim, claim).(ClaimedKeys)
		for id := range res["@alice:t"]["A1"] {
			got = append(got, id)
		}
		if _, ok := res["@alice:t"]["A2"]; ok {
			t.Fatal("A2 has no keys but got one")
		}
	}
	want := []string{"signed_curve25519:AAA", "signed_curve25519:BBB", "signed_curve25519:000",
		"signed_curve25519:FB", "signed_curve25519:FB"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("claims = %v, want %v", got, want)
	}
	u.view(func(r *ReadTx) {
		if c := r.OneTimeKeyCounts("@alice:t", "A1"); len(c) != 0 {
			t.Fatalf("counts after claims = %v", c)
		}
		if got := r.UnusedFallbackKeyTypes("@alice:t", "A1"); len(got) != 0 {
			t.Fatalf("used fallback still unused: %v", got)
		}
	})
	// A new fallback key is unused again.
	u.mustApply(OpKeysUpload, KeysUpload{UserID: "@alice:t", DeviceID: "A1",
		FallbackKeys: map[string]json.RawMessage{"signed_curve25519:FC": json.RawMessage(`{"key":"fc"}`)}})
	u.view(func(r *ReadTx) {
		if got := r.UnusedFallbackKeyTypes("@alice:t", "A1"); len(got) != 1 {
			t.Fatalf("fallback types after replacement = %v", got)
		}
	})
}

func TestKeysUploadRefusals(t *testing.T) {
	u := newUDFSM(t)
	u.world()
	up := KeysUpload{UserID: "@alice:t", DeviceID: "A1", DeviceKeys: deviceKeysJSON("@alice:t", "A1", "c1"), OneTimeKeys: otks("a:1")}
	u.mustApply(OpKeysUpload, up)
	u.mustApply(OpKeysUpload, up) // identical: fine
	pos := u.maxPos()

	u.wantRefusal(OpKeysUpload, KeysUpload{UserID: "@alice:t", DeviceID: "A1", DeviceKeys: deviceKeysJSON("@alice:t", "A2", "c1")},
		http.StatusBadRequest, "M_INVALID_PARAM")
	u.wantRefusal(OpKeysUpload, KeysUpload{UserID: "@alice:t", DeviceID: "A1",
		OneTimeKeys: map[string]json.RawMessage{"a:1": json.RawMessage(`"different"`)}}, http.StatusBadRequest, "M_INVALID_PARAM")
	u.wantRefusal(OpKeysUpload, KeysUpload{UserID: "@alice:t", DeviceID: "A1", OneTimeKeys: otks("nocolon")},
		http.StatusBadRequest, "M_INVALID_PARAM")
	u.wantRefusal(OpKeysUpload, KeysUpload{UserID: "@alice:t", DeviceID: "A1", FallbackKeys: otks("a:1", "a:2")},
		http.StatusBadRequest, "M_INVALID_PARAM")
	u.wantRefusal(OpKeysUpload, KeysUpload{UserID: "@alice:t", DeviceID: "NOPE"}, http.StatusNotFound, "M_NOT_FOUND")

	// New signatures on the same keys are taken and count as a change.
	resigned := json.RawMessage(`{"algorithms":["m.olm.v1.curve25519-aes-sha2"],"device_id":"A1","keys":{"curve25519:A1":"c1"},"signatures":{"@alice:t":{"ed25519:A1":"s"}},"user_id":"@alice:t"}`)
	u.mustApply(OpKeysUpload, KeysUpload{UserID: "@alice:t", DeviceID: "A1", DeviceKeys: resigned})
	u.view(func(r *ReadTx) {
		if string(r.DeviceKeys("@alice:t", "A1")) != string(resigned) {
			t.Fatalf("keys = %s", r.DeviceKeys("@alice:t", "A1"))
		}
		if got := r.DeviceListChangesSince(pos); len(got) != 1 {
			t.Fatalf("changes = %v", got)
		}
	})
}

func TestKeysOfDeletedDeviceAreStale(t *testing.T) {
	u := newUDFSM(t)
	u.world()
	u.mustApply(OpKeysUpload, KeysUpload{UserID: "@bob:t", DeviceID: "B1", DeviceKeys: deviceKeysJSON("@bob:t", "B1", "old"), OneTimeKeys: otks("a:1")})
	// The device is deleted and its ID reused by a later login, without
	// the e2ee hook having run.
	u.seed(func(w *WriteTx) error {
		return w.putJSON(bDevices, key("@bob:t", "B1"), DeviceRecord{UserID: "@bob:t", DeviceID: "B1", CreatedTS: 42})
	})
	u.view(func(r *ReadTx) {
		if r.DeviceKeys("@bob:t", "B1") != nil || len(r.OneTimeKeyCounts("@bob:t", "B1")) != 0 {
			t.Fatal("stale keys served for a new device")
		}
	})
	res := u.mustApply(OpKeysClaim, KeysClaim{Claims: map[string]map[string]string{"@bob:t": {"B1": "a"}}}).(ClaimedKeys)
	if len(res) != 0 {
		t.Fatalf("claimed a stale key: %v", res)
	}
	u.mustApply(OpKeysUpload, KeysUpload{UserID: "@bob:t", DeviceID: "B1", DeviceKeys: deviceKeysJSON("@bob:t", "B1", "new")})
	u.view(func(r *ReadTx) {
		if identityKeys(r.DeviceKeys("@bob:t", "B1")) != `{"curve25519:B1":"new"}` {
			t.Fatalf("keys = %s", r.DeviceKeys("@bob:t", "B1"))
		}
	})

	// With the hook, deletion removes the keys and is a device list change.
	pos := u.maxPos()
	u.seed(func(w *WriteTx) error { return w.e2eeDeviceRemoved("@bob:t", "B1") })
	u.view(func(r *ReadTx) {
		if r.get(bE2EDeviceKeys, key("@bob:t", "B1")) != nil {
			t.Fatal("keys survived the device")
		}
		if got := r.DeviceListChangesSince(pos); !reflect.DeepEqual(got, []string{"@bob:t"}) {
			t.Fatalf("changes = %v", got)
		}
	})
}

func TestDeviceListChangeWakesRoomMates(t *testing.T) {
	u := newUDFSM(t)
	u.world()
	u.seed(func(w *WriteTx) error {
		for _, user := range []string{"@alice:t", "@bob:t"} {
			if err := w.put(bRoomState, key("!r:t", "m.room.member", user), []byte("$m-"+user)); err != nil {
				return err
			}
		}
		return nil
	})
	before := u.maxPos()
	touched := u.seed(func(w *WriteTx) error { return w.markDeviceListChanged("@alice:t") })
	if !touched.Users["@bob:t"] || !touched.Users["@alice:t"] || touched.Users["@carol:t"] {
		t.Fatalf("touched = %v", touched.Users)
	}
	u.seed(func(w *WriteTx) error { return w.markDeviceListChanged("@carol:t") })
	mid := u.maxPos()
	u.seed(func(w *WriteTx) error { return w.markDeviceListChanged("@alice:t") })
	u.view(func(r *ReadTx) {
		if got := r.DeviceListChangesSince(before); !reflect.DeepEqual(got, []string{"@alice:t", "@carol:t"}) {
			t.Fatalf("since before = %v", got)
		}
		if got := r.DeviceListChangesSince(mid); !reflect.DeepEqual(got, []string{"@alice:t"}) {
			t.Fatalf("since mid = %v", got)
		}
		if got := r.DeviceListChangesSince(u.maxPos()); len(got) != 0 {
			t.Fatalf("since now = %v", got)
		}
	})
}

func TestKeysUploadNewIdentityKeys(t *testing.T) {
	u := newUDFSM(t)
	u.world()
	u.mustApply(OpKeysUpload, KeysUpload{UserID: "@alice:t", DeviceID: "A1", DeviceKeys: deviceKeysJSON("@alice:t", "A1", "c1")})
	u.seed(func(w *WriteTx) error {
		return w.put(bE2ESignatures, key("@alice:t", "A1", "@alice:t", "ed25519:SSK"), []byte("sig"))
	})
	pos := u.maxPos()
	// New identity keys replace the old ones, and signatures on the old
	// ones go with them.
	u.mustApply(OpKeysUpload, KeysUpload{UserID: "@alice:t", DeviceID: "A1", DeviceKeys: deviceKeysJSON("@alice:t", "A1", "c2")})
	u.view(func(r *ReadTx) {
		if identityKeys(r.DeviceKeys("@alice:t", "A1")) != `{"curve25519:A1":"c2"}` {
			t.Fatalf("keys = %s", r.DeviceKeys("@alice:t", "A1"))
		}
		if sigs := r.SignaturesOn("@alice:t", "A1"); len(sigs) != 0 {
			t.Fatalf("signatures on the old keys kept: %v", sigs)
		}
		if got := r.DeviceListChangesSince(pos); len(got) != 1 {
			t.Fatalf("changes = %v", got)
		}
	})
}
