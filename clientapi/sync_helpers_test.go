package clientapi

import (
	"fmt"
	"net/url"
	"sync/atomic"
	"testing"
)

// Helpers for the /sync and legacy API tests (prefix sy).

var syTxn atomic.Int64

func syRoomURL(base, roomID, rest string) string {
	return base + "/_matrix/client/v3/rooms/" + url.PathEscape(roomID) + rest
}

func syCreateRoom(t *testing.T, base, tok string, body map[string]any) string {
	t.Helper()
	status, out := call(t, "POST", base+"/_matrix/client/v3/createRoom", tok, body)
	if status != 200 {
		t.Fatalf("createRoom: %d %v", status, out)
	}
	return fmt.Sprint(out["room_id"])
}

func sySend(t *testing.T, base, tok, roomID, body string) string {
	t.Helper()
	return sySendTxn(t, base, tok, roomID, body, fmt.Sprintf("sytxn%d", syTxn.Add(1)))
}

func sySendTxn(t *testing.T, base, tok, roomID, body, txn string) string {
	t.Helper()
	status, out := call(t, "PUT", syRoomURL(base, roomID, "/send/m.room.message/"+txn), tok,
		map[string]any{"msgtype": "m.text", "body": body})
	if status != 200 {
		t.Fatalf("send %q: %d %v", body, status, out)
	}
	return fmt.Sprint(out["event_id"])
}

func syMember(t *testing.T, base, tok, roomID, action string, body map[string]any) {
	t.Helper()
	if body == nil {
		body = map[string]any{}
	}
	status, out := call(t, "POST", syRoomURL(base, roomID, "/"+action), tok, body)
	if status != 200 {
		t.Fatalf("%s %s: %d %v", action, roomID, status, out)
	}
}

// sySync calls /sync with a raw query string and expects 200.
func sySync(t *testing.T, base, tok, query string) map[string]any {
	t.Helper()
	status, out := call(t, "GET", base+"/_matrix/client/v3/sync?"+query, tok, nil)
	if status != 200 {
		t.Fatalf("sync ?%s: %d %v", query, status, out)
	}
	if _, ok := out["next_batch"].(string); !ok {
		t.Fatalf("sync without next_batch: %v", out)
	}
	return out
}

func syObj(v any, path ...string) map[string]any {
	for _, p := range path {
		m, _ := v.(map[string]any)
		v = m[p]
	}
	m, _ := v.(map[string]any)
	return m
}

func syList(v any, path ...string) []any {
	if len(path) > 0 {
		v = syObj(v, path[:len(path)-1]...)[path[len(path)-1]]
	}
	l, _ := v.([]any)
	return l
}

// syJoined is rooms.join.{roomID} (nil when absent).
func syJoined(resp map[string]any, roomID string) map[string]any {
	return syObj(resp, "rooms", "join", roomID)
}

// syBodies lists content.body of the message events in a list.
func syBodies(events []any) []string {
	var out []string
	for _, e := range events {
		if b, ok := syObj(e, "content")["body"].(string); ok {
			out = append(out, b)
		}
	}
	return out
}

// syHas reports whether events hold one of this type and state key ("*": any).
func syHas(events []any, evType, stateKey string) bool {
	for _, e := range events {
		m, _ := e.(map[string]any)
		if m["type"] == evType && (stateKey == "*" || m["state_key"] == stateKey) {
			return true
		}
	}
	return false
}

func syEventIDs(events []any) map[string]bool {
	out := map[string]bool{}
	for _, e := range events {
		if id, ok := syObj(e)["event_id"].(string); ok {
			out[id] = true
		}
	}
	return out
}

func syQuery(kv ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v.Encode()
}
