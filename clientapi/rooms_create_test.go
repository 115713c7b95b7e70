package clientapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// Helpers shared by the room endpoint tests.

const rmPrefix = "/_matrix/client/v3"

// rmUser is a registered user driving the API over HTTP.
type rmUser struct {
	t     *testing.T
	base  string
	id    string
	token string
}

func newRMUser(t *testing.T, base, localpart string) *rmUser {
	t.Helper()
	id, tok := registerUser(t, base, localpart)
	return &rmUser{t: t, base: base, id: id, token: tok}
}

// raw sends a request and returns the status and the undecoded body (for
// endpoints that answer with a JSON array).
func (u *rmUser) raw(method, path string, body any) (int, []byte) {
	u.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		data, _ := json.Marshal(b)
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, u.base+rmPrefix+path, rd)
	if err != nil {
		u.t.Fatal(err)
	}
	if u.token != "" {
		req.Header.Set("Authorization", "Bearer "+u.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		u.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, data
}

// expect calls the API and checks the status and, for errors, the errcode.
func (u *rmUser) expect(what, method, path string, body any, status int, errcode string) map[string]any {
	u.t.Helper()
	got, out := call(u.t, method, u.base+rmPrefix+path, u.token, body)
	if got != status {
		u.t.Fatalf("%s: %s %s: status %d, want %d (%v)", what, method, path, got, status, out)
	}
	if errcode != "" && out["errcode"] != errcode {
		u.t.Fatalf("%s: errcode %v, want %s (%v)", what, out["errcode"], errcode, out)
	}
	return out
}

func (u *rmUser) ok(what, method, path string, body any) map[string]any {
	u.t.Helper()
	return u.expect(what, method, path, body, http.StatusOK, "")
}

func (u *rmUser) createRoom(body map[string]any) string {
	u.t.Helper()
	out := u.ok("createRoom", "POST", "/createRoom", body)
	roomID, _ := out["room_id"].(string)
	if !strings.HasPrefix(roomID, "!") {
		u.t.Fatalf("createRoom: room_id %v", out)
	}
	return roomID
}

func (u *rmUser) sendText(roomID, txn, body string) string {
	u.t.Helper()
	out := u.ok("send", "PUT", roomPath(roomID, "/send/m.room.message/"+txn), map[string]any{"msgtype": "m.text", "body": body})
	return fmt.Sprint(out["event_id"])
}

func (u *rmUser) membership(roomID, userID string) string {
	u.t.Helper()
	out := u.ok("member state", "GET", roomPath(roomID, "/state/m.room.member/"+url.PathEscape(userID)), nil)
	return fmt.Sprint(out["membership"])
}

func roomPath(roomID, rest string) string { return "/rooms/" + url.PathEscape(roomID) + rest }

func TestCreateRoomOptions(t *testing.T) {
	base := testServer(t)
	alice := newRMUser(t, base, "alice")
	bob := newRMUser(t, base, "bob")

	roomID := alice.createRoom(map[string]any{
		"preset": "public_chat", "name": "The Pub", "topic": "happy hour",
		"room_alias_name": "pub", "invite": []string{bob.id}, "is_direct": true,
		"initial_state": []any{map[string]any{"type": "m.custom", "state_key": "k", "content": map[string]any{"a": 1}}},
	})
	state := []struct{ path, field, want string }{
		{"/state/m.room.name", "name", "The Pub"},
		{"/state/m.room.topic", "topic", "happy hour"},
		{"/state/m.room.join_rules", "join_rule", "public"},
		{"/state/m.room.guest_access", "guest_access", "forbidden"},
		{"/state/m.room.history_visibility", "history_visibility", "shared"},
		{"/state/m.room.canonical_alias", "alias", "#pub:test.local"},
		{"/state/m.room.member/" + url.PathEscape(bob.id), "membership", "invite"},
		{"/state/m.room.member/" + url.PathEscape(bob.id), "is_direct", "true"},
		{"/state/m.custom/k", "a", "1"},
	}
	for _, s := range state {
		out := alice.ok("state", "GET", roomPath(roomID, s.path), nil)
		if fmt.Sprint(out[s.field]) != s.want {
			t.Errorf("%s %s = %v, want %s", s.path, s.field, out[s.field], s.want)
		}
	}
	out := alice.ok("alias", "GET", "/directory/room/"+url.PathEscape("#pub:test.local"), nil)
	if out["room_id"] != roomID {
		t.Errorf("alias resolves to %v, want %s", out["room_id"], roomID)
	}

	private := alice.createRoom(map[string]any{"visibility": "public", "preset": "private_chat", "name": ""})
	if jr := alice.ok("join rules", "GET", roomPath(private, "/state/m.room.join_rules"), nil); jr["join_rule"] != "invite" {
		t.Errorf("private_chat join_rule = %v", jr["join_rule"])
	}
	if n := alice.ok("empty name", "GET", roomPath(private, "/state/m.room.name"), nil); n["name"] != "" {
		t.Errorf("an empty name still sets m.room.name: %v", n)
	}
	if v := alice.ok("visibility", "GET", "/directory/list/room/"+url.PathEscape(private), nil); v["visibility"] != "public" {
		t.Errorf("visibility public publishes the room: %v", v)
	}
	alice.expect("no topic", "GET", roomPath(private, "/state/m.room.topic"), nil, http.StatusNotFound, "M_NOT_FOUND")
	for _, ver := range []string{"10", "11", "12"} {
		r := alice.createRoom(map[string]any{"room_version": ver})
		if c := alice.ok("create", "GET", roomPath(r, "/state/m.room.create"), nil); c["room_version"] != ver {
			t.Errorf("room_version %s: create content %v", ver, c)
		}
	}
}

func TestCreateRoomErrors(t *testing.T) {
	base := testServer(t)
	alice := newRMUser(t, base, "alice")
	alice.createRoom(map[string]any{"room_alias_name": "taken"})
	cases := []struct {
		name    string
		body    any
		status  int
		errcode string
	}{
		{"alias with colon", map[string]any{"room_alias_name": "a:b"}, 400, "M_INVALID_PARAM"},
		{"alias with space", map[string]any{"room_alias_name": "a b"}, 400, "M_INVALID_PARAM"},
		{"alias too long", map[string]any{"room_alias_name": strings.Repeat("x", 250)}, 400, "M_INVALID_PARAM"},
		{"alias taken", map[string]any{"room_alias_name": "taken"}, 400, "M_ROOM_IN_USE"},
		{"invite not a user ID", map[string]any{"invite": []string{"bob"}}, 400, "M_INVALID_PARAM"},
		{"unsupported version", map[string]any{"room_version": "999"}, 400, "M_UNSUPPORTED_ROOM_VERSION"},
		{"bad visibility", map[string]any{"visibility": "secret"}, 400, "M_INVALID_PARAM"},
		{"bad preset", map[string]any{"preset": "party"}, 400, "M_INVALID_PARAM"},
		{"not JSON", "{nope", 400, "M_NOT_JSON"},
		{"name not a string", map[string]any{"name": 5}, 400, "M_BAD_JSON"},
		{"creation_content not an object", map[string]any{"creation_content": 5}, 400, "M_BAD_JSON"},
		{"power override not an object", map[string]any{"power_level_content_override": []int{1}}, 400, "M_BAD_JSON"},
		{"initial_state without type", map[string]any{"initial_state": []any{map[string]any{"content": map[string]any{}}}}, 400, "M_BAD_JSON"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u := *alice
			u.t = t
			u.expect(tc.name, "POST", "/createRoom", tc.body, tc.status, tc.errcode)
		})
	}
	anon := &rmUser{t: t, base: base}
	anon.expect("no token", "POST", "/createRoom", map[string]any{}, 401, "M_MISSING_TOKEN")
}
