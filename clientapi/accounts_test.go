package clientapi

import (
	"fmt"
	"slices"
	"testing"

	"github.com/ganglion/ganglion/config"
	"github.com/ganglion/ganglion/rooms"
)

const csV3 = "/_matrix/client/v3"

// want asserts a response's status and (when errcode != "") its errcode.
func wantResp(t *testing.T, what string, status int, out map[string]any, wantStatus int, errcode string) {
	t.Helper()
	if status != wantStatus {
		t.Fatalf("%s: status %d, want %d (%v)", what, status, wantStatus, out)
	}
	if errcode != "" && out["errcode"] != errcode {
		t.Fatalf("%s: errcode %v, want %s (%v)", what, out["errcode"], errcode, out)
	}
}

// wantUIA asserts a 401 UIA answer offering exactly one flow of stage.
func wantUIA(t *testing.T, what string, status int, out map[string]any, stage, errcode string) string {
	t.Helper()
	wantResp(t, what, status, out, 401, errcode)
	flows, _ := out["flows"].([]any)
	if len(flows) != 1 {
		t.Fatalf("%s: flows %v", what, out["flows"])
	}
	stages, _ := flows[0].(map[string]any)["stages"].([]any)
	if len(stages) != 1 || stages[0] != stage {
		t.Fatalf("%s: stages %v, want [%s]", what, stages, stage)
	}
	if _, ok := out["params"].(map[string]any); !ok {
		t.Fatalf("%s: params %v", what, out["params"])
	}
	session, _ := out["session"].(string)
	if session == "" {
		t.Fatalf("%s: no session in %v", what, out)
	}
	if errcode == "" && out["errcode"] != nil {
		t.Fatalf("%s: unexpected errcode %v", what, out["errcode"])
	}
	return session
}

func loginPW(t *testing.T, base, user, password, deviceID string) (int, map[string]any) {
	t.Helper()
	body := map[string]any{"type": "m.login.password", "password": password,
		"identifier": map[string]any{"type": "m.id.user", "user": user}}
	if deviceID != "" {
		body["device_id"] = deviceID
	}
	return call(t, "POST", base+csV3+"/login", "", body)
}

func mustLogin(t *testing.T, base, user, password, deviceID string) string {
	t.Helper()
	status, out := loginPW(t, base, user, password, deviceID)
	wantResp(t, "login "+user, status, out, 200, "")
	return fmt.Sprint(out["access_token"])
}

func TestVersionsAndCapabilities(t *testing.T) {
	base := testServer(t)
	status, out := call(t, "GET", base+"/_matrix/client/versions", "", nil)
	wantResp(t, "versions", status, out, 200, "")
	vs, _ := out["versions"].([]any)
	for _, v := range []string{"r0.6.1", "v1.1", "v1.12"} {
		if !slices.Contains(vs, any(v)) {
			t.Errorf("versions %v lacks %s", vs, v)
		}
	}
	if _, ok := out["unstable_features"].(map[string]any); !ok {
		t.Errorf("unstable_features %v", out["unstable_features"])
	}

	status, out = call(t, "GET", base+csV3+"/capabilities", "", nil)
	wantResp(t, "capabilities without token", status, out, 401, "M_MISSING_TOKEN")
	_, tok := registerUser(t, base, "alice")
	status, out = call(t, "GET", base+csV3+"/capabilities", tok, nil)
	wantResp(t, "capabilities", status, out, 200, "")
	caps := out["capabilities"].(map[string]any)
	enabled := func(name string) any { return caps[name].(map[string]any)["enabled"] }
	if enabled("m.change_password") != true || enabled("m.set_displayname") != true ||
		enabled("m.set_avatar_url") != true || enabled("m.3pid_changes") != false {
		t.Errorf("boolean capabilities %v", caps)
	}
	rv := caps["m.room_versions"].(map[string]any)
	avail := rv["available"].(map[string]any)
	if rv["default"] != "12" || avail["10"] != "stable" || avail["11"] != "stable" || avail["12"] != "stable" {
		t.Errorf("m.room_versions %v", rv)
	}
}

func TestRegisterUIA(t *testing.T) {
	base := testServer(t)
	status, out := call(t, "POST", base+csV3+"/register", "", map[string]any{"username": "alice", "password": "pw"})
	session := wantUIA(t, "register without auth", status, out, "m.login.dummy", "")

	status, out = call(t, "POST", base+csV3+"/register", "", map[string]any{"username": "alice", "password": "pw",
		"auth": map[string]any{"type": "m.login.dummy", "session": session}})
	wantResp(t, "register with dummy auth", status, out, 200, "")
	if out["user_id"] != "@alice:test.local" || out["access_token"] == nil || out["device_id"] == nil {
		t.Fatalf("register answer %v", out)
	}
	if _, ok := out["expires_in_ms"]; ok {
		t.Fatalf("expires_in_ms present: %v", out)
	}
	status, who := call(t, "GET", base+csV3+"/account/whoami", fmt.Sprint(out["access_token"]), nil)
	wantResp(t, "whoami", status, who, 200, "")
	if who["user_id"] != "@alice:test.local" || who["device_id"] != out["device_id"] || who["is_guest"] != false {
		t.Fatalf("whoami %v", who)
	}
}

func TestRegisterErrors(t *testing.T) {
	base := testServer(t)
	registerUser(t, base, "taken")
	dummy := map[string]any{"type": "m.login.dummy"}
	long := make([]byte, 73)
	for i := range long {
		long[i] = 'x'
	}
	cases := []struct {
		name    string
		query   string
		body    any
		status  int
		errcode string
	}{
		{"invalid username", "", map[string]any{"username": "bad name!", "auth": dummy}, 400, "M_INVALID_USERNAME"},
		{"invalid username before UIA", "", map[string]any{"username": "bad:name"}, 400, "M_INVALID_USERNAME"},
		{"username too long", "", map[string]any{"username": fmt.Sprintf("%0250d", 0), "auth": dummy}, 400, "M_INVALID_USERNAME"},
		{"taken", "", map[string]any{"username": "taken", "auth": dummy}, 400, "M_USER_IN_USE"},
		{"taken before UIA", "", map[string]any{"username": "taken"}, 400, "M_USER_IN_USE"},
		{"taken, other case", "", map[string]any{"username": "TAKEN", "auth": dummy}, 400, "M_USER_IN_USE"},
		{"guest", "?kind=guest", map[string]any{}, 403, "M_GUEST_ACCESS_FORBIDDEN"},
		{"bad kind", "?kind=robot", map[string]any{}, 400, "M_INVALID_PARAM"},
		{"not JSON", "", "{nope", 400, "M_NOT_JSON"},
		{"wrong field type", "", map[string]any{"username": 5}, 400, "M_BAD_JSON"},
		{"unsupported auth type", "", map[string]any{"username": "newbie", "auth": map[string]any{"type": "m.login.recaptcha"}}, 401, "M_UNRECOGNIZED"},
		{"password too long", "", map[string]any{"username": "newbie", "password": string(long), "auth": dummy}, 400, "M_INVALID_PARAM"},
		{"device name too long", "", map[string]any{"username": "newbie", "initial_device_display_name": string(long) + string(long), "auth": dummy}, 400, "M_TOO_LARGE"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, out := call(t, "POST", base+csV3+"/register"+tc.query, "", tc.body)
			wantResp(t, tc.name, status, out, tc.status, tc.errcode)
		})
	}
}

func TestRegisterOptions(t *testing.T) {
	base := testServer(t)
	dummy := map[string]any{"type": "m.login.dummy"}

	// Upper case is mapped to lower case.
	status, out := call(t, "POST", base+csV3+"/register", "", map[string]any{"username": "Bob", "password": "pw", "auth": dummy})
	wantResp(t, "register Bob", status, out, 200, "")
	if out["user_id"] != "@bob:test.local" {
		t.Fatalf("user_id %v", out["user_id"])
	}

	// No username: one is generated.
	status, out = call(t, "POST", base+csV3+"/register", "", map[string]any{"password": "pw", "auth": dummy})
	wantResp(t, "register without username", status, out, 200, "")
	if uid, _ := out["user_id"].(string); len(uid) < 3 || uid[0] != '@' {
		t.Fatalf("generated user_id %v", out["user_id"])
	}

	// device_id and initial_device_display_name are honoured.
	status, out = call(t, "POST", base+csV3+"/register", "", map[string]any{"username": "carol", "password": "pw",
		"device_id": "MYDEVICE", "initial_device_display_name": "Carol's phone", "auth": dummy})
	wantResp(t, "register with device", status, out, 200, "")
	if out["device_id"] != "MYDEVICE" {
		t.Fatalf("device_id %v", out["device_id"])
	}
	status, dev := call(t, "GET", base+csV3+"/devices/MYDEVICE", fmt.Sprint(out["access_token"]), nil)
	wantResp(t, "get device", status, dev, 200, "")
	if dev["display_name"] != "Carol's phone" {
		t.Fatalf("device %v", dev)
	}

	// inhibit_login: no token, no device.
	status, out = call(t, "POST", base+csV3+"/register", "", map[string]any{"username": "dave", "password": "pw",
		"inhibit_login": true, "auth": dummy})
	wantResp(t, "register inhibit_login", status, out, 200, "")
	if _, ok := out["access_token"]; ok {
		t.Fatalf("inhibit_login returned a token: %v", out)
	}
	if _, ok := out["device_id"]; ok {
		t.Fatalf("inhibit_login returned a device: %v", out)
	}
	mustLogin(t, base, "dave", "pw", "")

	// No password: the account exists but cannot log in with one.
	status, out = call(t, "POST", base+csV3+"/register", "", map[string]any{"username": "erin", "auth": dummy})
	wantResp(t, "register without password", status, out, 200, "")
	status, out = loginPW(t, base, "erin", "", "")
	wantResp(t, "login without password", status, out, 403, "M_FORBIDDEN")

	// The default display name is the localpart.
	status, out = call(t, "GET", base+csV3+"/profile/@carol:test.local/displayname", "", nil)
	wantResp(t, "displayname", status, out, 200, "")
	if out["displayname"] != "carol" {
		t.Fatalf("displayname %v", out)
	}
}

func TestRegisterDisabled(t *testing.T) {
	base := testServer(t, func(c *config.Config) { c.Registration.Enabled = false })
	status, out := call(t, "POST", base+csV3+"/register", "", map[string]any{"username": "alice", "auth": map[string]any{"type": "m.login.dummy"}})
	wantResp(t, "register", status, out, 403, "M_FORBIDDEN")
	status, out = call(t, "GET", base+csV3+"/register/available?username=alice", "", nil)
	wantResp(t, "available", status, out, 403, "M_FORBIDDEN")
}

func TestRegisterAvailable(t *testing.T) {
	base := testServer(t)
	registerUser(t, base, "taken")
	cases := []struct {
		name, query string
		status      int
		errcode     string
	}{
		{"free", "?username=free", 200, ""},
		{"taken", "?username=taken", 400, "M_USER_IN_USE"},
		{"invalid", "?username=no%20spaces", 400, "M_INVALID_USERNAME"},
		{"empty", "?username=", 400, "M_INVALID_USERNAME"},
		{"missing", "", 400, "M_MISSING_PARAM"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, out := call(t, "GET", base+csV3+"/register/available"+tc.query, "", nil)
			wantResp(t, tc.name, status, out, tc.status, tc.errcode)
			if tc.status == 200 && out["available"] != true {
				t.Fatalf("available %v", out)
			}
		})
	}
}

func TestLogin(t *testing.T) {
	base := testServer(t)
	registerUser(t, base, "alice")
	status, out := call(t, "GET", base+csV3+"/login", "", nil)
	wantResp(t, "login flows", status, out, 200, "")
	flows, _ := out["flows"].([]any)
	if len(flows) != 1 || flows[0].(map[string]any)["type"] != "m.login.password" {
		t.Fatalf("flows %v", out)
	}

	id := func(user string) map[string]any { return map[string]any{"type": "m.id.user", "user": user} }
	cases := []struct {
		name    string
		body    map[string]any
		status  int
		errcode string
	}{
		{"localpart", map[string]any{"type": "m.login.password", "identifier": id("alice"), "password": "pass-alice"}, 200, ""},
		{"full user ID", map[string]any{"type": "m.login.password", "identifier": id("@alice:test.local"), "password": "pass-alice"}, 200, ""},
		{"legacy user field", map[string]any{"type": "m.login.password", "user": "alice", "password": "pass-alice"}, 200, ""},
		{"upper case", map[string]any{"type": "m.login.password", "identifier": id("ALICE"), "password": "pass-alice"}, 200, ""},
		{"wrong password", map[string]any{"type": "m.login.password", "identifier": id("alice"), "password": "nope"}, 403, "M_FORBIDDEN"},
		{"unknown user", map[string]any{"type": "m.login.password", "identifier": id("nobody"), "password": "x"}, 403, "M_FORBIDDEN"},
		{"other server", map[string]any{"type": "m.login.password", "identifier": id("@alice:elsewhere"), "password": "pass-alice"}, 403, "M_FORBIDDEN"},
		{"third-party id", map[string]any{"type": "m.login.password", "identifier": map[string]any{"type": "m.id.thirdparty", "medium": "email", "address": "a@b.c"}, "password": "x"}, 403, "M_FORBIDDEN"},
		{"unknown login type", map[string]any{"type": "m.login.fingerprint", "identifier": id("alice")}, 400, "M_UNKNOWN"},
		{"unknown identifier type", map[string]any{"type": "m.login.password", "identifier": map[string]any{"type": "m.id.pigeon"}, "password": "x"}, 400, "M_UNKNOWN"},
		{"no identifier", map[string]any{"type": "m.login.password", "password": "x"}, 400, "M_MISSING_PARAM"},
		{"no password", map[string]any{"type": "m.login.password", "identifier": id("alice")}, 400, "M_MISSING_PARAM"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, out := call(t, "POST", base+csV3+"/login", "", tc.body)
			wantResp(t, tc.name, status, out, tc.status, tc.errcode)
			if tc.status == 200 {
				if out["user_id"] != "@alice:test.local" || out["access_token"] == nil || out["device_id"] == nil || out["home_server"] != "test.local" {
					t.Fatalf("login answer %v", out)
				}
			}
		})
	}
}

func TestLoginDeviceReuse(t *testing.T) {
	base := testServer(t)
	registerUser(t, base, "alice")
	tok1 := mustLogin(t, base, "alice", "pass-alice", "LAPTOP")
	tok2 := mustLogin(t, base, "alice", "pass-alice", "LAPTOP")
	status, out := call(t, "GET", base+csV3+"/account/whoami", tok1, nil)
	wantResp(t, "old token of the device", status, out, 401, "M_UNKNOWN_TOKEN")
	status, out = call(t, "GET", base+csV3+"/account/whoami", tok2, nil)
	wantResp(t, "new token of the device", status, out, 200, "")
	if out["device_id"] != "LAPTOP" {
		t.Fatalf("whoami %v", out)
	}
	status, out = call(t, "GET", base+csV3+"/devices", tok2, nil)
	wantResp(t, "devices", status, out, 200, "")
	n := 0
	for _, d := range out["devices"].([]any) {
		if d.(map[string]any)["device_id"] == "LAPTOP" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("LAPTOP listed %d times: %v", n, out)
	}
}

func TestLogoutAndWhoami(t *testing.T) {
	base := testServer(t)
	_, tokA := registerUser(t, base, "alice")
	tokB := mustLogin(t, base, "alice", "pass-alice", "")
	tokC := mustLogin(t, base, "alice", "pass-alice", "")

	status, out := call(t, "GET", base+csV3+"/account/whoami", "", nil)
	wantResp(t, "whoami without token", status, out, 401, "M_MISSING_TOKEN")
	status, out = call(t, "GET", base+csV3+"/account/whoami", "not-a-token", nil)
	wantResp(t, "whoami with bad token", status, out, 401, "M_UNKNOWN_TOKEN")

	status, out = call(t, "POST", base+csV3+"/logout", tokA, map[string]any{})
	wantResp(t, "logout", status, out, 200, "")
	status, out = call(t, "GET", base+csV3+"/account/whoami", tokA, nil)
	wantResp(t, "token after logout", status, out, 401, "M_UNKNOWN_TOKEN")
	status, out = call(t, "GET", base+csV3+"/account/whoami", tokB, nil)
	wantResp(t, "other token after logout", status, out, 200, "")

	status, out = call(t, "POST", base+csV3+"/logout/all", tokB, map[string]any{})
	wantResp(t, "logout/all", status, out, 200, "")
	for _, tok := range []string{tokB, tokC} {
		status, out = call(t, "GET", base+csV3+"/account/whoami", tok, nil)
		wantResp(t, "token after logout/all", status, out, 401, "M_UNKNOWN_TOKEN")
	}
	status, out = call(t, "POST", base+csV3+"/logout", tokB, map[string]any{})
	wantResp(t, "logout with revoked token", status, out, 401, "M_UNKNOWN_TOKEN")
}

func passwordAuth(user, password, session string) map[string]any {
	a := map[string]any{"type": "m.login.password", "password": password,
		"identifier": map[string]any{"type": "m.id.user", "user": user}}
	if session != "" {
		a["session"] = session
	}
	return a
}

func TestChangePassword(t *testing.T) {
	base := testServer(t)
	_, tok := registerUser(t, base, "alice")
	registerUser(t, base, "bob")
	other := mustLogin(t, base, "alice", "pass-alice", "OTHER")
	url := base + csV3 + "/account/password"

	status, out := call(t, "POST", url, "", map[string]any{"new_password": "new"})
	wantResp(t, "no token", status, out, 401, "M_MISSING_TOKEN")
	status, out = call(t, "POST", url, "bogus", map[string]any{"new_password": "new"})
	wantResp(t, "bad token", status, out, 401, "M_UNKNOWN_TOKEN")
	status, out = call(t, "POST", url, tok, map[string]any{})
	wantResp(t, "no new_password", status, out, 400, "M_MISSING_PARAM")

	status, out = call(t, "POST", url, tok, map[string]any{"new_password": "new"})
	session := wantUIA(t, "no auth", status, out, "m.login.password", "")
	status, out = call(t, "POST", url, tok, map[string]any{"new_password": "new", "auth": passwordAuth("alice", "wrong", session)})
	if s := wantUIA(t, "wrong password", status, out, "m.login.password", "M_FORBIDDEN"); s != session {
		t.Fatalf("session changed from %s to %s", session, s)
	}
	status, out = call(t, "POST", url, tok, map[string]any{"new_password": "new", "auth": passwordAuth("bob", "pass-bob", session)})
	wantResp(t, "another user's password", status, out, 403, "M_FORBIDDEN")
	status, out = call(t, "POST", url, tok, map[string]any{"new_password": "new", "auth": map[string]any{"type": "m.login.dummy", "session": session}})
	wantUIA(t, "dummy stage", status, out, "m.login.password", "M_UNRECOGNIZED")

	status, out = call(t, "POST", url, tok, map[string]any{"new_password": "new", "auth": passwordAuth("alice", "pass-alice", session)})
	wantResp(t, "change password", status, out, 200, "")

	// logout_devices defaults to true: the other device is gone, the
	// caller's stays.
	status, out = call(t, "GET", base+csV3+"/account/whoami", other, nil)
	wantResp(t, "other device after change", status, out, 401, "M_UNKNOWN_TOKEN")
	status, out = call(t, "GET", base+csV3+"/account/whoami", tok, nil)
	wantResp(t, "caller after change", status, out, 200, "")
	status, out = loginPW(t, base, "alice", "pass-alice", "")
	wantResp(t, "old password", status, out, 403, "M_FORBIDDEN")
	other = mustLogin(t, base, "alice", "new", "OTHER")

	// logout_devices false keeps the other devices.
	status, out = call(t, "POST", url, tok, map[string]any{"new_password": "newer", "logout_devices": false,
		"auth": passwordAuth("@alice:test.local", "new", "")})
	wantResp(t, "change without logout", status, out, 200, "")
	status, out = call(t, "GET", base+csV3+"/account/whoami", other, nil)
	wantResp(t, "other device kept", status, out, 200, "")
	mustLogin(t, base, "alice", "newer", "")
}

func TestDeactivate(t *testing.T) {
	base, api := testServerAPI(t)
	alice, tok := registerUser(t, base, "alice")
	other := mustLogin(t, base, "alice", "pass-alice", "")
	roomID, err := api.rooms.CreateRoom(t.Context(), rooms.CreateRoomRequest{Creator: alice})
	if err != nil {
		t.Fatal(err)
	}
	url := base + csV3 + "/account/deactivate"

	status, out := call(t, "POST", url, "", map[string]any{})
	wantResp(t, "no token", status, out, 401, "M_MISSING_TOKEN")
	status, out = call(t, "POST", url, tok, map[string]any{})
	session := wantUIA(t, "no auth", status, out, "m.login.password", "")
	status, out = call(t, "POST", url, tok, map[string]any{"auth": passwordAuth("alice", "wrong", session)})
	wantUIA(t, "wrong password", status, out, "m.login.password", "M_FORBIDDEN")
	status, out = call(t, "POST", url, tok, map[string]any{"auth": passwordAuth("alice", "pass-alice", session)})
	wantResp(t, "deactivate", status, out, 200, "")
	if out["id_server_unbind_result"] != "success" {
		t.Fatalf("answer %v", out)
	}

	for _, tk := range []string{tok, other} {
		status, out = call(t, "GET", base+csV3+"/account/whoami", tk, nil)
		wantResp(t, "token after deactivation", status, out, 401, "M_UNKNOWN_TOKEN")
	}
	status, out = loginPW(t, base, "alice", "pass-alice", "")
	wantResp(t, "login after deactivation", status, out, 403, "M_USER_DEACTIVATED")
	status, out = loginPW(t, base, "alice", "wrong", "")
	wantResp(t, "wrong password after deactivation", status, out, 403, "M_FORBIDDEN")
	status, out = call(t, "GET", base+csV3+"/register/available?username=alice", "", nil)
	wantResp(t, "name stays taken", status, out, 400, "M_USER_IN_USE")

	m := api.userRoomIDs(alice, "join")
	if len(m) != 0 {
		t.Fatalf("still joined to %v", m)
	}
	if left := api.userRoomIDs(alice, "leave"); len(left) != 1 || left[0] != roomID {
		t.Fatalf("left rooms %v, want [%s]", left, roomID)
	}
}
