package federation

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
	"maunium.net/go/mautrix"
	mfed "maunium.net/go/mautrix/federation"
	"maunium.net/go/mautrix/id"

	"github.com/ganglion/ganglion/fsm"
	"github.com/ganglion/ganglion/rooms"
)

// inviteOverFederation has alice (on A) invite bob (on B) the way rooms'
// hook does: build on A's head, have B countersign (invite v2), commit on A.
func inviteOverFederation(t *testing.T, a *homeserver, roomID, alice, bob string) string {
	t.Helper()
	p, ver := a.buildLocal(t, roomID, alice, "m.room.member", &bob, map[string]any{"membership": "invite"})
	signed, err := a.api.InviteRemote(t.Context(), ver, p, a.rs.StrippedState(roomID))
	if err != nil {
		t.Fatalf("InviteRemote: %v", err)
	}
	if signed.Signatures[a.name] == nil || signed.Signatures[id.UserID(bob).Homeserver()] == nil {
		t.Fatalf("invite is not signed by both servers: %v", signed.Signatures)
	}
	raw, _ := json.Marshal(signed)
	res, _, err := a.node.Propose(t.Context(), fsm.OpRoomEvents, fsm.RoomEventsCmd{RoomID: roomID, Events: []json.RawMessage{raw}})
	if err != nil {
		t.Fatalf("storing the invite on A: %v", err)
	}
	a.rs.InvalidateHead(roomID)
	return res.(*fsm.RoomEventsResult).EventIDs[0]
}

func TestInviteRemoteThenReject(t *testing.T) {
	a, b := twoHomeservers(t)
	ctx := t.Context()
	alice, bob := a.user(t, "alice"), b.user(t, "bob")
	roomID := mustCreateRoom(t, a.rs, rooms.CreateRoomRequest{Creator: alice, Preset: "private_chat",
		Name: "Secret", HasName: true})
	inviteID := inviteOverFederation(t, a, roomID, alice, bob)
	if a.membership(bob, roomID) != "invite" || b.membership(bob, roomID) != "invite" {
		t.Fatalf("after the invite: A says %q, B says %q", a.membership(bob, roomID), b.membership(bob, roomID))
	}
	inv := b.memberEvent(t, bob, roomID)
	if inv.EventID != inviteID || !inv.Outlier {
		t.Fatalf("B's invite: %+v", inv)
	}
	state := gjson.GetBytes(inv.PDU, "unsigned.invite_room_state")
	names := map[string]bool{}
	for _, e := range state.Array() {
		names[e.Get("type").Str] = true
	}
	if !names["m.room.create"] || !names["m.room.name"] || !names["m.room.join_rules"] {
		t.Fatalf("invite_room_state: %s", state.Raw)
	}
	// A retried invite stores nothing new.
	p, ver := a.buildLocal(t, roomID, alice, "m.room.member", &bob, map[string]any{"membership": "invite"})
	if _, err := a.api.InviteRemote(ctx, ver, p, a.rs.StrippedState(roomID)); err != nil {
		t.Fatal(err)
	}
	// Bob rejects: make_leave/send_leave through A.
	if err := b.api.LeaveRemote(ctx, bob, roomID, "no thanks"); err != nil {
		t.Fatalf("LeaveRemote: %v", err)
	}
	if a.membership(bob, roomID) != "leave" || b.membership(bob, roomID) != "leave" {
		t.Fatalf("after rejecting: A says %q, B says %q", a.membership(bob, roomID), b.membership(bob, roomID))
	}
	if leave := a.memberEvent(t, bob, roomID); contentOf(leave, "reason").Str != "no thanks" {
		t.Fatalf("leave on A: %s", leave.PDU)
	}
	// Rejecting again is a no-op.
	if err := b.api.LeaveRemote(ctx, bob, roomID, ""); err != nil {
		t.Fatal(err)
	}
	// Invited again, then accepted (no via: the inviter's server is asked):
	// the join replaces the invite.
	inviteOverFederation(t, a, roomID, alice, bob)
	if _, err := b.api.JoinRemote(ctx, bob, roomID, nil, nil); err != nil {
		t.Fatalf("accepting the invite: %v", err)
	}
	if a.membership(bob, roomID) != "join" || b.membership(bob, roomID) != "join" {
		t.Fatalf("after accepting: A says %q, B says %q", a.membership(bob, roomID), b.membership(bob, roomID))
	}
}

func TestRejectInviteOfUnreachableServer(t *testing.T) {
	a, b := twoHomeservers(t)
	ctx := t.Context()
	alice, bob := a.user(t, "alice"), b.user(t, "bob")
	roomID := mustCreateRoom(t, a.rs, rooms.CreateRoomRequest{Creator: alice, Preset: "private_chat"})
	inviteOverFederation(t, a, roomID, alice, bob)
	a.srv.Close()
	if err := b.api.LeaveRemote(ctx, bob, roomID, ""); err != nil {
		t.Fatalf("LeaveRemote: %v", err)
	}
	if b.membership(bob, roomID) != "leave" {
		t.Fatalf("the invite was not rejected locally: %q", b.membership(bob, roomID))
	}
}

func TestInviteRefusals(t *testing.T) {
	a, b := twoHomeservers(t)
	ctx := t.Context()
	alice := a.user(t, "alice")
	b.user(t, "bob")
	roomID := mustCreateRoom(t, a.rs, rooms.CreateRoomRequest{Creator: alice, Preset: "private_chat"})
	// No such user on B.
	ghost := "@ghost:" + b.name
	p, ver := a.buildLocal(t, roomID, alice, "m.room.member", &ghost, map[string]any{"membership": "invite"})
	if _, err := a.api.InviteRemote(ctx, ver, p, a.rs.StrippedState(roomID)); !isCode(err, http.StatusForbidden, "M_FORBIDDEN") {
		t.Fatalf("invite of an unknown user: %v", err)
	}
	// A room version B does not support; an event whose ID is not the
	// path's; a user of another server as the invitee.
	fed, _ := a.api.Client().Fed()
	bob := "@bob:" + b.name
	p, ver = a.buildLocal(t, roomID, alice, "m.room.member", &bob, map[string]any{"membership": "invite"})
	raw, _ := json.Marshal(p)
	evID, _ := p.GetEventID(ver)
	put := func(eventID id.EventID, version string) error {
		_, err := fed.SendInvite(ctx, &mfed.ReqSendInvite{RoomID: id.RoomID(roomID), UserID: id.UserID(bob), EventID: eventID,
			Event: raw, InviteRoomState: a.rs.StrippedState(roomID), RoomVersion: id.RoomVersion(version)})
		return err
	}
	var he mautrix.HTTPError
	if err := put(evID, "2"); !asHTTPError(err, &he) || he.RespError.ErrCode != "M_INCOMPATIBLE_ROOM_VERSION" ||
		he.RespError.ExtraData["room_version"] != "2" {
		t.Fatalf("unsupported version: %v", err)
	}
	if err := put("$other", string(ver)); !asHTTPError(err, &he) || he.RespError.ErrCode != "M_INVALID_PARAM" {
		t.Fatalf("wrong event ID: %v", err)
	}
	if b.membership(bob, roomID) != "" {
		t.Fatalf("a refused invite was stored")
	}
}

func TestKnockRemoteThenRetract(t *testing.T) {
	a, b := twoHomeservers(t)
	ctx := t.Context()
	alice, bob := a.user(t, "alice"), b.user(t, "bob")
	rule, _ := json.Marshal(map[string]any{"join_rule": "knock"})
	roomID := mustCreateRoom(t, a.rs, rooms.CreateRoomRequest{Creator: alice, Preset: "private_chat", Name: "Knock knock",
		HasName: true, InitialState: []rooms.StateEventSpec{{Type: "m.room.join_rules", Content: rule}}})
	got, err := b.api.KnockRemote(ctx, bob, roomID, []string{a.name}, "let me in")
	if err != nil || got != roomID {
		t.Fatalf("KnockRemote = %q, %v", got, err)
	}
	if a.membership(bob, roomID) != "knock" || b.membership(bob, roomID) != "knock" {
		t.Fatalf("after knocking: A says %q, B says %q", a.membership(bob, roomID), b.membership(bob, roomID))
	}
	knock := b.memberEvent(t, bob, roomID)
	if contentOf(knock, "reason").Str != "let me in" || !gjson.GetBytes(knock.PDU, "unsigned.knock_room_state.#(type==\"m.room.create\")").Exists() {
		t.Fatalf("B's knock: %s", knock.PDU)
	}
	if err := b.api.LeaveRemote(ctx, bob, roomID, ""); err != nil {
		t.Fatalf("retracting the knock: %v", err)
	}
	if a.membership(bob, roomID) != "leave" || b.membership(bob, roomID) != "leave" {
		t.Fatalf("after retracting: A says %q, B says %q", a.membership(bob, roomID), b.membership(bob, roomID))
	}
	// A room that does not allow knocking.
	public := mustCreateRoom(t, a.rs, rooms.CreateRoomRequest{Creator: alice, Preset: "public_chat"})
	if _, err := b.api.KnockRemote(ctx, bob, public, []string{a.name}, ""); !isCode(err, http.StatusForbidden, "M_FORBIDDEN") {
		t.Fatalf("knock on a public room: %v", err)
	}
}

// When the invitee's server is in the room the invite joins the room's DAG
// there (through Ingest), not the out-of-room store.
func TestInviteWhileResident(t *testing.T) {
	a, b := twoHomeservers(t)
	ctx := t.Context()
	alice, bob, carol := a.user(t, "alice"), b.user(t, "bob"), b.user(t, "carol")
	roomID := mustCreateRoom(t, a.rs, rooms.CreateRoomRequest{Creator: alice, Preset: "public_chat"})
	if _, err := b.api.JoinRemote(ctx, carol, roomID, []string{a.name}, nil); err != nil {
		t.Fatal(err)
	}
	inviteID := inviteOverFederation(t, a, roomID, alice, bob)
	if b.membership(bob, roomID) != "invite" {
		t.Fatalf("B: bob's membership %q", b.membership(bob, roomID))
	}
	inv := b.memberEvent(t, bob, roomID)
	if inv.EventID != inviteID || inv.Outlier || inv.Pos <= 0 {
		t.Fatalf("B stored the invite outside the timeline: %+v", inv)
	}
	// The invitee's leave is then a local event of a resident server.
	if err := b.api.LeaveRemote(ctx, bob, roomID, ""); err != nil {
		t.Fatal(err)
	}
	if b.membership(bob, roomID) != "leave" {
		t.Fatalf("B: bob's membership after leaving %q", b.membership(bob, roomID))
	}
}

// A server the room's ACL denies gets no template.
func TestJoinDeniedByServerACL(t *testing.T) {
	a, b := twoHomeservers(t)
	ctx := t.Context()
	alice, bob := a.user(t, "alice"), b.user(t, "bob")
	roomID := mustCreateRoom(t, a.rs, rooms.CreateRoomRequest{Creator: alice, Preset: "public_chat"})
	acl := json.RawMessage(`{"allow":["*"],"deny":["localhost"],"allow_ip_literals":true}`)
	empty := ""
	if _, err := a.rs.Send(ctx, rooms.SendRequest{RoomID: roomID, EventSpec: rooms.EventSpec{Type: "m.room.server_acl",
		StateKey: &empty, Sender: alice, Content: acl}}); err != nil {
		t.Fatal(err)
	}
	_, err := b.api.JoinRemote(ctx, bob, roomID, []string{a.name}, nil)
	if !isCode(err, http.StatusForbidden, "M_FORBIDDEN") || !strings.Contains(err.Error(), "ACL") {
		t.Fatalf("join from a denied server: %v", err)
	}
}
