package clientapi

import (
	"crypto/rand"
	"fmt"
	"testing"
)

// Reproduction of the single-server cases of Complement's
// tests/csapi/device_lists_test.go (TestDeviceListUpdates). Its
// uploadNewKeys sends device keys without signatures and, for the same
// device, new identity keys each time: both must be accepted.

// cmUploadNewKeys uploads fresh unsigned identity keys for c's device and
// returns a check of what /keys/query must then say.
func cmUploadNewKeys(t *testing.T, c *cmClient) func(cmResp) error {
	t.Helper()
	ed, curve := make([]byte, 32), make([]byte, 32)
	_, _ = rand.Read(ed)
	_, _ = rand.Read(curve)
	edID, curveID := "ed25519:"+c.deviceID, "curve25519:"+c.deviceID
	c.mustDo(t, "POST", cmV3("keys", "upload"), cmJSON(map[string]any{"device_keys": map[string]any{
		"user_id": c.userID, "device_id": c.deviceID,
		"algorithms": []any{"m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"},
		"keys":       map[string]any{edID: keB64(ed), curveID: keB64(curve)},
	}}))
	base := "device_keys." + gjsonEscape(c.userID) + "." + gjsonEscape(c.deviceID)
	return func(r cmResp) error {
		if r.str(base+".keys."+gjsonEscape(edID)) != keB64(ed) || r.str(base+".keys."+gjsonEscape(curveID)) != keB64(curve) ||
			len(r.get(base+".algorithms").Array()) != 2 {
			return fmt.Errorf("keys of %s not current: %s", c.userID, r.body)
		}
		return nil
	}
}

func cmMustQueryKeys(t *testing.T, c *cmClient, userID string, check func(cmResp) error) {
	t.Helper()
	r := c.mustDo(t, "POST", cmV3("keys", "query"), cmJSON(map[string]any{"device_keys": map[string]any{userID: []string{}}}))
	if err := check(r); err != nil {
		t.Fatal(err)
	}
}

func TestComplementDeviceListUpdates(t *testing.T) {
	d := cmDeploy(t)
	n := 0
	users := func() (alice, bob *cmClient) {
		n++
		return d.register(t, fmt.Sprintf("alice%d", n), "password", false), d.register(t, fmt.Sprintf("bob%d", n), "password", false)
	}
	// makeBarrier: a third user whose key uploads the observer waits for.
	barrier := func(t *testing.T, observer *cmClient) func(string) string {
		barry := d.register(t, "barry", "password", false)
		roomID := barry.createRoom(t, map[string]any{"preset": "public_chat"})
		observer.joinRoom(t, roomID)
		observer.syncUntil(t, "", cmJoinedTo(observer.userID, roomID))
		return func(next string) string {
			cmUploadNewKeys(t, barry)
			return observer.syncUntil(t, next, cmDeviceListsHas("changed", barry.userID))
		}
	}
	noChange := func(t *testing.T, alice, bob *cmClient, since string) {
		t.Helper()
		s, _ := alice.sync(t, since, nil)
		if cmDeviceListsHas("changed", bob.userID)(s) == nil {
			t.Fatalf("notified of %s's keys without a shared room: %s", bob.userID, s.Get("device_lists").Raw)
		}
	}

	t.Run("when local user joins a room", func(t *testing.T) {
		alice, bob := users()
		bar := barrier(t, alice)
		check := cmUploadNewKeys(t, bob)
		roomID := alice.createRoom(t, map[string]any{"preset": "public_chat"})
		_, next := alice.sync(t, "", nil)
		bob.joinRoom(t, roomID)
		next = alice.syncUntil(t, next, cmDeviceListsHas("changed", bob.userID))
		cmMustQueryKeys(t, alice, bob.userID, check)
		next = bar(next)
		check = cmUploadNewKeys(t, bob)
		alice.syncUntil(t, next, cmDeviceListsHas("changed", bob.userID))
		cmMustQueryKeys(t, alice, bob.userID, check)
	})
	t.Run("when joining a room with a local user", func(t *testing.T) {
		alice, bob := users()
		bar := barrier(t, alice)
		check := cmUploadNewKeys(t, bob)
		roomID := bob.createRoom(t, map[string]any{"preset": "public_chat"})
		_, next := alice.sync(t, "", nil)
		alice.joinRoom(t, roomID)
		next = alice.syncUntil(t, next, cmDeviceListsHas("changed", bob.userID))
		cmMustQueryKeys(t, alice, bob.userID, check)
		next = bar(next)
		check = cmUploadNewKeys(t, bob)
		alice.syncUntil(t, next, cmDeviceListsHas("changed", bob.userID))
		cmMustQueryKeys(t, alice, bob.userID, check)
	})
	t.Run("when local user leaves a room", func(t *testing.T) {
		alice, bob := users()
		bar := barrier(t, alice)
		check := cmUploadNewKeys(t, bob)
		roomID := alice.createRoom(t, map[string]any{"preset": "public_chat"})
		bob.joinRoom(t, roomID)
		next := alice.syncUntil(t, "", cmJoinedTo(bob.userID, roomID))
		cmMustQueryKeys(t, alice, bob.userID, check)
		next = bar(next)
		bob.mustDo(t, "POST", cmV3("rooms", roomID, "leave"), cmJSON(map[string]any{}))
		next = alice.syncUntil(t, next, cmDeviceListsHas("left", bob.userID))
		check = cmUploadNewKeys(t, bob)
		cmMustQueryKeys(t, alice, bob.userID, check)
		noChange(t, alice, bob, next)
	})
	t.Run("when leaving a room with a local user", func(t *testing.T) {
		alice, bob := users()
		bar := barrier(t, alice)
		check := cmUploadNewKeys(t, bob)
		roomID := bob.createRoom(t, map[string]any{"preset": "public_chat"})
		alice.joinRoom(t, roomID)
		next := alice.syncUntil(t, "", cmJoinedTo(alice.userID, roomID))
		cmMustQueryKeys(t, alice, bob.userID, check)
		next = bar(next)
		alice.mustDo(t, "POST", cmV3("rooms", roomID, "leave"), cmJSON(map[string]any{}))
		next = alice.syncUntil(t, next, cmDeviceListsHas("left", bob.userID))
		check = cmUploadNewKeys(t, bob)
		cmMustQueryKeys(t, alice, bob.userID, check)
		noChange(t, alice, bob, next)
	})
	t.Run("when local user rejoins a room", func(t *testing.T) {
		alice, bob := users()
		bar := barrier(t, alice)
		check := cmUploadNewKeys(t, bob)
		roomID := alice.createRoom(t, map[string]any{"preset": "public_chat"})
		bob.joinRoom(t, roomID)
		next := alice.syncUntil(t, "", cmJoinedTo(bob.userID, roomID))
		cmMustQueryKeys(t, alice, bob.userID, check)
		next = bar(next)
		bob.mustDo(t, "POST", cmV3("rooms", roomID, "leave"), cmJSON(map[string]any{}))
		alice.syncUntil(t, next, cmDeviceListsHas("left", bob.userID))
		check = cmUploadNewKeys(t, bob)
		bob.joinRoom(t, roomID)
		alice.syncUntil(t, next, cmDeviceListsHas("changed", bob.userID))
		cmMustQueryKeys(t, alice, bob.userID, check)
	})
}
