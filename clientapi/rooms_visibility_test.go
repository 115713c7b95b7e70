package clientapi

import (
	"fmt"
	"net/url"
	"testing"
)

func TestHistoryVisibilityReads(t *testing.T) {
	base := testServer(t)
	alice := newRMUser(t, base, "alice")
	bob := newRMUser(t, base, "bob")
	carol := newRMUser(t, base, "carol")
	dave := newRMUser(t, base, "dave")

	// "joined": bob sees from his join to his leave, nothing else.
	joined := alice.createRoom(map[string]any{"preset": "public_chat", "initial_state": []any{
		map[string]any{"type": "m.room.history_visibility", "content": map[string]any{"history_visibility": "joined"}}}})
	before := alice.sendText(joined, "j1", "before bob")
	bob.ok("join", "POST", roomPath(joined, "/join"), nil)
	during := alice.sendText(joined, "j2", "while bob is here")
	bob.ok("leave", "POST", roomPath(joined, "/leave"), nil)
	after := alice.sendText(joined, "j3", "after bob")

	if got := messageBodies(bob, joined); fmt.Sprint(got) != "[while bob is here]" {
		t.Errorf("bob (joined visibility, left) sees %v", got)
	}
	_, back := pageAll(bob, joined, "b", "", "")
	if fmt.Sprint(back) != "[while bob is here]" {
		t.Errorf("bob paging back sees %v", back)
	}
	for _, c := range []struct {
		id     string
		status int
	}{{before, 404}, {during, 200}, {after, 404}} {
		errcode := ""
		if c.status == 404 {
			errcode = "M_NOT_FOUND"
		}
		bob.expect("event "+c.id, "GET", roomPath(joined, "/event/"+url.PathEscape(c.id)), nil, c.status, errcode)
	}
	if got := messageBodies(alice, joined); len(got) != 3 {
		t.Errorf("alice sees %v", got)
	}

	// "shared": a late joiner sees everything; a never-member gets 403.
	shared := alice.createRoom(map[string]any{"preset": "public_chat"})
	alice.sendText(shared, "s1", "early")
	carol.ok("join", "POST", roomPath(shared, "/join"), nil)
	if got := messageBodies(carol, shared); fmt.Sprint(got) != "[early]" {
		t.Errorf("carol (shared) sees %v", got)
	}
	dave.expect("never a member", "GET", roomPath(shared, "/messages?dir=b"), nil, 403, "M_FORBIDDEN")

	// "invited": visible from the invite on.
	invited := alice.createRoom(map[string]any{"preset": "private_chat", "initial_state": []any{
		map[string]any{"type": "m.room.history_visibility", "content": map[string]any{"history_visibility": "invited"}}}})
	alice.sendText(invited, "i1", "before invite")
	alice.ok("invite", "POST", roomPath(invited, "/invite"), map[string]any{"user_id": dave.id})
	alice.sendText(invited, "i2", "after invite")
	dave.ok("join", "POST", roomPath(invited, "/join"), nil)
	if got := messageBodies(dave, invited); fmt.Sprint(got) != "[after invite]" {
		t.Errorf("dave (invited visibility) sees %v", got)
	}

	// "world_readable": anyone may read.
	open := alice.createRoom(map[string]any{"preset": "public_chat", "initial_state": []any{
		map[string]any{"type": "m.room.history_visibility", "content": map[string]any{"history_visibility": "world_readable"}}}})
	alice.sendText(open, "w1", "hello world")
	if got := messageBodies(dave, open); fmt.Sprint(got) != "[hello world]" {
		t.Errorf("dave (world_readable, never joined) sees %v", got)
	}
}
