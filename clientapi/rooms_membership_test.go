package clientapi

import (
	"net/http"
	"net/url"
	"slices"
	"testing"
)

func TestJoinByAliasAndID(t *testing.T) {
	base := testServer(t)
	alice := newRMUser(t, base, "alice")
	bob := newRMUser(t, base, "bob")
	pub := alice.createRoom(map[string]any{"preset": "public_chat", "room_alias_name": "lobby"})
	priv := alice.createRoom(map[string]any{"preset": "private_chat"})

	out := bob.ok("join by alias", "POST", "/join/"+url.PathEscape("#lobby:test.local"), map[string]any{"reason": "hi"})
	if out["room_id"] != pub {
		t.Fatalf("join by alias answered %v, want room_id %s", out, pub)
	}
	if m := alice.ok("bob's member event", "GET", roomPath(pub, "/state/m.room.member/"+url.PathEscape(bob.id)), nil); m["membership"] != "join" || m["reason"] != "hi" {
		t.Fatalf("bob's membership after join: %v", m)
	}
	memberEvent := roomPath(pub, "/state/m.room.member/"+url.PathEscape(bob.id)+"?format=event")
	firstJoin := alice.ok("join event", "GET", memberEvent, nil)["event_id"]
	out = bob.ok("join by ID again", "POST", roomPath(pub, "/join"), map[string]any{"reason": "hi"})
	if out["room_id"] != pub {
		t.Fatalf("join by room ID answered %v", out)
	}
	if again := alice.ok("join event", "GET", memberEvent, nil)["event_id"]; again != firstJoin {
		t.Fatalf("an identical second join made a new event: %v then %v", firstJoin, again)
	}
	bob.ok("join without the reason", "POST", roomPath(pub, "/join"), nil)
	if again := alice.ok("join event", "GET", memberEvent, nil)["event_id"]; again == firstJoin {
		t.Fatalf("a join with different content should make a new event")
	}
	errs := []struct {
		name, path string
		status     int
		errcode    string
	}{
		{"unknown alias", "/join/" + url.PathEscape("#nowhere:test.local"), 404, "M_NOT_FOUND"},
		{"invalid alias", "/join/" + url.PathEscape("#nocolon"), 400, "M_INVALID_PARAM"},
		{"unknown room", "/join/" + url.PathEscape("!nope:test.local"), 404, "M_NOT_FOUND"},
		{"unknown room by ID", roomPath("!nope:test.local", "/join"), 404, "M_NOT_FOUND"},
		{"not a room ID", "/join/garbage", 400, "M_INVALID_PARAM"},
		{"invite-only room", roomPath(priv, "/join"), 403, "M_FORBIDDEN"},
	}
	for _, e := range errs {
		bob.expect(e.name, "POST", e.path, map[string]any{}, e.status, e.errcode)
	}
	joined := bob.ok("joined_rooms", "GET", "/joined_rooms", nil)["joined_rooms"].([]any)
	if len(joined) != 1 || joined[0] != pub {
		t.Fatalf("joined_rooms = %v, want [%s]", joined, pub)
	}
}

func TestMembershipActions(t *testing.T) {
	base := testServer(t)
	alice := newRMUser(t, base, "alice")
	bob := newRMUser(t, base, "bob")
	carol := newRMUser(t, base, "carol")
	room := alice.createRoom(map[string]any{"preset": "private_chat"})
	path := func(action string) string { return roomPath(room, "/"+action) }
	target := func(u *rmUser) map[string]any { return map[string]any{"user_id": u.id, "reason": "because"} }

	steps := []struct {
		name    string
		actor   *rmUser
		action  string
		body    any
		status  int
		errcode string
		bobIs   string // bob's membership afterwards, when set
	}{
		{"invite without user_id", alice, "invite", map[string]any{}, 400, "M_BAD_JSON", ""},
		{"invite bad user_id", alice, "invite", map[string]any{"user_id": "bob"}, 400, "M_INVALID_PARAM", ""},
		{"invite by non-member", bob, "invite", target(carol), 403, "M_FORBIDDEN", ""},
		{"invite", alice, "invite", target(bob), 200, "", "invite"},
		{"invite again is fine", alice, "invite", target(bob), 200, "", "invite"},
		{"reject invite", bob, "leave", map[string]any{}, 200, "", "leave"},
		{"leave twice is a no-op", bob, "leave", map[string]any{}, 200, "", "leave"},
		{"leave with another reason", bob, "leave", map[string]any{"reason": "x"}, 403, "M_FORBIDDEN", "leave"},
		{"re-invite", alice, "invite", target(bob), 200, "", "invite"},
		{"accept", bob, "join", map[string]any{}, 200, "", "join"},
		{"forget while joined", bob, "forget", nil, 400, "M_UNKNOWN", "join"},
		{"kick someone not in room", alice, "kick", target(carol), 403, "M_FORBIDDEN", "join"},
		{"kick without power", bob, "kick", target(alice), 403, "M_FORBIDDEN", "join"},
		{"kick without user_id", alice, "kick", map[string]any{}, 400, "M_BAD_JSON", "join"},
		{"kick", alice, "kick", target(bob), 200, "", "leave"},
		{"rejoin after kick", bob, "join", map[string]any{}, 403, "M_FORBIDDEN", "leave"},
		{"ban without power", bob, "ban", target(carol), 403, "M_FORBIDDEN", "leave"},
		{"ban", alice, "ban", target(bob), 200, "", "ban"},
		{"invite banned", alice, "invite", target(bob), 403, "M_FORBIDDEN", "ban"},
		{"join banned", bob, "join", map[string]any{}, 403, "M_FORBIDDEN", "ban"},
		{"unban someone not banned", alice, "unban", target(carol), 403, "M_BAD_STATE", "ban"},
		{"unban", alice, "unban", target(bob), 200, "", "leave"},
		{"forget", bob, "forget", nil, 200, "", ""},
	}
	for _, s := range steps {
		s.actor.expect(s.name, "POST", path(s.action), s.body, s.status, s.errcode)
		if s.bobIs != "" {
			if got := alice.membership(room, bob.id); got != s.bobIs {
				t.Fatalf("after %s: bob is %s, want %s", s.name, got, s.bobIs)
			}
		}
	}
	if m := alice.ok("bob after unban", "GET", roomPath(room, "/state/m.room.member/"+url.PathEscape(bob.id)), nil); m["membership"] != "leave" {
		t.Fatalf("after unban: %v", m)
	}
	// A forgotten room's history is gone for bob; forgetting twice is fine.
	bob.expect("state after forget", "GET", roomPath(room, "/state"), nil, 403, "M_FORBIDDEN")
	bob.expect("messages after forget", "GET", roomPath(room, "/messages?dir=b"), nil, 403, "M_FORBIDDEN")
	bob.ok("forget again", "POST", path("forget"), nil)
	carol.ok("forget a room never joined", "POST", path("forget"), nil)
	if rooms := bob.ok("joined_rooms", "GET", "/joined_rooms", nil)["joined_rooms"].([]any); len(rooms) != 0 {
		t.Fatalf("bob's joined_rooms = %v", rooms)
	}
	rooms := alice.ok("joined_rooms", "GET", "/joined_rooms", nil)["joined_rooms"].([]any)
	if !slices.Contains(rooms, any(room)) {
		t.Fatalf("alice's joined_rooms = %v", rooms)
	}
	alice.expect("leave unknown room", "POST", roomPath("!nope:test.local", "/leave"), nil, http.StatusForbidden, "M_FORBIDDEN")
}
