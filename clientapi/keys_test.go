package clientapi

import (
	"fmt"
	"net/url"
	"slices"
	"testing"
	"time"
)

func TestKeysUploadQueryClaim(t *testing.T) {
	base := testServer(t)
	a1 := keRegister(t, base, "alice", "ALICE1")
	a2 := keLogin(t, base, a1, "ALICE2")
	bob := keRegister(t, base, "bob", "BOB1")

	s, out := kePost(t, base, a1.token, "/keys/upload", map[string]any{
		"device_keys": keDeviceKeys(t, a1),
		"one_time_keys": map[string]any{
			"signed_curve25519:AAAAAB": map[string]any{"key": "otk-b"},
			"signed_curve25519:AAAAAA": map[string]any{"key": "otk-a"},
		},
		"fallback_keys": map[string]any{"signed_curve25519:FFFF": map[string]any{"key": "fb", "fallback": true}},
	})
	wantOK(t, "upload a1", s, out)
	if n := keGet(out, "one_time_key_counts", "signed_curve25519"); n != float64(2) {
		t.Fatalf("counts = %v", out)
	}
	s, out = kePost(t, base, a2.token, "/keys/upload", map[string]any{"device_keys": keDeviceKeys(t, a2)})
	wantOK(t, "upload a2", s, out)
	if n := keGet(out, "one_time_key_counts", "signed_curve25519"); n != float64(0) {
		t.Fatalf("a2 counts = %v", out)
	}

	// Refusals: someone else's device, a one-time key re-used with other
	// content, a bad key ID. New identity keys replace the old (Synapse,
	// Complement's device list tests).
	other := keDeviceKeys(t, a1)
	other["device_id"] = "ALICE2"
	s, out = kePost(t, base, a1.token, "/keys/upload", map[string]any{"device_keys": other})
	wantErr(t, "other device", s, out, 400, "M_INVALID_PARAM")
	other = keDeviceKeys(t, a1)
	other["user_id"] = bob.user
	s, out = kePost(t, base, a1.token, "/keys/upload", map[string]any{"device_keys": other})
	wantErr(t, "other user", s, out, 400, "M_INVALID_PARAM")
	a1.priv = keNewKey(t)
	s, out = kePost(t, base, a1.token, "/keys/upload", map[string]any{"device_keys": keDeviceKeys(t, a1)})
	wantOK(t, "new identity keys", s, out)
	s, out = kePost(t, base, a1.token, "/keys/upload", map[string]any{
		"one_time_keys": map[string]any{"signed_curve25519:AAAAAA": map[string]any{"key": "different"}}})
	wantErr(t, "otk conflict", s, out, 400, "M_INVALID_PARAM")
	s, out = kePost(t, base, a1.token, "/keys/upload", map[string]any{"one_time_keys": map[string]any{"nocolon": "x"}})
	wantErr(t, "bad key id", s, out, 400, "M_INVALID_PARAM")
	s, out = kePost(t, base, a1.token, "/keys/upload", map[string]any{"device_keys": map[string]any{"user_id": a1.user}})
	wantErr(t, "incomplete device keys", s, out, 400, "M_BAD_JSON")

	s, out = kePost(t, base, bob.token, "/keys/query", map[string]any{"device_keys": map[string]any{a1.user: []any{}}})
	wantOK(t, "query", s, out)
	devs, _ := keGet(out, "device_keys", a1.user).(map[string]any)
	if len(devs) != 2 || keGet(devs, "ALICE1", "keys", "curve25519:ALICE1") != "curve-ALICE1" {
		t.Fatalf("query = %v", out)
	}
	s, out = kePost(t, base, bob.token, "/keys/query", map[string]any{"device_keys": map[string]any{a1.user: []any{"ALICE2", "NOPE"}}})
	wantOK(t, "query one device", s, out)
	if devs, _ := keGet(out, "device_keys", a1.user).(map[string]any); len(devs) != 1 || devs["ALICE2"] == nil {
		t.Fatalf("query ALICE2 = %v", out)
	}
	s, out = kePost(t, base, bob.token, "/keys/query", map[string]any{})
	wantErr(t, "query without device_keys", s, out, 400, "M_MISSING_PARAM")

	// Claims: one-time keys in key ID order, then the fallback key, which
	// stays.
	claim := map[string]any{"one_time_keys": map[string]any{a1.user: map[string]any{"ALICE1": "signed_curve25519", "ALICE2": "signed_curve25519"}}}
	var got []string
	for range 4 {
		s, out = kePost(t, base, bob.token, "/keys/claim", claim)
		wantOK(t, "claim", s, out)
		keys, _ := keGet(out, "one_time_keys", a1.user, "ALICE1").(map[string]any)
		for id := range keys {
			got = append(got, id)
		}
		if keGet(out, "one_time_keys", a1.user, "ALICE2") != nil {
			t.Fatalf("ALICE2 has no keys to claim: %v", out)
		}
	}
	want := []string{"signed_curve25519:AAAAAA", "signed_curve25519:AAAAAB", "signed_curve25519:FFFF", "signed_curve25519:FFFF"}
	if !slices.Equal(got, want) {
		t.Fatalf("claimed %v, want %v", got, want)
	}
	sync := sySync(t, base, a1.token, "timeout=0")
	if n := keGet(sync, "device_one_time_keys_count", "signed_curve25519"); n != float64(0) {
		t.Fatalf("sync counts = %v", sync["device_one_time_keys_count"])
	}
	if types, ok := sync["device_unused_fallback_key_types"].([]any); !ok || len(types) != 0 {
		t.Fatalf("fallback types after use = %#v", sync["device_unused_fallback_key_types"])
	}
}

func TestKeysDeviceListsInSync(t *testing.T) {
	base := testServer(t)
	alice := keRegister(t, base, "alice", "ALICE1")
	bob := keRegister(t, base, "bob", "BOB1")
	carol := keRegister(t, base, "carol", "CAROL1")
	room := syCreateRoom(t, base, alice.token, map[string]any{"preset": "public_chat"})
	syMember(t, base, bob.token, room, "join", nil)

	first := sySync(t, base, bob.token, "timeout=0")
	since := fmt.Sprint(first["next_batch"])
	if keGet(first, "device_unused_fallback_key_types") == nil {
		t.Fatalf("initial sync lacks device_unused_fallback_key_types: %v", first)
	}

	// A long-poll wakes for a room-mate's new keys.
	done := make(chan map[string]any, 1)
	go func() {
		_, out := call(t, "GET", base+"/_matrix/client/v3/sync?timeout=10000&since="+url.QueryEscape(since), bob.token, nil)
		done <- out
	}()
	time.Sleep(200 * time.Millisecond)
	s, out := kePost(t, base, alice.token, "/keys/upload", map[string]any{"device_keys": keDeviceKeys(t, alice)})
	wantOK(t, "alice upload", s, out)
	s, out = kePost(t, base, carol.token, "/keys/upload", map[string]any{"device_keys": keDeviceKeys(t, carol)})
	wantOK(t, "carol upload", s, out)
	var woke map[string]any
	select {
	case woke = <-done:
	case <-time.After(8 * time.Second):
		t.Fatal("long-poll did not wake for a device list change")
	}
	changed, _ := keGet(woke, "device_lists", "changed").([]any)
	if !slices.Contains(changed, any(alice.user)) {
		t.Fatalf("woken sync device_lists = %v", woke["device_lists"])
	}
	time.Sleep(100 * time.Millisecond)
	later := sySync(t, base, bob.token, "timeout=0&since="+url.QueryEscape(since))
	changed, _ = keGet(later, "device_lists", "changed").([]any)
	if !slices.Equal(changed, []any{alice.user}) {
		t.Fatalf("changed = %v (carol shares no room)", later["device_lists"])
	}
	s, out = call(t, "GET", base+"/_matrix/client/v3/keys/changes?from="+url.QueryEscape(since)+"&to="+url.QueryEscape(fmt.Sprint(later["next_batch"])), bob.token, nil)
	wantOK(t, "keys/changes", s, out)
	if c, _ := out["changed"].([]any); !slices.Equal(c, []any{alice.user}) {
		t.Fatalf("keys/changes = %v", out)
	}
	s, out = call(t, "GET", base+"/_matrix/client/v3/keys/changes?from=junk", bob.token, nil)
	wantErr(t, "bad from", s, out, 400, "M_INVALID_PARAM")

	// Carol joining makes her new to bob; alice leaving makes her left.
	since = fmt.Sprint(later["next_batch"])
	syMember(t, base, carol.token, room, "join", nil)
	syMember(t, base, alice.token, room, "leave", nil)
	after := sySync(t, base, bob.token, "timeout=0&since="+url.QueryEscape(since))
	changed, _ = keGet(after, "device_lists", "changed").([]any)
	left, _ := keGet(after, "device_lists", "left").([]any)
	if !slices.Equal(changed, []any{carol.user}) || !slices.Equal(left, []any{alice.user}) {
		t.Fatalf("device_lists after join/leave = %v", after["device_lists"])
	}
}
