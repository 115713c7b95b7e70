package rooms

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"

	"github.com/tidwall/gjson"
	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/id"

	"github.com/ganglion/ganglion/fsm"
)

// fakeInviter countersigns with a made-up signature; during its first call
// it can run something that moves the room's head.
type fakeInviter struct {
	calls  int
	during func()
	state  []json.RawMessage
	err    error
}

func (f *fakeInviter) InviteRemote(_ context.Context, _ id.RoomVersion, p *pdu.PDU, state []json.RawMessage) (*pdu.PDU, error) {
	f.calls++
	f.state = state
	if f.calls == 1 && f.during != nil {
		f.during()
	}
	if f.err != nil {
		return nil, f.err
	}
	out := p.Clone()
	out.AddSignature("remote.example", "ed25519:x", "c2lnbmF0dXJl")
	return out, nil
}

func fedErrcode(err error) (int, string) {
	var fe *fsm.Error
	if errors.As(err, &fe) {
		return fe.Status, fe.Errcode
	}
	return 0, ""
}

func TestRemoteInviteRebuildsWhenTheRoomMoves(t *testing.T) {
	s := startService(t)
	ctx := t.Context()
	alice := "@alice:test.local"
	roomID, err := s.CreateRoom(ctx, CreateRoomRequest{Creator: alice, Preset: "private_chat", Name: "n", HasName: true})
	if err != nil {
		t.Fatal(err)
	}
	bob := "@bob:remote.example"
	spec := EventSpec{Type: "m.room.member", StateKey: &bob, Sender: alice, Content: json.RawMessage(`{"membership":"invite"}`)}
	if s.isRemoteInvite(spec) != true {
		t.Fatal("not seen as a remote invite")
	}
	if _, err := s.sendRemoteInvite(ctx, SendRequest{RoomID: roomID, EventSpec: spec}); err == nil {
		t.Fatal("a remote invite without an inviter was accepted")
	}
	f := &fakeInviter{during: func() {
		if _, err := s.Send(ctx, SendRequest{RoomID: roomID, EventSpec: EventSpec{Type: "m.room.message", Sender: alice,
			Content: json.RawMessage(`{"msgtype":"m.text","body":"meanwhile"}`)}}); err != nil {
			t.Error(err)
		}
	}}
	s.SetRemoteInviter(f)
	evID, err := s.sendRemoteInvite(ctx, SendRequest{RoomID: roomID, EventSpec: spec})
	if err != nil {
		t.Fatal(err)
	}
	if f.calls != 2 {
		t.Fatalf("inviter called %d times; want a rebuild after the room moved", f.calls)
	}
	if len(f.state) == 0 || gjson.GetBytes(f.state[0], "type").Str != "m.room.create" {
		t.Fatalf("invite_room_state does not start with the create event")
	}
	_ = s.store.View(func(rt *fsm.ReadTx) error {
		ev, err := rt.Event(evID)
		if err != nil || !gjson.GetBytes(ev.PDU, "signatures.remote\\.example").Exists() {
			t.Fatalf("stored invite lacks the invitee's signature: %v", err)
		}
		if m := rt.Membership(bob, roomID); m == nil || m.Membership != "invite" {
			t.Fatalf("bob's membership: %+v", m)
		}
		return nil
	})
	// The invitee's server refusing is the answer.
	carol := "@carol:remote.example"
	s.SetRemoteInviter(&fakeInviter{err: fsm.Errorf(http.StatusForbidden, "M_FORBIDDEN", "no")})
	spec.StateKey = &carol
	if _, err := s.sendRemoteInvite(ctx, SendRequest{RoomID: roomID, EventSpec: spec}); err == nil {
		t.Fatal("refused invite stored")
	}
}

func TestMembershipTemplates(t *testing.T) {
	s := startService(t)
	ctx := t.Context()
	alice, bob := "@alice:test.local", "@bob:remote.example"
	public, err := s.CreateRoom(ctx, CreateRoomRequest{Creator: alice, Preset: "public_chat"})
	if err != nil {
		t.Fatal(err)
	}
	p, ver, err := s.MembershipTemplate(public, bob, "join")
	if err != nil || ver != "12" {
		t.Fatalf("template: %v, %v", ver, err)
	}
	if p.Signatures != nil || p.Hashes != nil || p.Sender.String() != bob || *p.StateKey != bob ||
		gjson.GetBytes(p.Content, "membership").Str != "join" || len(p.PrevEvents) != 1 || len(p.AuthEvents) == 0 {
		t.Fatalf("template: %+v", p)
	}
	if _, _, err := s.MembershipTemplate("!nope:test.local", bob, "join"); !hasCode(err, http.StatusNotFound, "M_NOT_FOUND") {
		t.Fatalf("unknown room: %v", err)
	}
	if _, _, err := s.MembershipTemplate(public, bob, "leave"); !hasCode(err, http.StatusForbidden, "M_FORBIDDEN") {
		t.Fatalf("leave of a non-member: %v", err)
	}
	private, err := s.CreateRoom(ctx, CreateRoomRequest{Creator: alice, Preset: "private_chat"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.MembershipTemplate(private, bob, "join"); !hasCode(err, http.StatusForbidden, "M_FORBIDDEN") {
		t.Fatalf("private room: %v", err)
	}
	// A restricted room whose allowed room this server is not in.
	rule, _ := json.Marshal(map[string]any{"join_rule": "restricted",
		"allow": []any{map[string]any{"type": "m.room_membership", "room_id": "!elsewhere:remote.example"}}})
	restricted, err := s.CreateRoom(ctx, CreateRoomRequest{Creator: alice, Preset: "private_chat",
		InitialState: []StateEventSpec{{Type: "m.room.join_rules", Content: rule}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.MembershipTemplate(restricted, bob, "join"); !hasCode(err, http.StatusBadRequest, "M_UNABLE_TO_AUTHORISE_JOIN") {
		t.Fatalf("restricted room of an unknown allowed room: %v", err)
	}
	if !s.IsResident(public) || s.IsResident("!nope:test.local") {
		t.Fatal("IsResident")
	}
}

func hasCode(err error, status int, code string) bool {
	st, c := fedErrcode(err)
	return st == status && c == code
}
