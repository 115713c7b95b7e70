package clientapi

import (
	"net/url"
	"testing"
)

func TestAccountDataHTTP(t *testing.T) {
	base, api := testServerAPI(t)
	alice, aliceTok := registerUser(t, base, "alice")
	bob, bobTok := registerUser(t, base, "bob")
	v3 := base + "/_matrix/client/v3"
	global := func(user, typ string) string { return v3 + "/user/" + url.PathEscape(user) + "/account_data/" + typ }

	s, out := call(t, "PUT", global(alice, "org.example.cfg"), aliceTok, map[string]any{"k": "v"})
	wantOK(t, "put global", s, out)
	s, out = call(t, "GET", global(alice, "org.example.cfg"), aliceTok, nil)
	if s != 200 || out["k"] != "v" {
		t.Fatalf("get global: %d %v", s, out)
	}
	s, out = call(t, "GET", global(alice, "org.example.none"), aliceTok, nil)
	wantErr(t, "get absent", s, out, 404, "M_NOT_FOUND")
	s, out = call(t, "GET", global(alice, "org.example.cfg"), bobTok, nil)
	wantErr(t, "get other's", s, out, 403, "M_FORBIDDEN")
	s, out = call(t, "PUT", global(alice, "org.example.cfg"), bobTok, map[string]any{})
	wantErr(t, "put other's", s, out, 403, "M_FORBIDDEN")
	for _, typ := range []string{"m.fully_read", "m.push_rules"} {
		s, out = call(t, "PUT", global(alice, typ), aliceTok, map[string]any{})
		wantErr(t, "put "+typ, s, out, 405, "M_BAD_JSON")
	}
	s, out = call(t, "PUT", global(alice, "org.example.cfg"), aliceTok, "[1,2]")
	wantErr(t, "put array", s, out, 400, "M_BAD_JSON")
	s, out = call(t, "PUT", global(alice, "org.example.cfg"), aliceTok, "{nope")
	wantErr(t, "put non-JSON", s, out, 400, "M_NOT_JSON")

	roomID, _ := udRoom(t, api, alice)
	roomURL := func(user, room, typ string) string {
		return v3 + "/user/" + url.PathEscape(user) + "/rooms/" + url.PathEscape(room) + "/account_data/" + typ
	}
	s, out = call(t, "PUT", roomURL(alice, roomID, "m.tag"), aliceTok, map[string]any{"tags": map[string]any{"u.work": map[string]any{}}})
	wantOK(t, "put room", s, out)
	s, out = call(t, "GET", roomURL(alice, roomID, "m.tag"), aliceTok, nil)
	if s != 200 || out["tags"] == nil {
		t.Fatalf("get room: %d %v", s, out)
	}
	s, out = call(t, "GET", global(alice, "m.tag"), aliceTok, nil)
	wantErr(t, "room data read globally", s, out, 404, "M_NOT_FOUND")
	s, out = call(t, "GET", roomURL(alice, "not-a-room", "m.tag"), aliceTok, nil)
	wantErr(t, "get bad room id", s, out, 400, "M_INVALID_PARAM")
	s, out = call(t, "PUT", roomURL(alice, "not-a-room", "m.tag"), aliceTok, map[string]any{})
	wantErr(t, "put bad room id", s, out, 400, "M_INVALID_PARAM")
	s, out = call(t, "PUT", roomURL(alice, "!unknown:test.local", "m.tag"), aliceTok, map[string]any{})
	wantErr(t, "put unknown room", s, out, 404, "M_NOT_FOUND")
	s, out = call(t, "PUT", roomURL(bob, roomID, "m.tag"), bobTok, map[string]any{})
	wantErr(t, "put room not in", s, out, 403, "M_FORBIDDEN")
	s, out = call(t, "PUT", roomURL(alice, roomID, "m.fully_read"), aliceTok, map[string]any{"event_id": "$x"})
	wantErr(t, "put room m.fully_read", s, out, 405, "M_BAD_JSON")
	s, out = call(t, "GET", roomURL(alice, roomID, "m.tag"), bobTok, nil)
	wantErr(t, "get room other's", s, out, 403, "M_FORBIDDEN")
}
