package clientapi

import (
	"net/url"
	"strings"
	"testing"
)

func TestRoomTags(t *testing.T) {
	base := testServer(t)
	alice := newRMUser(t, base, "alice")
	bob := newRMUser(t, base, "bob")
	room := alice.createRoom(map[string]any{"preset": "private_chat"})
	tags := "/user/" + url.PathEscape(alice.id) + "/rooms/" + url.PathEscape(room) + "/tags"

	if out := alice.ok("no tags yet", "GET", tags, nil); len(syObj(out, "tags")) != 0 {
		t.Fatalf("fresh room has tags: %v", out)
	}
	alice.ok("put favourite", "PUT", tags+"/m.favourite", map[string]any{"order": 0.25})
	alice.ok("put work", "PUT", tags+"/u.work", map[string]any{})
	out := alice.ok("get tags", "GET", tags, nil)
	if syObj(out, "tags", "m.favourite")["order"] != 0.25 || syObj(out, "tags", "u.work") == nil {
		t.Fatalf("tags after put: %v", out)
	}

	// The tags reach /sync as the room's m.tag account data.
	sync := sySync(t, base, alice.token, "")
	var tagContent map[string]any
	for _, ev := range syList(sync, "rooms", "join", room, "account_data", "events") {
		if syObj(ev)["type"] == "m.tag" {
			tagContent = syObj(ev, "content")
		}
	}
	if syObj(tagContent, "tags", "u.work") == nil {
		t.Fatalf("sync room account_data lacks m.tag: %v", syObj(sync, "rooms", "join", room))
	}

	alice.ok("delete favourite", "DELETE", tags+"/m.favourite", nil)
	alice.ok("delete unset tag", "DELETE", tags+"/m.lowpriority", nil)
	out = alice.ok("get after delete", "GET", tags, nil)
	if _, still := syObj(out, "tags")["m.favourite"]; still || syObj(out, "tags", "u.work") == nil {
		t.Fatalf("tags after delete: %v", out)
	}

	bob.expect("get another user's tags", "GET", tags, nil, 403, "M_FORBIDDEN")
	bob.expect("put another user's tag", "PUT", tags+"/u.x", map[string]any{}, 403, "M_FORBIDDEN")
	bob.expect("delete another user's tag", "DELETE", tags+"/u.work", nil, 403, "M_FORBIDDEN")
	bobTags := "/user/" + url.PathEscape(bob.id) + "/rooms/" + url.PathEscape(room) + "/tags"
	bob.expect("tag a room bob is not in", "PUT", bobTags+"/u.x", map[string]any{}, 403, "M_FORBIDDEN")
	unknown := "/user/" + url.PathEscape(alice.id) + "/rooms/" + url.PathEscape("!nope:test.local") + "/tags"
	alice.expect("unknown room", "PUT", unknown+"/u.x", map[string]any{}, 404, "M_NOT_FOUND")
	alice.expect("order not a number", "PUT", tags+"/u.x", map[string]any{"order": "high"}, 400, "M_BAD_JSON")
	alice.expect("not JSON", "PUT", tags+"/u.x", "{", 400, "M_NOT_JSON")
	alice.expect("tag too long", "PUT", tags+"/"+strings.Repeat("t", 256), map[string]any{}, 400, "M_INVALID_PARAM")
}
