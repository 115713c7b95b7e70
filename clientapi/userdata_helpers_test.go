package clientapi

import (
	"encoding/json"
	"testing"

	"github.com/ganglion/ganglion/rooms"
)

// udRoom creates a public room owned by creator, joins the others, and
// sends one message; it returns the room and the message's event ID.
func udRoom(t *testing.T, api *API, creator string, joiners ...string) (roomID, eventID string) {
	t.Helper()
	roomID, err := api.rooms.CreateRoom(t.Context(), rooms.CreateRoomRequest{Creator: creator, Preset: "public_chat"})
	if err != nil {
		t.Fatalf("create room: %v", err)
	}
	for _, u := range joiners {
		if _, err := api.rooms.Membership(t.Context(), rooms.MembershipRequest{RoomID: roomID, Sender: u, Target: u, Membership: "join"}); err != nil {
			t.Fatalf("join %s: %v", u, err)
		}
	}
	eventID, err = api.rooms.Send(t.Context(), rooms.SendRequest{RoomID: roomID, EventSpec: rooms.EventSpec{
		Type: "m.room.message", Sender: creator, Content: json.RawMessage(`{"msgtype":"m.text","body":"hi"}`)}})
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	return roomID, eventID
}

// wantErr checks a status and errcode.
func wantErr(t *testing.T, what string, status int, out map[string]any, wantStatus int, errcode string) {
	t.Helper()
	if status != wantStatus || out["errcode"] != errcode {
		t.Fatalf("%s: got %d %v, want %d %s", what, status, out, wantStatus, errcode)
	}
}

func wantOK(t *testing.T, what string, status int, out map[string]any) {
	t.Helper()
	if status != 200 {
		t.Fatalf("%s: got %d %v", what, status, out)
	}
}
