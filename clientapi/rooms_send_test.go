package clientapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// messageBodies lists the m.room.message bodies of a room, oldest first.
func messageBodies(u *rmUser, roomID string) []string {
	u.t.Helper()
	filter := url.QueryEscape(`{"types":["m.room.message"]}`)
	out := u.ok("messages", "GET", roomPath(roomID, "/messages?dir=f&limit=1000&filter="+filter), nil)
	var bodies []string
	for _, ev := range out["chunk"].([]any) {
		bodies = append(bodies, fmt.Sprint(ev.(map[string]any)["content"].(map[string]any)["body"]))
	}
	return bodies
}

func TestSendIdempotent(t *testing.T) {
	base := testServer(t)
	alice := newRMUser(t, base, "alice")
	bob := newRMUser(t, base, "bob")
	room := alice.createRoom(map[string]any{"preset": "public_chat"})
	room2 := alice.createRoom(map[string]any{"preset": "public_chat"})
	bob.ok("join", "POST", roomPath(room, "/join"), nil)

	first := alice.sendText(room, "txn1", "hello")
	if again := alice.sendText(room, "txn1", "hello"); again != first {
		t.Fatalf("retry returned %s, want %s", again, first)
	}
	// Concurrent retries still make one event.
	var wg sync.WaitGroup
	ids := make([]string, 5)
	sendURL := base + rmPrefix + roomPath(room, "/send/m.room.message/txn2")
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("PUT", sendURL, strings.NewReader(`{"msgtype":"m.text","body":"concurrent"}`))
			req.Header.Set("Authorization", "Bearer "+alice.token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return
			}
			defer resp.Body.Close()
			var out map[string]any
			_ = json.NewDecoder(resp.Body).Decode(&out)
			ids[i] = fmt.Sprint(out["event_id"])
		}()
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] || id[0] != '$' {
			t.Fatalf("concurrent retries returned different events: %v", ids)
		}
	}
	// The same txnId on another path (another room, or bob's) is a new request.
	if other := alice.sendText(room2, "txn1", "hello"); other == first {
		t.Fatalf("same txnId in another room returned the first event")
	}
	if bobs := bob.sendText(room, "txn1", "from bob"); bobs == first {
		t.Fatalf("bob's txnId collided with alice's")
	}
	if got := messageBodies(alice, room); fmt.Sprint(got) != "[hello concurrent from bob]" {
		t.Fatalf("room holds %v, want one of each", got)
	}
	own := alice.ok("own event", "GET", roomPath(room, "/event/"+url.PathEscape(first)), nil)
	if own["unsigned"].(map[string]any)["transaction_id"] != "txn1" {
		t.Errorf("sender's device should see transaction_id: %v", own)
	}
	seen := bob.ok("bob sees it", "GET", roomPath(room, "/event/"+url.PathEscape(first)), nil)
	if _, leaked := seen["unsigned"].(map[string]any)["transaction_id"]; leaked {
		t.Errorf("transaction_id leaked to another user: %v", seen)
	}

	outsider := newRMUser(t, base, "eve")
	errs := []struct {
		name    string
		user    *rmUser
		path    string
		body    any
		status  int
		errcode string
	}{
		{"array body", alice, "/send/m.room.message/e1", []int{1}, 400, "M_BAD_JSON"},
		{"not JSON", alice, "/send/m.room.message/e2", "{", 400, "M_NOT_JSON"},
		{"outsider", outsider, "/send/m.room.message/e3", map[string]any{"body": "x"}, 403, "M_FORBIDDEN"},
		{"redact without power", bob, "/redact/" + url.PathEscape(first) + "/r1", map[string]any{}, 403, "M_FORBIDDEN"},
		{"redact as outsider", outsider, "/redact/" + url.PathEscape(first) + "/r2", map[string]any{}, 403, "M_FORBIDDEN"},
	}
	for _, e := range errs {
		e.user.expect(e.name, "PUT", roomPath(room, e.path), e.body, e.status, e.errcode)
	}
}

func TestRedact(t *testing.T) {
	base := testServer(t)
	alice := newRMUser(t, base, "alice")
	bob := newRMUser(t, base, "bob")
	for _, ver := range []string{"10", "11", "12"} {
		t.Run("v"+ver, func(t *testing.T) {
			a, b := *alice, *bob
			a.t, b.t = t, t
			room := a.createRoom(map[string]any{"preset": "public_chat", "room_version": ver})
			b.ok("join", "POST", roomPath(room, "/join"), nil)
			mine := b.sendText(room, "m1", "oops")
			red := b.ok("redact own", "PUT", roomPath(room, "/redact/"+url.PathEscape(mine)+"/r1"), map[string]any{"reason": "typo"})
			again := b.ok("redact retry", "PUT", roomPath(room, "/redact/"+url.PathEscape(mine)+"/r1"), map[string]any{"reason": "typo"})
			if red["event_id"] != again["event_id"] {
				t.Fatalf("redact retry gave %v, want %v", again["event_id"], red["event_id"])
			}
			ev := a.ok("redacted event", "GET", roomPath(room, "/event/"+url.PathEscape(mine)), nil)
			if len(ev["content"].(map[string]any)) != 0 {
				t.Errorf("redacted content should be empty: %v", ev)
			}
			because, _ := ev["unsigned"].(map[string]any)["redacted_because"].(map[string]any)
			if because["event_id"] != red["event_id"] || because["redacts"] != mine {
				t.Errorf("redacted_because = %v", because)
			}
			// A moderator redacts through /send with content.redacts (every version).
			theirs := b.sendText(room, "m2", "spam")
			a.ok("redact via send", "PUT", roomPath(room, "/send/m.room.redaction/s1"), map[string]any{"redacts": theirs})
			ev = a.ok("redacted via send", "GET", roomPath(room, "/event/"+url.PathEscape(theirs)), nil)
			if len(ev["content"].(map[string]any)) != 0 {
				t.Errorf("content after redaction via send: %v", ev)
			}
		})
	}
}
