package federation

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/ganglion/ganglion/fsm"
	"github.com/ganglion/ganglion/rooms"
)

func TestQueries(t *testing.T) {
	r := newFedRoom(t)
	f, n := r.f, r.n
	ctx := t.Context()
	if _, _, err := n.node.Propose(ctx, fsm.OpAccountRegister, fsm.RegisterCmd{UserID: r.alice, DisplayName: "Alice",
		Device: &fsm.NewDevice{DeviceID: "ADEV", DisplayName: "phone", TokenHash: []byte("0123456789abcdef0123456789abcdef")}}); err != nil {
		t.Fatal(err)
	}
	keys := json.RawMessage(`{"user_id":"` + r.alice + `","device_id":"ADEV","algorithms":["m.olm.v1.curve25519-aes-sha2"],` +
		`"keys":{"ed25519:ADEV":"edkey","curve25519:ADEV":"cvkey"},"signatures":{}}`)
	if _, _, err := n.node.Propose(ctx, fsm.OpKeysUpload, fsm.KeysUpload{UserID: r.alice, DeviceID: "ADEV", DeviceKeys: keys}); err != nil {
		t.Fatal(err)
	}
	pub := mustCreateRoom(t, n.rs, rooms.CreateRoomRequest{Creator: r.alice, Preset: "public_chat", Visibility: "public",
		AliasLocalpart: "lobby", Name: "The Lobby", HasName: true})

	status, body := f.request(t, n, get, fedV1+"/query/directory?room_alias="+q("#lobby:"+n.name), nil)
	if status != http.StatusOK || body["room_id"] != pub || body["servers"].([]any)[0] != n.name {
		t.Errorf("directory: %d %v", status, body)
	}
	status, body = f.request(t, n, get, fedV1+"/query/directory?room_alias="+q("#nope:"+n.name), nil)
	wantStatus(t, "unknown alias", status, body, http.StatusNotFound, "M_NOT_FOUND")

	status, body = f.request(t, n, get, fedV1+"/query/profile?user_id="+q(r.alice), nil)
	if status != http.StatusOK || body["displayname"] != "Alice" || body["avatar_url"] != nil {
		t.Errorf("profile: %d %v", status, body)
	}
	status, body = f.request(t, n, get, fedV1+"/query/profile?user_id="+q(r.alice)+"&field=displayname", nil)
	if status != http.StatusOK || len(body) != 1 || body["displayname"] != "Alice" {
		t.Errorf("profile field: %d %v", status, body)
	}
	status, body = f.request(t, n, get, fedV1+"/query/profile?user_id="+q(r.alice)+"&field=avatar_url", nil)
	wantStatus(t, "unset field", status, body, http.StatusNotFound, "M_NOT_FOUND")
	status, body = f.request(t, n, get, fedV1+"/query/profile?user_id="+q("@nobody:"+n.name), nil)
	wantStatus(t, "unknown user", status, body, http.StatusNotFound, "M_NOT_FOUND")
	status, body = f.request(t, n, get, fedV1+"/query/profile?user_id="+q(r.bob), nil)
	wantStatus(t, "remote user", status, body, http.StatusBadRequest, "M_INVALID_PARAM")

	status, body = f.request(t, n, get, fedV1+"/user/devices/"+q(r.alice), nil)
	devices, _ := body["devices"].([]any)
	if status != http.StatusOK || body["user_id"] != r.alice || len(devices) != 1 || body["stream_id"] == nil {
		t.Fatalf("user devices: %d %v", status, body)
	}
	if d := devices[0].(map[string]any); d["device_id"] != "ADEV" || d["device_display_name"] != "phone" || d["keys"] == nil {
		t.Errorf("device %v", d)
	}
	status, body = f.request(t, n, get, fedV1+"/user/devices/"+q("@nobody:"+n.name), nil)
	wantStatus(t, "devices of an unknown user", status, body, http.StatusNotFound, "M_NOT_FOUND")

	status, body = f.request(t, n, get, fedV1+"/publicRooms?limit=10", nil)
	chunk, _ := body["chunk"].([]any)
	if status != http.StatusOK || len(chunk) != 1 || chunk[0].(map[string]any)["room_id"] != pub ||
		chunk[0].(map[string]any)["name"] != "The Lobby" {
		t.Errorf("publicRooms: %d %v", status, body)
	}
	status, body = f.request(t, n, post, fedV1+"/publicRooms", map[string]any{"filter": map[string]any{"generic_search_term": "nothing like it"}})
	if chunk, _ := body["chunk"].([]any); status != http.StatusOK || len(chunk) != 0 {
		t.Errorf("filtered publicRooms: %d %v", status, body)
	}
}
