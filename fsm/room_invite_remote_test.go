package fsm

import (
	"encoding/json"
	"encoding/json/jsontext"
	jsonv2 "encoding/json/v2"
	"errors"
	"net/http"
	"testing"

	"github.com/tidwall/gjson"
	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/id"
)

const farRoom = "!far:remote.example"

// farMember builds a member event of farRoom (a room this server is not
// in), signed with the test key, with unsigned set when given.
func farMember(t testing.TB, b *eventBuilder, sender, target, membership string, unsigned any) json.RawMessage {
	t.Helper()
	content, _ := json.Marshal(map[string]any{"membership": membership})
	b.ts++
	p := &pdu.PDU{AuthEvents: []id.EventID{"$create:remote.example"}, PrevEvents: []id.EventID{"$prev:remote.example"},
		Content: jsontext.Value(content), Depth: 7, OriginServerTS: b.ts, RoomID: farRoom,
		Sender: id.UserID(sender), StateKey: &target, Type: "m.room.member"}
	if err := p.Sign(wVer, "remote.example", wKeyID, b.priv); err != nil {
		t.Fatal(err)
	}
	if unsigned != nil {
		u, _ := json.Marshal(unsigned)
		p.Unsigned = jsontext.Value(u)
	}
	out, err := jsonv2.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRemoteInviteRejectAndKnock(t *testing.T) {
	a := newAcctFSM(t)
	b := newEventBuilder(t)
	stripped := map[string]any{"invite_room_state": []any{map[string]any{"type": "m.room.name",
		"state_key": "", "sender": rDave, "content": map[string]any{"name": "Far away"}}}}
	invite := farMember(t, b, rDave, wBob, "invite", stripped)
	res := a.mustApply(OpRoomInviteRemote, RemoteInviteCmd{RoomID: farRoom, Version: string(wVer), Event: invite}).(*RemoteInviteResult)
	if !res.Stored || res.EventID == "" {
		t.Fatalf("invite not stored: %+v", res)
	}
	var m *MembershipRecord
	var ev *EventRecord
	var ver string
	a.view(func(r *ReadTx) {
		m = r.Membership(wBob, farRoom)
		ev, _ = r.Event(res.EventID)
		ver = r.RoomVersionOf(farRoom)
	})
	if ver != "11" {
		t.Fatalf("room version of an out-of-room invite: %q", ver)
	}
	if m == nil || m.Membership != "invite" || m.EventID != res.EventID || m.Pos <= 0 {
		t.Fatalf("membership after invite: %+v", m)
	}
	if ev == nil || !ev.Outlier || gjson.GetBytes(ev.PDU, "unsigned.invite_room_state.0.content.name").Str != "Far away" {
		t.Fatalf("stored invite: %+v", ev)
	}
	// A retried request stores nothing and keeps the position.
	again := a.mustApply(OpRoomInviteRemote, RemoteInviteCmd{RoomID: farRoom, Version: string(wVer), Event: invite}).(*RemoteInviteResult)
	if again.Stored || again.EventID != res.EventID {
		t.Fatalf("retry: %+v", again)
	}
	// The rejection.
	leave := farMember(t, b, wBob, wBob, "leave", nil)
	a.mustApply(OpRoomInviteRemote, RemoteInviteCmd{RoomID: farRoom, Version: string(wVer), Event: leave})
	a.view(func(r *ReadTx) { m = r.Membership(wBob, farRoom) })
	if m == nil || m.Membership != "leave" {
		t.Fatalf("membership after rejecting: %+v", m)
	}
	// A knock, then its retraction.
	knock := farMember(t, b, wAlice, wAlice, "knock", map[string]any{"knock_room_state": []any{}})
	a.mustApply(OpRoomInviteRemote, RemoteInviteCmd{RoomID: farRoom, Version: string(wVer), Event: knock})
	a.view(func(r *ReadTx) { m = r.Membership(wAlice, farRoom) })
	if m == nil || m.Membership != "knock" {
		t.Fatalf("membership after knocking: %+v", m)
	}
}

func TestRemoteInviteRefusals(t *testing.T) {
	a, _ := remoteRoom(t)
	b := newEventBuilder(t)
	cases := map[string]RemoteInviteCmd{
		"no event":        {RoomID: farRoom, Version: "11"},
		"unknown version": {RoomID: farRoom, Version: "99", Event: farMember(t, b, rDave, wBob, "invite", nil)},
		"other room":      {RoomID: "!other:remote.example", Version: "11", Event: farMember(t, b, rDave, wBob, "invite", nil)},
		"join":            {RoomID: farRoom, Version: "11", Event: farMember(t, b, wBob, wBob, "join", nil)},
		"leave of other":  {RoomID: farRoom, Version: "11", Event: farMember(t, b, rDave, wBob, "leave", nil)},
		"not json":        {RoomID: farRoom, Version: "11", Event: json.RawMessage(`"x"`)},
		"version differs": {RoomID: wRoom, Version: "10", Event: farMember(t, b, rDave, wBob, "invite", nil)},
	}
	for name, c := range cases {
		if _, err := a.apply(OpRoomInviteRemote, c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// alice is joined to wRoom: an out-of-room event cannot change that.
	p, _ := ParsePDU(farMember(t, b, rDave, wAlice, "invite", nil))
	p.RoomID = wRoom
	raw, _ := jsonv2.Marshal(p)
	_, err := a.apply(OpRoomInviteRemote, RemoteInviteCmd{RoomID: wRoom, Event: raw})
	var fe *Error
	if !errors.As(err, &fe) || fe.Status != http.StatusForbidden {
		t.Fatalf("invite of a joined user: %v", err)
	}
}
