package clientapi

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// Reproductions of Complement's tests/csapi/upload_keys_test.go,
// user_query_keys_test.go, keychanges_test.go, e2e_key_backup_test.go and
// the local (single-server) cases of device_lists_test.go.

// cmGenerateKeys is MustGenerateOneTimeKeys: signed device keys and n
// signed curve25519 one-time keys "signed_curve25519:<i>".
func cmGenerateKeys(t *testing.T, c *cmClient, n int) (deviceKeys, otks map[string]any) {
	t.Helper()
	priv := keNewKey(t)
	curve := make([]byte, 32)
	_, _ = rand.Read(curve)
	deviceKeys = map[string]any{
		"user_id": c.userID, "device_id": c.deviceID,
		"algorithms": []any{"m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"},
		"keys": map[string]any{
			"ed25519:" + c.deviceID:    keB64(priv.Public().(ed25519.PublicKey)),
			"curve25519:" + c.deviceID: keB64(curve),
		},
	}
	keSign(t, deviceKeys, c.userID, c.deviceID, priv)
	otks = map[string]any{}
	for i := 0; i < n; i++ {
		k := make([]byte, 32)
		_, _ = rand.Read(k)
		otks[fmt.Sprintf("signed_curve25519:%d", i)] = keSign(t, map[string]any{"key": keB64(k)}, c.userID, c.deviceID, priv)
	}
	return deviceKeys, otks
}

// cmRoundTrip is v as the JSON decoder sees it, for deep comparisons.
func cmRoundTrip(v any) any {
	raw, _ := json.Marshal(v)
	var out any
	_ = json.Unmarshal(raw, &out)
	return out
}

func cmEqualJSON(t *testing.T, what string, got gjson.Result, want any) {
	t.Helper()
	if !reflect.DeepEqual(got.Value(), cmRoundTrip(want)) {
		t.Fatalf("%s: got %s, want %v", what, got.Raw, cmRoundTrip(want))
	}
}

func TestComplementUploadKey(t *testing.T) {
	d := cmDeploy(t)
	alice := d.register(t, "", "", false)
	bob := d.register(t, "", "", false)
	deviceKeys, otks := cmGenerateKeys(t, alice, 1)
	dkPath := "device_keys." + gjsonEscape(alice.userID) + "." + gjsonEscape(alice.deviceID)

	t.Run("Can upload device keys", func(t *testing.T) {
		r := alice.mustDo(t, "POST", cmV3("keys", "upload"), cmJSON(map[string]any{"device_keys": deviceKeys, "one_time_keys": otks}))
		r.get("one_time_key_counts").ForEach(func(k, v gjson.Result) bool {
			n := 0
			for id := range otks {
				if strings.HasPrefix(id, k.Str) {
					n++
				}
			}
			if int(v.Int()) != n {
				t.Errorf("count of %s: %d, want %d", k.Str, v.Int(), n)
			}
			return true
		})
	})
	t.Run("Rejects invalid device keys", func(t *testing.T) {
		r := bob.do(t, "POST", cmV3("keys", "upload"), cmJSON(map[string]any{
			"device_keys": map[string]any{"user_id": bob.userID, "device_id": bob.deviceID}, "one_time_keys": otks}))
		cmWant(t, "invalid device keys", r, 400, "M_BAD_JSON")
	})
	t.Run("Should reject keys claiming to belong to a different user", func(t *testing.T) {
		r := bob.do(t, "POST", cmV3("keys", "upload"), cmJSON(map[string]any{
			"device_keys": map[string]any{"user_id": alice.userID, "device_id": alice.deviceID}}))
		cmWant(t, "other user's keys", r, 400, "")
	})
	t.Run("Can query device keys using POST", func(t *testing.T) {
		r := alice.mustDo(t, "POST", cmV3("keys", "query"), cmJSON(map[string]any{"device_keys": map[string][]string{alice.userID: {}}}))
		if !r.get(dkPath).IsObject() {
			t.Fatalf("got %s", r.body)
		}
	})
	t.Run("Can query specific device keys using POST", func(t *testing.T) {
		r := alice.mustDo(t, "POST", cmV3("keys", "query"), cmJSON(map[string]any{"device_keys": map[string][]string{alice.userID: {alice.deviceID}}}))
		for _, f := range []string{"algorithms", "device_id", "keys", "signatures"} {
			cmEqualJSON(t, f, r.get(dkPath+"."+f), deviceKeys[f])
		}
	})
	t.Run("query for user with no keys returns empty key dict", func(t *testing.T) {
		r := alice.mustDo(t, "POST", cmV3("keys", "query"), cmJSON(map[string]any{"device_keys": map[string][]string{bob.userID: {}}}))
		bobKeys := r.get("device_keys." + gjsonEscape(bob.userID))
		if !bobKeys.IsObject() || len(bobKeys.Map()) != 0 {
			t.Fatalf("got %s", r.body)
		}
	})
	t.Run("Can claim one time key using POST", func(t *testing.T) {
		claim := cmJSON(map[string]any{"one_time_keys": map[string]any{alice.userID: map[string]string{alice.deviceID: "signed_curve25519"}}})
		r := alice.mustDo(t, "POST", cmV3("keys", "claim"), claim)
		cmEqualJSON(t, "claimed", r.get("one_time_keys."+gjsonEscape(alice.userID)+"."+gjsonEscape(alice.deviceID)), otks)
		r = alice.mustDo(t, "POST", cmV3("keys", "claim"), claim)
		if r.get("one_time_keys." + gjsonEscape(alice.userID)).Exists() {
			t.Fatalf("a key is left: %s", r.body)
		}
	})
}

func TestComplementKeyClaimOrdering(t *testing.T) {
	d := cmDeploy(t)
	alice := d.register(t, "", "", false)
	_, otks := cmGenerateKeys(t, alice, 2)
	otk1 := map[string]any{"signed_curve25519:1": otks["signed_curve25519:1"]}
	otk0 := map[string]any{"signed_curve25519:0": otks["signed_curve25519:0"]}
	alice.mustDo(t, "POST", cmV3("keys", "upload"), cmJSON(map[string]any{"one_time_keys": otk1}))
	alice.mustDo(t, "POST", cmV3("keys", "upload"), cmJSON(map[string]any{"one_time_keys": otk0}))
	claim := cmJSON(map[string]any{"one_time_keys": map[string]any{alice.userID: map[string]string{alice.deviceID: "signed_curve25519"}}})
	path := "one_time_keys." + gjsonEscape(alice.userID) + "." + gjsonEscape(alice.deviceID)
	cmEqualJSON(t, "first claim", alice.mustDo(t, "POST", cmV3("keys", "claim"), claim).get(path), otk1)
	cmEqualJSON(t, "second claim", alice.mustDo(t, "POST", cmV3("keys", "claim"), claim).get(path), otk0)
}

func TestComplementUploadKeyIdempotency(t *testing.T) {
	d := cmDeploy(t)
	alice := d.register(t, "", "", false)
	deviceKeys, otks := cmGenerateKeys(t, alice, 4)
	for i, body := range []map[string]any{
		{"device_keys": deviceKeys, "one_time_keys": otks}, {"one_time_keys": otks}, {"one_time_keys": otks},
	} {
		r := alice.mustDo(t, "POST", cmV3("keys", "upload"), cmJSON(body))
		if n := r.get("one_time_key_counts.signed_curve25519").Int(); n != 4 {
			t.Fatalf("upload %d: count %d: %s", i, n, r.body)
		}
	}
}

func TestComplementUploadKeyIdempotencyOverlap(t *testing.T) {
	d := cmDeploy(t)
	alice := d.register(t, "", "", false)
	deviceKeys, otks := cmGenerateKeys(t, alice, 4)
	abc, bcd := map[string]any{}, map[string]any{}
	for i := 0; i < 4; i++ {
		id := fmt.Sprintf("signed_curve25519:%d", i)
		if i < 3 {
			abc[id] = otks[id]
		}
		if i > 0 {
			bcd[id] = otks[id]
		}
	}
	for i, body := range []map[string]any{{"device_keys": deviceKeys}, {"one_time_keys": abc}, {"one_time_keys": bcd}} {
		want := []int64{0, 3, 4}[i]
		r := alice.mustDo(t, "POST", cmV3("keys", "upload"), cmJSON(body))
		r.get("one_time_key_counts").ForEach(func(k, v gjson.Result) bool {
			if v.Int() != want {
				t.Errorf("upload %d: %s count %d, want %d", i, k.Str, v.Int(), want)
			}
			return true
		})
	}
}

func TestComplementKeysQueryWithDeviceIDAsObjectFails(t *testing.T) {
	d := cmDeploy(t)
	alice := d.register(t, "", "", false)
	r := alice.do(t, "POST", cmV3("keys", "query"), cmJSON(map[string]any{
		"device_keys": map[string]any{"@bob:hs1": map[string]bool{"device_id1": true, "device_id2": true}}}))
	cmWant(t, "query", r, 400, "M_BAD_JSON")
}

func TestComplementKeyChangesLocal(t *testing.T) {
	d := cmDeploy(t)
	alice := d.register(t, "", "", false)
	bob := d.register(t, "bob", "$uperSecretPassword", false)
	dk, otk := cmGenerateKeys(t, bob, 1)
	bob.mustDo(t, "POST", cmV3("keys", "upload"), cmJSON(map[string]any{"device_keys": dk, "one_time_keys": otk}))
	roomID := alice.createRoom(t, map[string]any{"preset": "public_chat"})
	bob.joinRoom(t, roomID)
	next1 := alice.syncUntil(t, "", cmJoinedTo(bob.userID, roomID))

	second := d.login(t, bob.userID, "$uperSecretPassword", nil)
	dk2, otk2 := cmGenerateKeys(t, second, 1)
	second.mustDo(t, "POST", cmV3("keys", "upload"), cmJSON(map[string]any{"device_keys": dk2, "one_time_keys": otk2}))
	next := alice.syncUntil(t, next1, cmDeviceListsHas("changed", bob.userID))

	r := alice.mustDo(t, "GET", cmV3("keys", "changes"), cmQuery(url.Values{"from": {next1}, "to": {next}}))
	if r.str("changed.0") != bob.userID {
		t.Fatalf("changes: %s", r.body)
	}
	r = alice.mustDo(t, "POST", cmV3("keys", "query"), cmJSON(map[string]any{"device_keys": map[string][]string{bob.userID: {}}}))
	if n := len(r.get("device_keys." + gjsonEscape(bob.userID)).Map()); n != 2 {
		t.Fatalf("%d devices with keys: %s", n, r.body)
	}
}

func TestComplementE2EKeyBackupReplaceRoomKeyRules(t *testing.T) {
	d := cmDeploy(t)
	alice := d.register(t, "", "", false)
	const roomID = "!foo:hs1"
	version := alice.mustDo(t, "POST", cmV3("room_keys", "version"), cmJSON(map[string]any{
		"algorithm": "m.megolm_backup.v1", "auth_data": map[string]any{"foo": "bar"}})).str("version")
	if version == "" {
		t.Fatal("no version")
	}
	type bk struct {
		verified bool
		index    int
		count    int
	}
	cases := []struct {
		session string
		input   bk
		losers  []bk
	}{
		{"a", bk{false, 10, 5}, []bk{{false, 11, 5}, {false, 10, 6}, {false, 11, 6}}},
		{"b", bk{true, 10, 5}, []bk{{false, 11, 5}, {false, 10, 6}, {false, 11, 6}, {true, 11, 5}, {true, 10, 6}, {true, 11, 6}}},
	}
	q := cmQuery(url.Values{"version": {version}})
	put := func(session string, k bk) {
		alice.mustDo(t, "PUT", cmV3("room_keys", "keys", roomID, session), q, cmJSON(map[string]any{
			"first_message_index": k.index, "forwarded_count": k.count, "is_verified": k.verified,
			"session_data": map[string]any{"a": "b"}}))
	}
	for _, tc := range cases {
		put(tc.session, tc.input)
		for _, loser := range tc.losers {
			put(tc.session, loser)
			r := alice.mustDo(t, "GET", cmV3("room_keys", "keys", roomID, tc.session), q)
			if r.get("first_message_index").Int() != int64(tc.input.index) || r.get("forwarded_count").Int() != int64(tc.input.count) ||
				r.get("is_verified").Bool() != tc.input.verified {
				t.Fatalf("%s: %+v replaced %+v: %s", tc.session, loser, tc.input, r.body)
			}
		}
	}
}

// Reproduction of Complement's tests/msc3967_test.go (TestMSC3967).
func TestComplementMSC3967(t *testing.T) {
	d := cmDeploy(t)
	alice := d.register(t, "", "helloworld", false)
	priv := ed25519.NewKeyFromSeed(make([]byte, 32))
	pub := keB64(priv.Public().(ed25519.PublicKey))
	upload := func(body map[string]any) cmResp {
		return alice.do(t, "POST", cmV3("keys", "device_signing", "upload"), cmJSON(body))
	}
	master := map[string]any{"master_key": map[string]any{
		"user_id": alice.userID, "usage": []string{"master"}, "keys": map[string]string{"ed25519:" + pub: pub}}}
	cmWant(t, "first master key", upload(master), 200, "")
	cmWant(t, "same again", upload(master), 200, "")

	other := keB64(keNewKey(t).Public().(ed25519.PublicKey))
	r := upload(map[string]any{"master_key": map[string]any{
		"user_id": alice.userID, "usage": []string{"master"}, "keys": map[string]string{"ed25519:" + other: other}}})
	if r.status != 401 || !r.get("flows").Exists() {
		t.Fatalf("replacing the master key: %d %s", r.status, r.body)
	}

	ss := keB64(keNewKey(t).Public().(ed25519.PublicKey))
	ssKey := keSign(t, map[string]any{"user_id": alice.userID, "usage": []any{"self_signing"},
		"keys": map[string]any{"ed25519:" + ss: ss}}, alice.userID, pub, priv)
	body := map[string]any{"self_signing_key": ssKey}
	r = upload(body)
	if r.status != 401 || !r.get("flows").Exists() {
		t.Fatalf("adding a self-signing key: %d %s", r.status, r.body)
	}
	body["auth"] = map[string]any{"type": "m.login.password", "password": "helloworld", "session": r.str("session"),
		"identifier": map[string]any{"type": "m.id.user", "user": alice.userID}}
	cmWant(t, "with UIA", upload(body), 200, "")
	cmWant(t, "idempotent with the auth dict", upload(body), 200, "")
}
