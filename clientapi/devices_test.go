package clientapi

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/ganglion/ganglion/fsm"
	"github.com/ganglion/ganglion/rooms"
)

func TestDevices(t *testing.T) {
	base := testServer(t)
	_, tok := registerUser(t, base, "alice")
	registerUser(t, base, "bob")
	tabTok := mustLogin(t, base, "alice", "pass-alice", "TABLET")
	mustLogin(t, base, "alice", "pass-alice", "WATCH")
	mustLogin(t, base, "alice", "pass-alice", "TV")
	mustLogin(t, base, "bob", "pass-bob", "BOBS")

	status, out := call(t, "GET", base+csV3+"/devices", tok, nil)
	wantResp(t, "list", status, out, 200, "")
	devs := out["devices"].([]any)
	if len(devs) != 4 {
		t.Fatalf("%d devices, want 4: %v", len(devs), devs)
	}
	for _, d := range devs {
		dm := d.(map[string]any)
		if dm["device_id"] == "BOBS" {
			t.Fatal("another user's device listed")
		}
		if dm["last_seen_ts"] == nil || dm["last_seen_ip"] != "127.0.0.1" {
			t.Fatalf("device %v lacks last seen", dm)
		}
	}

	name := "My tablet"
	cases := []struct {
		name, method, path string
		body               any
		status             int
		errcode            string
	}{
		{"get", "GET", "/devices/TABLET", nil, 200, ""},
		{"get unknown", "GET", "/devices/NOPE", nil, 404, "M_NOT_FOUND"},
		{"get another user's", "GET", "/devices/BOBS", nil, 404, "M_NOT_FOUND"},
		{"rename", "PUT", "/devices/TABLET", map[string]any{"display_name": name}, 200, ""},
		{"rename unknown", "PUT", "/devices/NOPE", map[string]any{"display_name": name}, 404, "M_NOT_FOUND"},
		{"rename too long", "PUT", "/devices/TABLET", map[string]any{"display_name": strings.Repeat("x", 101)}, 400, "M_TOO_LARGE"},
		{"rename not JSON", "PUT", "/devices/TABLET", "{", 400, "M_NOT_JSON"},
		{"delete_devices without list", "POST", "/delete_devices", map[string]any{}, 400, "M_MISSING_PARAM"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, out := call(t, tc.method, base+csV3+tc.path, tok, tc.body)
			wantResp(t, tc.name, status, out, tc.status, tc.errcode)
		})
	}
	status, out = call(t, "GET", base+csV3+"/devices/TABLET", tok, nil)
	wantResp(t, "get renamed", status, out, 200, "")
	if out["device_id"] != "TABLET" || out["display_name"] != name {
		t.Fatalf("device %v", out)
	}

	// DELETE /devices/{id}: UIA first.
	status, out = call(t, "DELETE", base+csV3+"/devices/TABLET", tok, nil)
	session := wantUIA(t, "delete without auth", status, out, "m.login.password", "")
	status, out = call(t, "DELETE", base+csV3+"/devices/TABLET", tok, map[string]any{"auth": passwordAuth("alice", "bad", session)})
	wantUIA(t, "delete with wrong password", status, out, "m.login.password", "M_FORBIDDEN")
	status, out = call(t, "DELETE", base+csV3+"/devices/TABLET", tok, map[string]any{"auth": passwordAuth("alice", "pass-alice", session)})
	wantResp(t, "delete", status, out, 200, "")
	status, out = call(t, "GET", base+csV3+"/account/whoami", tabTok, nil)
	wantResp(t, "deleted device's token", status, out, 401, "M_UNKNOWN_TOKEN")
	status, out = call(t, "GET", base+csV3+"/devices/TABLET", tok, nil)
	wantResp(t, "deleted device", status, out, 404, "M_NOT_FOUND")
	// Already removed: still 200 (spec: "or had been removed previously").
	status, out = call(t, "DELETE", base+csV3+"/devices/TABLET", tok, map[string]any{"auth": passwordAuth("alice", "pass-alice", "")})
	wantResp(t, "delete again", status, out, 200, "")

	// POST /delete_devices: UIA, then only the caller's devices go.
	status, out = call(t, "POST", base+csV3+"/delete_devices", tok, map[string]any{"devices": []string{"WATCH", "TV", "BOBS"}})
	session = wantUIA(t, "delete_devices without auth", status, out, "m.login.password", "")
	status, out = call(t, "POST", base+csV3+"/delete_devices", tok, map[string]any{"devices": []string{"WATCH", "TV", "BOBS"},
		"auth": passwordAuth("alice", "pass-alice", session)})
	wantResp(t, "delete_devices", status, out, 200, "")
	status, out = call(t, "GET", base+csV3+"/devices", tok, nil)
	wantResp(t, "list after delete", status, out, 200, "")
	if devs := out["devices"].([]any); len(devs) != 1 {
		t.Fatalf("devices left: %v", devs)
	}
	mustLogin(t, base, "bob", "pass-bob", "BOBS") // bob's device untouched
	bobTok := mustLogin(t, base, "bob", "pass-bob", "")
	status, out = call(t, "GET", base+csV3+"/devices/BOBS", bobTok, nil)
	wantResp(t, "bob's device", status, out, 200, "")
}

func TestProfile(t *testing.T) {
	base := testServer(t)
	_, tok := registerUser(t, base, "alice")
	_, bobTok := registerUser(t, base, "bob")
	me := base + csV3 + "/profile/@alice:test.local"

	cases := []struct {
		name, method, url, token string
		body                     any
		status                   int
		errcode                  string
	}{
		{"set displayname", "PUT", me + "/displayname", tok, map[string]any{"displayname": "Alice A."}, 200, ""},
		{"set avatar", "PUT", me + "/avatar_url", tok, map[string]any{"avatar_url": "mxc://test.local/abc"}, 200, ""},
		{"another user's", "PUT", me + "/displayname", bobTok, map[string]any{"displayname": "x"}, 403, "M_FORBIDDEN"},
		{"no token", "PUT", me + "/displayname", "", map[string]any{"displayname": "x"}, 401, "M_MISSING_TOKEN"},
		{"unsupported field", "PUT", me + "/m.tz", tok, map[string]any{"m.tz": "Europe/Paris"}, 403, "M_FORBIDDEN"},
		{"invalid key", "PUT", me + "/Bad-Key", tok, map[string]any{"Bad-Key": "x"}, 400, "M_INVALID_PARAM"},
		{"missing value", "PUT", me + "/displayname", tok, map[string]any{"avatar_url": "x"}, 400, "M_MISSING_PARAM"},
		{"non-string", "PUT", me + "/displayname", tok, map[string]any{"displayname": 5}, 400, "M_INVALID_PARAM"},
		{"null", "PUT", me + "/displayname", tok, map[string]any{"displayname": nil}, 400, "M_INVALID_PARAM"},
		{"not an mxc URI", "PUT", me + "/avatar_url", tok, map[string]any{"avatar_url": "https://x/y"}, 400, "M_INVALID_PARAM"},
		{"body not an object", "PUT", me + "/displayname", tok, `"x"`, 400, "M_BAD_JSON"},
		{"get field", "GET", me + "/displayname", "", nil, 200, ""},
		{"get unknown user", "GET", base + csV3 + "/profile/@nobody:test.local", "", nil, 404, "M_NOT_FOUND"},
		{"get unknown user's field", "GET", base + csV3 + "/profile/@nobody:test.local/displayname", "", nil, 404, "M_NOT_FOUND"},
		{"get unknown field", "GET", me + "/m.tz", "", nil, 404, "M_NOT_FOUND"},
		{"get invalid key", "GET", me + "/NOPE", "", nil, 400, "M_INVALID_PARAM"},
		{"get invalid user ID", "GET", base + csV3 + "/profile/alice", "", nil, 400, "M_INVALID_PARAM"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, out := call(t, tc.method, tc.url, tc.token, tc.body)
			wantResp(t, tc.name, status, out, tc.status, tc.errcode)
		})
	}

	status, out := call(t, "GET", me, "", nil)
	wantResp(t, "get profile", status, out, 200, "")
	if out["displayname"] != "Alice A." || out["avatar_url"] != "mxc://test.local/abc" {
		t.Fatalf("profile %v", out)
	}
	// Clearing a field removes it.
	status, out = call(t, "PUT", me+"/displayname", tok, map[string]any{"displayname": ""})
	wantResp(t, "clear displayname", status, out, 200, "")
	status, out = call(t, "GET", me+"/displayname", "", nil)
	wantResp(t, "cleared field", status, out, 404, "M_NOT_FOUND")
	status, out = call(t, "GET", me, "", nil)
	wantResp(t, "profile after clear", status, out, 200, "")
	if _, ok := out["displayname"]; ok || out["avatar_url"] != "mxc://test.local/abc" {
		t.Fatalf("profile %v", out)
	}
}

// A profile change reaches the user's member event in joined rooms.
func TestProfilePropagatesToRooms(t *testing.T) {
	base, api := testServerAPI(t)
	alice, tok := registerUser(t, base, "alice")
	var roomIDs []string
	for range 2 {
		roomID, err := api.rooms.CreateRoom(t.Context(), rooms.CreateRoomRequest{Creator: alice})
		if err != nil {
			t.Fatal(err)
		}
		roomIDs = append(roomIDs, roomID)
	}
	status, out := call(t, "PUT", base+csV3+"/profile/"+alice+"/displayname", tok, map[string]any{"displayname": "Queen Alice"})
	wantResp(t, "set displayname", status, out, 200, "")
	status, out = call(t, "PUT", base+csV3+"/profile/"+alice+"/avatar_url", tok, map[string]any{"avatar_url": "mxc://test.local/q"})
	wantResp(t, "set avatar", status, out, 200, "")

	for _, roomID := range roomIDs {
		var content struct {
			Membership  string `json:"membership"`
			DisplayName string `json:"displayname"`
			AvatarURL   string `json:"avatar_url"`
		}
		err := api.store.View(func(rt *fsm.ReadTx) error {
			ev, err := rt.StateEvent(roomID, "m.room.member", alice)
			if err != nil {
				return err
			}
			var p struct {
				Content json.RawMessage `json:"content"`
			}
			if err := json.Unmarshal(ev.PDU, &p); err != nil {
				return err
			}
			return json.Unmarshal(p.Content, &content)
		})
		if err != nil {
			t.Fatal(err)
		}
		if content.Membership != "join" || content.DisplayName != "Queen Alice" || content.AvatarURL != "mxc://test.local/q" {
			t.Fatalf("member event in %s: %+v", roomID, content)
		}
	}
}
