package clientapi

import (
	"encoding/json"
	"fmt"
	"net/url"
	"testing"

	"github.com/ganglion/ganglion/rooms"
)

func notificationsOf(t *testing.T, base, tok, query string) (list []map[string]any, nextToken any) {
	t.Helper()
	status, out := call(t, "GET", base+"/_matrix/client/v3/notifications"+query, tok, nil)
	wantOK(t, "GET /notifications"+query, status, out)
	raw, ok := out["notifications"].([]any)
	if !ok {
		t.Fatalf("notifications = %v", out)
	}
	for _, n := range raw {
		list = append(list, n.(map[string]any))
	}
	return list, out["next_token"]
}

func TestNotifications(t *testing.T) {
	base, api := testServerAPI(t)
	alice, aliceTok := registerUser(t, base, "no_alice")
	bob, _ := registerUser(t, base, "no_bob")
	carol, _ := registerUser(t, base, "no_carol")
	roomID, firstID := udRoom(t, api, bob, alice, carol) // bob says "hi" after alice joins
	send := func(content string) string {
		t.Helper()
		id, err := api.rooms.Send(t.Context(), rooms.SendRequest{RoomID: roomID, EventSpec: rooms.EventSpec{
			Type: "m.room.message", Sender: bob, Content: json.RawMessage(content)}})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	mentionID := send(fmt.Sprintf(`{"msgtype":"m.text","body":"hey alice","m.mentions":{"user_ids":[%q]}}`, alice))
	send(`{"msgtype":"m.notice","body":"bot noise"}`)
	lastID := send(`{"msgtype":"m.text","body":"third"}`)

	list, next := notificationsOf(t, base, aliceTok, "")
	if len(list) != 3 || next != nil {
		t.Fatalf("notifications = %v (next %v)", list, next)
	}
	first := list[0]
	ev, _ := first["event"].(map[string]any)
	if ev["event_id"] != lastID || ev["room_id"] != nil || first["room_id"] != roomID || first["read"] != false {
		t.Fatalf("newest = %v", first)
	}
	if _, ok := first["profile_tag"]; !ok || first["ts"] == nil || fmt.Sprint(first["actions"]) != "[notify]" {
		t.Fatalf("notification keys = %v", first)
	}
	if list[1]["event"].(map[string]any)["event_id"] != mentionID || list[2]["event"].(map[string]any)["event_id"] != firstID {
		t.Fatalf("order = %v", list)
	}

	// only=highlight keeps the mention.
	list, _ = notificationsOf(t, base, aliceTok, "?only=highlight")
	if len(list) != 1 || list[0]["event"].(map[string]any)["event_id"] != mentionID {
		t.Fatalf("highlights = %v", list)
	}

	// Pagination: limit=2 gives a next_token leading to the rest.
	list, next = notificationsOf(t, base, aliceTok, "?limit=2")
	if len(list) != 2 || next == nil {
		t.Fatalf("page 1 = %v next %v", list, next)
	}
	list, next = notificationsOf(t, base, aliceTok, "?limit=2&from="+url.QueryEscape(fmt.Sprint(next)))
	if len(list) != 1 || next != nil || list[0]["event"].(map[string]any)["event_id"] != firstID {
		t.Fatalf("page 2 = %v next %v", list, next)
	}

	// A read receipt clears what it covers; a private one on the main
	// timeline too.
	status, out := call(t, "POST", base+"/_matrix/client/v3/rooms/"+url.PathEscape(roomID)+"/receipt/m.read/"+url.PathEscape(mentionID), aliceTok, map[string]any{})
	wantOK(t, "receipt", status, out)
	if list, _ = notificationsOf(t, base, aliceTok, ""); len(list) != 1 || list[0]["event"].(map[string]any)["event_id"] != lastID {
		t.Fatalf("after receipt = %v", list)
	}
	status, out = call(t, "POST", base+"/_matrix/client/v3/rooms/"+url.PathEscape(roomID)+"/receipt/m.read.private/"+url.PathEscape(lastID), aliceTok, map[string]any{"thread_id": "main"})
	wantOK(t, "receipt", status, out)
	if list, _ = notificationsOf(t, base, aliceTok, ""); len(list) != 0 {
		t.Fatalf("after full receipt = %v", list)
	}

	// The user's own rules apply: a room rule with no actions silences it.
	status, out = call(t, "PUT", pushRuleURL(base, "room", roomID), aliceTok, map[string]any{"actions": []any{}})
	wantOK(t, "room rule", status, out)
	send(`{"msgtype":"m.text","body":"muted"}`)
	if list, _ = notificationsOf(t, base, aliceTok, ""); len(list) != 0 {
		t.Fatalf("muted room notified: %v", list)
	}

	for _, q := range []string{"?limit=x", "?from=abc", "?limit=-1"} {
		status, out := call(t, "GET", base+"/_matrix/client/v3/notifications"+q, aliceTok, nil)
		wantErr(t, q, status, out, 400, "M_INVALID_PARAM")
	}
}
