package clientapi

import (
	"fmt"
	"net/url"
	"testing"
)

// Helpers for the later_* tests (upgrades, spaces, summaries and the
// small endpoints).

const laterV3 = "/_matrix/client/v3"

// laterCreateRoom creates a room and returns its ID.
func laterCreateRoom(t *testing.T, base, token string, body map[string]any) string {
	t.Helper()
	status, out := call(t, "POST", base+laterV3+"/createRoom", token, body)
	if status != 200 {
		t.Fatalf("createRoom %v: %d %v", body, status, out)
	}
	return fmt.Sprint(out["room_id"])
}

// laterRoomURL is base/_matrix/client/v3/rooms/{roomId} plus path parts.
func laterRoomURL(base, roomID string, parts ...string) string {
	u := base + laterV3 + "/rooms/" + url.PathEscape(roomID)
	for _, p := range parts {
		u += "/" + url.PathEscape(p)
	}
	return u
}

// laterState reads one state event's content.
func laterState(t *testing.T, base, token, roomID, evType, stateKey string) (int, map[string]any) {
	t.Helper()
	return call(t, "GET", laterRoomURL(base, roomID, "state", evType, stateKey), token, nil)
}

// laterMustState reads one state event's content, which must exist.
func laterMustState(t *testing.T, base, token, roomID, evType, stateKey string) map[string]any {
	t.Helper()
	status, out := laterState(t, base, token, roomID, evType, stateKey)
	if status != 200 {
		t.Fatalf("state %s/%q in %s: %d %v", evType, stateKey, roomID, status, out)
	}
	return out
}

// laterPutState sends a state event, which must succeed.
func laterPutState(t *testing.T, base, token, roomID, evType, stateKey string, content map[string]any) {
	t.Helper()
	status, out := call(t, "PUT", laterRoomURL(base, roomID, "state", evType, stateKey), token, content)
	if status != 200 {
		t.Fatalf("put state %s/%q in %s: %d %v", evType, stateKey, roomID, status, out)
	}
}

// laterDo makes a call that must answer 200.
func laterDo(t *testing.T, method, u, token string, body any) map[string]any {
	t.Helper()
	status, out := call(t, method, u, token, body)
	if status != 200 {
		t.Fatalf("%s %s: %d %v", method, u, status, out)
	}
	return out
}

// laterWantErr checks status and errcode of a call.
func laterWantErr(t *testing.T, method, u, token string, body any, status int, errcode string) {
	t.Helper()
	got, out := call(t, method, u, token, body)
	if got != status || out["errcode"] != errcode {
		t.Fatalf("%s %s: want %d %s, got %d %v", method, u, status, errcode, got, out)
	}
}
