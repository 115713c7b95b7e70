package clientapi

import (
	"fmt"
	"net/url"
	"testing"
)

// The cached counts follow new messages, a moved read receipt and a push
// rule change exactly as a fresh computation would.
func TestUnreadCountsStayExactAcrossSyncs(t *testing.T) {
	base := testServer(t)
	_, alice := registerUser(t, base, "ucalice")
	_, btok := registerUser(t, base, "ucbob")
	_, out := call(t, "POST", base+"/_matrix/client/v3/createRoom", alice, map[string]any{"preset": "public_chat"})
	roomID := out["room_id"].(string)
	room := url.PathEscape(roomID)
	if st, out := call(t, "POST", base+"/_matrix/client/v3/rooms/"+room+"/join", btok, map[string]any{}); st != 200 {
		t.Fatalf("join: %d %v", st, out)
	}
	var events []string
	send := func(n int) {
		for i := 0; i < n; i++ {
			_, out := call(t, "PUT", fmt.Sprintf("%s/_matrix/client/v3/rooms/%s/send/m.room.message/m%d", base, room, len(events)), alice,
				map[string]any{"msgtype": "m.text", "body": "hello"})
			events = append(events, out["event_id"].(string))
		}
	}
	since := ""
	count := func() float64 {
		t.Helper()
		path := base + "/_matrix/client/v3/sync?timeout=0"
		if since != "" {
			path += "&since=" + url.QueryEscape(since)
		}
		st, out := call(t, "GET", path, btok, nil)
		if st != 200 {
			t.Fatalf("sync: %d %v", st, out)
		}
		since = out["next_batch"].(string)
		jr, _ := out["rooms"].(map[string]any)["join"].(map[string]any)[roomID].(map[string]any)
		un, _ := jr["unread_notifications"].(map[string]any)
		n, _ := un["notification_count"].(float64)
		return n
	}
	send(3)
	if got := count(); got != 3 {
		t.Fatalf("after 3 messages: %v unread, want 3", got)
	}
	send(2)
	if got := count(); got != 5 {
		t.Fatalf("after 5 messages: %v unread, want 5", got)
	}
	if st, out := call(t, "POST", base+"/_matrix/client/v3/rooms/"+room+"/receipt/m.read/"+url.PathEscape(events[3]), btok, map[string]any{}); st != 200 {
		t.Fatalf("receipt: %d %v", st, out)
	}
	if got := count(); got != 1 {
		t.Fatalf("after reading up to the 4th: %v unread, want 1", got)
	}
	// A room rule that stops notifications changes the counts at once.
	rule := base + "/_matrix/client/v3/pushrules/global/room/" + room
	if st, out := call(t, "PUT", rule, btok, map[string]any{"actions": []any{}}); st != 200 {
		t.Fatalf("push rule: %d %v", st, out)
	}
	send(1)
	if got := count(); got != 0 {
		t.Fatalf("with notifications off: %v unread, want 0", got)
	}
}
