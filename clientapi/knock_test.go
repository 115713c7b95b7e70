package clientapi

import (
	"net/url"
	"testing"
)

func TestKnock(t *testing.T) {
	base := testServer(t)
	alice := newRMUser(t, base, "alice")
	bob := newRMUser(t, base, "bob")
	carol := newRMUser(t, base, "carol")
	knockRule := []any{map[string]any{"type": "m.room.join_rules", "content": map[string]any{"join_rule": "knock"}}}
	room := alice.createRoom(map[string]any{"preset": "private_chat", "initial_state": knockRule})

	out := bob.ok("knock by ID", "POST", "/knock/"+url.PathEscape(room), map[string]any{"reason": "let me in"})
	if out["room_id"] != room {
		t.Fatalf("knock answer: %v", out)
	}
	member := alice.ok("knock event", "GET", roomPath(room, "/state/m.room.member/"+url.PathEscape(bob.id)), nil)
	if member["membership"] != "knock" || member["reason"] != "let me in" {
		t.Fatalf("bob's member event: %v", member)
	}
	bob.ok("knock again", "POST", "/knock/"+url.PathEscape(room), map[string]any{"reason": "let me in"})

	aliased := alice.createRoom(map[string]any{"preset": "private_chat", "initial_state": knockRule, "room_alias_name": "knocky"})
	out = carol.ok("knock by alias", "POST", "/knock/"+url.PathEscape("#knocky:test.local"), map[string]any{})
	if out["room_id"] != aliased {
		t.Fatalf("knock by alias answer: %v, want %s", out, aliased)
	}
	if got := alice.membership(aliased, carol.id); got != "knock" {
		t.Fatalf("carol's membership %s", got)
	}

	public := alice.createRoom(map[string]any{"preset": "public_chat"})
	bob.expect("public room", "POST", "/knock/"+url.PathEscape(public), map[string]any{}, 403, "M_FORBIDDEN")
	alice.expect("already joined", "POST", "/knock/"+url.PathEscape(room), map[string]any{}, 403, "M_FORBIDDEN")
	bob.expect("unknown room", "POST", "/knock/"+url.PathEscape("!nope:test.local"), map[string]any{}, 404, "M_NOT_FOUND")
	bob.expect("unknown alias", "POST", "/knock/"+url.PathEscape("#nope:test.local"), map[string]any{}, 404, "M_NOT_FOUND")
	bob.expect("not a room", "POST", "/knock/nonsense", map[string]any{}, 400, "M_INVALID_PARAM")
	bob.expect("not JSON", "POST", "/knock/"+url.PathEscape(room), "{", 400, "M_NOT_JSON")
}
