package federation

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"

	"github.com/tidwall/sjson"
	"maunium.net/go/mautrix"
	mfed "maunium.net/go/mautrix/federation"
	"maunium.net/go/mautrix/id"

	"github.com/ganglion/ganglion/fsm"
	"github.com/ganglion/ganglion/rooms"
)

func TestJoinRemoteRoom(t *testing.T) {
	a, b := twoHomeservers(t)
	ctx := t.Context()
	alice, bob := a.user(t, "alice"), b.user(t, "bob")
	for _, ver := range []string{"12", "10"} {
		roomID := mustCreateRoom(t, a.rs, rooms.CreateRoomRequest{Creator: alice, Preset: "public_chat",
			Name: "Public " + ver, HasName: true, RoomVersion: ver})
		var via []string
		if ver == "12" {
			via = []string{a.name} // a v12 room ID names no server
		}
		got, err := b.api.JoinRemote(ctx, bob, roomID, via, map[string]any{"reason": "hello"})
		if err != nil || got != roomID {
			t.Fatalf("v%s: JoinRemote = %q, %v", ver, got, err)
		}
		if m := b.membership(bob, roomID); m != "join" {
			t.Fatalf("v%s: bob's membership on B: %q", ver, m)
		}
		if m := a.membership(bob, roomID); m != "join" {
			t.Fatalf("v%s: bob's membership on A: %q", ver, m)
		}
		join := a.memberEvent(t, bob, roomID)
		if contentOf(join, "displayname").Str != "Bob" || contentOf(join, "reason").Str != "hello" {
			t.Fatalf("v%s: join content: %s", ver, join.PDU)
		}
		_ = b.node.Store().View(func(rt *fsm.ReadTx) error {
			room, err := rt.Room(roomID)
			if err != nil || room.Version != ver || len(room.Extremities) != 1 {
				t.Fatalf("v%s: B's room record: %+v, %v", ver, room, err)
			}
			state := rt.CurrentState(roomID)
			for _, k := range [][2]string{{"m.room.create", ""}, {"m.room.name", ""}, {"m.room.member", alice}, {"m.room.member", bob}} {
				if state[k] == "" {
					t.Errorf("v%s: B's state lacks %v", ver, k)
				}
			}
			if m := rt.Membership(alice, roomID); m == nil || m.Membership != "join" {
				t.Errorf("v%s: B does not know alice joined: %+v", ver, m)
			}
			return nil
		})
		// Joining again is the local join of a resident server.
		if _, err := b.api.JoinRemote(ctx, bob, roomID, nil, nil); err != nil {
			t.Fatalf("v%s: second join: %v", ver, err)
		}
	}
}

func TestJoinRemoteThroughAlias(t *testing.T) {
	a, b := twoHomeservers(t)
	ctx := t.Context()
	alice, bob := a.user(t, "alice"), b.user(t, "bob")
	roomID := mustCreateRoom(t, a.rs, rooms.CreateRoomRequest{Creator: alice, Preset: "public_chat", AliasLocalpart: "lobby"})
	got, err := b.api.JoinRemote(ctx, bob, "#lobby:"+a.name, nil, nil)
	if err != nil {
		if st, code := errcode(err); st == http.StatusNotFound && code == "M_NOT_FOUND" {
			t.Skipf("query/directory is not served yet: %v", err)
		}
		t.Fatal(err)
	}
	if got != roomID || b.membership(bob, roomID) != "join" {
		t.Fatalf("joined %q (want %s), membership %q", got, roomID, b.membership(bob, roomID))
	}
	if _, err := b.api.JoinRemote(ctx, bob, "#nope:"+a.name, nil, nil); !isCode(err, http.StatusNotFound, "M_NOT_FOUND") {
		t.Fatalf("unknown alias: %v", err)
	}
}

func TestRestrictedJoinAuthorisedByResident(t *testing.T) {
	a, b := twoHomeservers(t)
	ctx := t.Context()
	alice, bob := a.user(t, "alice"), b.user(t, "bob")
	space := mustCreateRoom(t, a.rs, rooms.CreateRoomRequest{Creator: alice, Preset: "public_chat"})
	rule, _ := json.Marshal(map[string]any{"join_rule": "restricted",
		"allow": []any{map[string]any{"type": "m.room_membership", "room_id": space}}})
	restricted := mustCreateRoom(t, a.rs, rooms.CreateRoomRequest{Creator: alice, Preset: "private_chat",
		InitialState: []rooms.StateEventSpec{{Type: "m.room.join_rules", Content: rule}}})
	// Not in the space yet: A cannot vouch for bob.
	if _, err := b.api.JoinRemote(ctx, bob, restricted, []string{a.name}, nil); !isCode(err, http.StatusForbidden, "M_FORBIDDEN") {
		t.Fatalf("restricted join before joining the space: %v", err)
	}
	if _, err := b.api.JoinRemote(ctx, bob, space, []string{a.name}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := b.api.JoinRemote(ctx, bob, restricted, []string{a.name}, nil); err != nil {
		t.Fatalf("restricted join: %v", err)
	}
	join := a.memberEvent(t, bob, restricted)
	if contentOf(join, "join_authorised_via_users_server").Str != alice {
		t.Fatalf("join names no authoriser: %s", join.PDU)
	}
	sigs := map[string]json.RawMessage{}
	_ = json.Unmarshal([]byte(mustGet(t, join.PDU, "signatures")), &sigs)
	if sigs[a.name] == nil || sigs[b.name] == nil {
		t.Fatalf("join is not signed by both servers: %s", join.PDU)
	}
	if b.membership(bob, restricted) != "join" {
		t.Fatalf("B did not store the restricted join")
	}
}

func TestJoinRemoteRefusals(t *testing.T) {
	a, b := twoHomeservers(t)
	ctx := t.Context()
	alice, bob := a.user(t, "alice"), b.user(t, "bob")
	roomID := mustCreateRoom(t, a.rs, rooms.CreateRoomRequest{Creator: alice, Preset: "public_chat", RoomVersion: "10"})
	// Unknown room; a server that cannot be reached.
	if _, err := b.api.JoinRemote(ctx, bob, "!nope:"+a.name, nil, nil); !isCode(err, http.StatusNotFound, "M_NOT_FOUND") {
		t.Fatalf("unknown room: %v", err)
	}
	if _, err := b.api.JoinRemote(ctx, bob, "!nope:localhost:1", nil, nil); !isCode(err, http.StatusNotFound, "M_NOT_FOUND") {
		t.Fatalf("unreachable server: %v", err)
	}
	// A private room refuses; so does a ban.
	private := mustCreateRoom(t, a.rs, rooms.CreateRoomRequest{Creator: alice, Preset: "private_chat"})
	if _, err := b.api.JoinRemote(ctx, bob, private, []string{a.name}, nil); !isCode(err, http.StatusForbidden, "M_FORBIDDEN") {
		t.Fatalf("private room: %v", err)
	}
	if _, err := a.rs.Membership(ctx, rooms.MembershipRequest{RoomID: roomID, Sender: alice, Target: bob, Membership: "ban"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.api.JoinRemote(ctx, bob, roomID, nil, nil); !isCode(err, http.StatusForbidden, "M_FORBIDDEN") {
		t.Fatalf("banned: %v", err)
	}
	if b.membership(bob, roomID) != "" {
		t.Fatalf("a refused join left a membership on B")
	}
	// make_join: a version the joining server lacks, a user of another
	// server.
	fed, _ := b.api.Client().Fed()
	call := func(path mfed.URLPath, query url.Values) error {
		_, _, err := fed.MakeFullRequest(ctx, mfed.RequestParams{ServerName: a.name, Method: http.MethodGet,
			Path: path, Query: query, Authenticate: true})
		return err
	}
	err := call(mfed.URLPath{"v1", "make_join", roomID, "@carol:" + b.name}, url.Values{"ver": {"1", "2"}})
	if fe := remoteFailure(err); fe == nil || fe.Errcode != "M_INCOMPATIBLE_ROOM_VERSION" {
		t.Fatalf("make_join without the room's version: %v", err)
	}
	var he mautrix.HTTPError
	if !asHTTPError(err, &he) || he.RespError.ExtraData["room_version"] != "10" {
		t.Fatalf("M_INCOMPATIBLE_ROOM_VERSION lacks room_version: %v", err)
	}
	err = call(mfed.URLPath{"v1", "make_join", roomID, "@carol:elsewhere.example"}, url.Values{"ver": {"10"}})
	if fe := remoteFailure(err); fe == nil || fe.Status != http.StatusForbidden {
		t.Fatalf("make_join for another server's user: %v", err)
	}
	// send_join of an event whose ID is not the path's.
	m, err := b.api.signedTemplate(ctx, a.name, roomID, "@carol:"+b.name, "join", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = fed.SendJoin(ctx, &mfed.ReqSendJoin{RoomID: id.RoomID(roomID), EventID: "$wrong", Event: m.raw, Via: a.name})
	if !asHTTPError(err, &he) || he.RespError.ErrCode != "M_INVALID_PARAM" {
		t.Fatalf("send_join with the wrong event ID: %v", err)
	}
	// send_join of a leave; of a join whose content was altered after
	// signing (bad hash and signature).
	leave, err := b.api.signedTemplate(ctx, a.name, roomID, "@carol:"+b.name, "join", nil)
	if err != nil {
		t.Fatal(err)
	}
	tampered, _ := sjson.SetBytes(leave.raw, "content.membership", "leave")
	_, err = fed.SendJoin(ctx, &mfed.ReqSendJoin{RoomID: id.RoomID(roomID), EventID: id.EventID(leave.id), Event: tampered, Via: a.name})
	if !asHTTPError(err, &he) || he.RespError.ErrCode != "M_INVALID_PARAM" {
		t.Fatalf("send_join of a tampered event: %v", err)
	}
	if a.membership("@carol:"+b.name, roomID) != "" {
		t.Fatalf("a refused send_join was stored")
	}
	// A retried send_join gets the same answer and stores one join.
	for i := 0; i < 2; i++ {
		resp, err := fed.SendJoin(ctx, &mfed.ReqSendJoin{RoomID: id.RoomID(roomID), EventID: id.EventID(m.id), Event: m.raw, Via: a.name})
		if err != nil || len(resp.State) == 0 || len(resp.AuthChain) == 0 || resp.MembersOmitted {
			t.Fatalf("send_join #%d: %v", i+1, err)
		}
	}
	if a.membership("@carol:"+b.name, roomID) != "join" {
		t.Fatalf("carol's join was not stored on A")
	}
}
