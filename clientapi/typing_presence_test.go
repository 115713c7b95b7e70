package clientapi

import (
	"net/url"
	"slices"
	"testing"
)

func TestTypingHTTP(t *testing.T) {
	base, api := testServerAPI(t)
	alice, aliceTok := registerUser(t, base, "alice")
	bob, bobTok := registerUser(t, base, "bob")
	roomID, _ := udRoom(t, api, alice)
	typingURL := func(user string) string {
		return base + "/_matrix/client/v3/rooms/" + url.PathEscape(roomID) + "/typing/" + url.PathEscape(user)
	}

	before := api.eph.Serial()
	s, out := call(t, "PUT", typingURL(alice), aliceTok, map[string]any{"typing": true, "timeout": 10000})
	wantOK(t, "typing on", s, out)
	if got := api.eph.Typing(roomID); !slices.Equal(got, []string{alice}) {
		t.Fatalf("typing = %v", got)
	}
	if !api.eph.TypingChangedSince(roomID, before) {
		t.Fatal("typing change not recorded")
	}
	s, out = call(t, "PUT", typingURL(alice), aliceTok, map[string]any{"typing": false})
	wantOK(t, "typing off", s, out)
	if got := api.eph.Typing(roomID); len(got) != 0 {
		t.Fatalf("typing after stop = %v", got)
	}

	s, out = call(t, "PUT", typingURL(alice), bobTok, map[string]any{"typing": true})
	wantErr(t, "other user", s, out, 403, "M_FORBIDDEN")
	s, out = call(t, "PUT", typingURL(bob), bobTok, map[string]any{"typing": true})
	wantErr(t, "not joined", s, out, 403, "M_FORBIDDEN")
	s, out = call(t, "PUT", typingURL(alice), aliceTok, map[string]any{"timeout": 1000})
	wantErr(t, "missing typing", s, out, 400, "M_BAD_JSON")
	s, out = call(t, "PUT", typingURL(alice), aliceTok, map[string]any{"typing": true, "timeout": "soon"})
	wantErr(t, "bad timeout", s, out, 400, "M_BAD_JSON")
}

func TestPresenceHTTP(t *testing.T) {
	base, api := testServerAPI(t)
	alice, aliceTok := registerUser(t, base, "alice")
	bob, bobTok := registerUser(t, base, "bob")
	_, carolTok := registerUser(t, base, "carol")
	status := func(user string) string {
		return base + "/_matrix/client/v3/presence/" + url.PathEscape(user) + "/status"
	}

	s, out := call(t, "GET", status(alice), aliceTok, nil)
	if s != 200 || out["presence"] != "offline" {
		t.Fatalf("initial presence: %d %v", s, out)
	}
	s, out = call(t, "PUT", status(alice), aliceTok, map[string]any{"presence": "online", "status_msg": "here"})
	wantOK(t, "put presence", s, out)
	s, out = call(t, "GET", status(alice), aliceTok, nil)
	if s != 200 || out["presence"] != "online" || out["status_msg"] != "here" || out["currently_active"] != true || out["last_active_ago"] == nil {
		t.Fatalf("own presence: %d %v", s, out)
	}
	if p, ok := api.eph.Presence(alice); !ok || p.StatusMsg != "here" {
		t.Fatalf("ephemeral presence = %+v %v", p, ok)
	}

	s, out = call(t, "PUT", status(alice), bobTok, map[string]any{"presence": "online"})
	wantErr(t, "put other's", s, out, 403, "M_FORBIDDEN")
	s, out = call(t, "PUT", status(alice), aliceTok, map[string]any{"presence": "busy"})
	wantErr(t, "bad state", s, out, 400, "M_INVALID_PARAM")
	s, out = call(t, "PUT", status(alice), aliceTok, map[string]any{"status_msg": "x"})
	wantErr(t, "missing state", s, out, 400, "M_BAD_JSON")
	s, out = call(t, "GET", status("@ghost:test.local"), aliceTok, nil)
	wantErr(t, "unknown user", s, out, 404, "M_NOT_FOUND")
	s, out = call(t, "GET", status(alice), carolTok, nil)
	wantErr(t, "no shared room", s, out, 403, "M_FORBIDDEN")

	udRoom(t, api, alice, bob)
	s, out = call(t, "GET", status(alice), bobTok, nil)
	if s != 200 || out["presence"] != "online" {
		t.Fatalf("presence via shared room: %d %v", s, out)
	}
}
