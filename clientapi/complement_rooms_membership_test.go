package clientapi

import (
	"net/url"
	"testing"

	"github.com/tidwall/gjson"
)

// Complement: tests/csapi/apidoc_room_members_test.go (TestRoomMembers),
// room_ban_test.go, room_kick_test.go, rooms_invite_test.go.

func TestComplementRoomMembers(t *testing.T) {
	base := crServer(t)
	alice := crUser(t, base, "alice")
	bob := crUser(t, base, "bob")
	public := map[string]any{"visibility": "public", "preset": "public_chat"}

	t.Run("POST /rooms/:room_id/join can join a room", func(t *testing.T) {
		roomID := alice.createRoom(t, public)
		res := bob.mustDo(t, "POST", crV3("rooms", roomID, "join"), nil, nil)
		if res.Get("room_id").Str != roomID {
			t.Fatalf("join: %s", res.Raw)
		}
		bob.mustSyncUntil(t, crSyncReq{}, crJoinedTo(bob.UserID, roomID))
	})
	t.Run("POST /join/:room_alias can join a room", func(t *testing.T) {
		roomID := alice.createRoom(t, map[string]any{"visibility": "public", "preset": "public_chat", "room_alias_name": "room_alias_random"})
		res := bob.mustDo(t, "POST", crV3("join", "#room_alias_random:test.local"), nil, nil)
		if res.Get("room_id").Str != roomID {
			t.Fatalf("join: %s", res.Raw)
		}
		bob.mustSyncUntil(t, crSyncReq{}, crJoinedTo(bob.UserID, roomID))
	})
	t.Run("POST /join/:room_id can join a room", func(t *testing.T) {
		roomID := alice.createRoom(t, public)
		res := bob.mustDo(t, "POST", crV3("join", roomID), nil, nil)
		if res.Get("room_id").Str != roomID {
			t.Fatalf("join: %s", res.Raw)
		}
		bob.mustSyncUntil(t, crSyncReq{}, crTimelineHas(roomID, crMemberIs(bob.UserID, "join")))
	})
	t.Run("Test that we can be reinvited to a room we created", func(t *testing.T) {
		roomID := alice.createRoom(t, map[string]any{"preset": "private_chat"})
		alice.inviteRoom(t, roomID, bob.UserID)
		bob.mustSyncUntil(t, crSyncReq{}, crInvitedTo(bob.UserID, roomID))
		bob.joinRoom(t, roomID)
		bob.mustSyncUntil(t, crSyncReq{}, crJoinedTo(bob.UserID, roomID))
		alice.sendStateSynced(t, roomID, "m.room.power_levels", "", map[string]any{
			"invite": 100, "users": crPLUsers(t, alice, roomID, map[string]any{alice.UserID: 100, bob.UserID: 100})})
		alice.leaveRoom(t, roomID)
		bob.mustSyncUntil(t, crSyncReq{}, crTimelineHas(roomID, crMemberIs(alice.UserID, "leave")))
		bob.inviteRoom(t, roomID, alice.UserID)
		since := alice.mustSyncUntil(t, crSyncReq{}, crInvitedTo(alice.UserID, roomID))
		alice.joinRoom(t, roomID)
		alice.mustSyncUntil(t, crSyncReq{Since: since}, crJoinedTo(alice.UserID, roomID))
	})
	for _, viaAlias := range []bool{false, true} {
		name := "POST /join/:room_id can join a room with custom content"
		if viaAlias {
			name = "POST /join/:room_alias can join a room with custom content"
		}
		t.Run(name, func(t *testing.T) {
			body := map[string]any{"visibility": "public", "preset": "public_chat"}
			target := ""
			if viaAlias {
				body["room_alias_name"] = "room_alias_random2"
				target = "#room_alias_random2:test.local"
			}
			roomID := alice.createRoom(t, body)
			if target == "" {
				target = roomID
			}
			res := bob.mustDo(t, "POST", crV3("join", target), map[string]string{"foo": "bar"}, nil)
			if res.Get("room_id").Str != roomID {
				t.Fatalf("join: %s", res.Raw)
			}
			alice.mustSyncUntil(t, crSyncReq{}, crJoinedTo(bob.UserID, roomID))
			content := alice.stateContent(t, roomID, "m.room.member", bob.UserID)
			if content.Get("membership").Str != "join" || content.Get("foo").Str != "bar" {
				t.Fatalf("member content: %s", content.Raw)
			}
		})
	}
	t.Run("POST /rooms/:room_id/ban can ban a user", func(t *testing.T) {
		roomID := alice.createRoom(t, public)
		bob.joinRoom(t, roomID)
		alice.mustSyncUntil(t, crSyncReq{}, crJoinedTo(bob.UserID, roomID))
		alice.mustDo(t, "POST", crV3("rooms", roomID, "ban"), map[string]string{"user_id": bob.UserID, "reason": "Testing"}, nil)
		alice.mustSyncUntil(t, crSyncReq{}, crTimelineHas(roomID, crMemberIs(bob.UserID, "ban")))
		if m := alice.stateContent(t, roomID, "m.room.member", bob.UserID).Get("membership").Str; m != "ban" {
			t.Fatalf("membership %q", m)
		}
	})
	t.Run("POST /rooms/:room_id/invite can send an invite", func(t *testing.T) {
		roomID := alice.createRoom(t, nil)
		alice.inviteRoom(t, roomID, bob.UserID)
		alice.mustSyncUntil(t, crSyncReq{}, crInvitedTo(bob.UserID, roomID))
		if m := alice.stateContent(t, roomID, "m.room.member", bob.UserID).Get("membership").Str; m != "invite" {
			t.Fatalf("membership %q", m)
		}
	})
	t.Run("POST /rooms/:room_id/leave can leave a room", func(t *testing.T) {
		roomID := alice.createRoom(t, nil)
		alice.inviteRoom(t, roomID, bob.UserID)
		bob.mustSyncUntil(t, crSyncReq{}, crInvitedTo(bob.UserID, roomID))
		bob.joinRoom(t, roomID)
		alice.mustSyncUntil(t, crSyncReq{}, crJoinedTo(bob.UserID, roomID))
		bob.leaveRoom(t, roomID)
		alice.mustSyncUntil(t, crSyncReq{}, crLeftFrom(bob.UserID, roomID))
		if m := alice.stateContent(t, roomID, "m.room.member", bob.UserID).Get("membership").Str; m != "leave" {
			t.Fatalf("membership %q", m)
		}
	})
}

func TestComplementBanKick(t *testing.T) {
	base := crServer(t)
	alice := crUser(t, base, "alice")
	bob := crUser(t, base, "bob")
	charlie := crUser(t, base, "charlie")

	t.Run("TestNotPresentUserCannotBanOthers", func(t *testing.T) {
		roomID := alice.createRoom(t, map[string]any{"preset": "public_chat"})
		bob.joinRoom(t, roomID)
		alice.sendStateSynced(t, roomID, "m.room.power_levels", "", map[string]any{"users": map[string]any{charlie.UserID: 100}})
		status, res := charlie.do(t, "POST", crV3("rooms", roomID, "ban"), map[string]any{"user_id": bob.UserID, "reason": "testing"}, nil)
		crWant(t, "ban by non-member", status, res, 403, "")
	})
	t.Run("TestCanBanJoinedUser and TestCanUnbanBannedUser", func(t *testing.T) {
		roomID := alice.createRoom(t, map[string]any{"preset": "public_chat"})
		bob.joinRoom(t, roomID)
		alice.mustSyncUntil(t, crSyncReq{}, crJoinedTo(bob.UserID, roomID))
		alice.mustDo(t, "POST", crV3("rooms", roomID, "ban"), map[string]any{"user_id": bob.UserID}, nil)
		alice.mustSyncUntil(t, crSyncReq{}, crTimelineHas(roomID, crMemberIs(bob.UserID, "ban")))
		status, res := bob.do(t, "POST", crV3("join", roomID), map[string]any{}, nil)
		if status < 400 {
			t.Fatalf("banned user rejoined: %d %s", status, res.Raw)
		}
		alice.mustDo(t, "POST", crV3("rooms", roomID, "unban"), map[string]any{"user_id": bob.UserID}, nil)
		bob.joinRoom(t, roomID)
	})
	t.Run("TestCannotKickNonPresentUser", func(t *testing.T) {
		roomID := alice.createRoom(t, map[string]any{"preset": "public_chat"})
		status, res := alice.do(t, "POST", crV3("rooms", roomID, "kick"), map[string]any{"user_id": bob.UserID, "reason": "testing"}, nil)
		crWant(t, "kick absent user", status, res, 403, "")
	})
	t.Run("TestCannotKickLeftUser", func(t *testing.T) {
		roomID := alice.createRoom(t, map[string]any{"preset": "public_chat"})
		bob.joinRoom(t, roomID)
		alice.mustSyncUntil(t, crSyncReq{}, crJoinedTo(bob.UserID, roomID))
		bob.leaveRoom(t, roomID)
		alice.mustSyncUntil(t, crSyncReq{}, crLeftFrom(bob.UserID, roomID))
		status, res := alice.do(t, "POST", crV3("rooms", roomID, "kick"), map[string]any{"user_id": bob.UserID, "reason": "testing"}, nil)
		crWant(t, "kick left user", status, res, 403, "")
	})
}

func TestComplementRoomsInvite(t *testing.T) {
	base := crServer(t)
	alice := crUser(t, base, "alice")
	bob := crUser(t, base, "bob")
	private := map[string]any{"preset": "private_chat"}

	t.Run("Can invite users to invite-only rooms", func(t *testing.T) {
		roomID := alice.createRoom(t, private)
		alice.inviteRoom(t, roomID, bob.UserID)
		bob.mustSyncUntil(t, crSyncReq{}, crInvitedTo(bob.UserID, roomID))
		bob.joinRoom(t, roomID)
		bob.mustSyncUntil(t, crSyncReq{}, crJoinedTo(bob.UserID, roomID))
		alice.mustSyncUntil(t, crSyncReq{}, crJoinedTo(bob.UserID, roomID))
	})
	t.Run("Uninvited users cannot join the room", func(t *testing.T) {
		roomID := alice.createRoom(t, private)
		status, res := bob.do(t, "POST", crV3("join", roomID), nil, nil)
		crWant(t, "uninvited join", status, res, 403, "")
	})
	t.Run("Invited user can reject invite", func(t *testing.T) {
		roomID := alice.createRoom(t, private)
		alice.inviteRoom(t, roomID, bob.UserID)
		bob.mustSyncUntil(t, crSyncReq{}, crInvitedTo(bob.UserID, roomID))
		bob.leaveRoom(t, roomID)
		alice.mustSyncUntil(t, crSyncReq{}, crLeftFrom(bob.UserID, roomID))
	})
	t.Run("Invited user can reject invite for empty room", func(t *testing.T) {
		roomID := alice.createRoom(t, private)
		aliceSince := alice.mustSyncUntil(t, crSyncReq{}, crJoinedTo(alice.UserID, roomID))
		alice.inviteRoom(t, roomID, bob.UserID)
		bobSince := bob.mustSyncUntil(t, crSyncReq{}, crInvitedTo(bob.UserID, roomID))
		alice.leaveRoom(t, roomID)
		alice.mustSyncUntil(t, crSyncReq{Since: aliceSince}, crLeftFrom(alice.UserID, roomID))
		bob.leaveRoom(t, roomID)
		bobSince = bob.mustSyncUntil(t, crSyncReq{Since: bobSince}, crLeftFrom(bob.UserID, roomID))
		res, _ := bob.mustSync(t, crSyncReq{Since: bobSince})
		if res.Get("rooms.invite." + crEsc(roomID)).Exists() {
			t.Fatalf("invite still shown: %s", res.Get("rooms.invite").Raw)
		}
	})
	t.Run("Users cannot invite themselves to a room", func(t *testing.T) {
		roomID := alice.createRoom(t, private)
		status, res := alice.do(t, "POST", crV3("rooms", roomID, "invite"), map[string]any{"user_id": alice.UserID}, nil)
		crWant(t, "self invite", status, res, 403, "")
	})
	t.Run("Users cannot invite a user that is already in the room", func(t *testing.T) {
		roomID := alice.createRoom(t, private)
		alice.inviteRoom(t, roomID, bob.UserID)
		bob.mustSyncUntil(t, crSyncReq{}, crInvitedTo(bob.UserID, roomID))
		bob.joinRoom(t, roomID)
		alice.mustSyncUntil(t, crSyncReq{}, crJoinedTo(bob.UserID, roomID))
		status, res := alice.do(t, "POST", crV3("rooms", roomID, "invite"), map[string]any{"user_id": bob.UserID}, nil)
		crWant(t, "invite a member", status, res, 403, "")
	})
	t.Run("Invited user can see room metadata", func(t *testing.T) {
		roomID := alice.createRoom(t, map[string]any{"preset": "private_chat", "name": "Invites room"})
		alice.inviteRoom(t, roomID, bob.UserID)
		bob.mustSyncUntil(t, crSyncReq{}, crInvitedTo(bob.UserID, roomID))
		res, _ := bob.mustSync(t, crSyncReq{})
		want := map[string]string{"m.room.join_rules": "join_rule", "m.room.name": "name"}
		seen := 0
		for _, ev := range res.Get("rooms.invite." + crEsc(roomID) + ".invite_state.events").Array() {
			field, ok := want[ev.Get("type").Str]
			if !ok {
				continue
			}
			seen++
			got := alice.stateContent(t, roomID, ev.Get("type").Str, ev.Get("state_key").Str).Get(field).Str
			if got != ev.Get("content."+field).Str {
				t.Fatalf("%s: invite_state %q, state %q", ev.Get("type").Str, ev.Get("content."+field).Str, got)
			}
		}
		if seen != 2 {
			t.Fatalf("invite_state lacks join_rules or name: %s", res.Get("rooms.invite").Raw)
		}
	})
	t.Run("Test that we can be reinvited to a room we created", func(t *testing.T) {
		roomID := alice.createRoom(t, private)
		alice.inviteRoom(t, roomID, bob.UserID)
		bob.mustSyncUntil(t, crSyncReq{}, crInvitedTo(bob.UserID, roomID))
		bob.joinRoom(t, roomID)
		alice.mustSyncUntil(t, crSyncReq{}, crInvitedTo(bob.UserID, roomID))
		alice.mustDo(t, "PUT", crV3("rooms", roomID, "state", "m.room.power_levels"), map[string]any{"users": map[string]int{bob.UserID: 100}}, nil)
		alice.leaveRoom(t, roomID)
		bob.mustSyncUntil(t, crSyncReq{}, crLeftFrom(alice.UserID, roomID))
		bob.inviteRoom(t, roomID, alice.UserID)
		alice.mustSyncUntil(t, crSyncReq{}, crInvitedTo(alice.UserID, roomID))
		alice.joinRoom(t, roomID)
		bob.mustSyncUntil(t, crSyncReq{}, crJoinedTo(alice.UserID, roomID))
	})
}

// Complement: tests/csapi/room_members_test.go.
func TestComplementGetRoomMembers(t *testing.T) {
	base := crServer(t)
	alice := crUser(t, base, "alice")
	bob := crUser(t, base, "bob")
	checkRoomIDs := func(t *testing.T, res gjson.Result, roomID string) {
		t.Helper()
		for _, ev := range res.Get("chunk").Array() {
			if ev.Get("room_id").Str != roomID {
				t.Fatalf("member event without room_id %s: %s", roomID, ev.Raw)
			}
		}
	}

	t.Run("TestGetRoomMembers", func(t *testing.T) {
		roomID := alice.createRoom(t, map[string]any{"preset": "public_chat"})
		bob.joinRoom(t, roomID)
		alice.mustSyncUntil(t, crSyncReq{}, crJoinedTo(bob.UserID, roomID))
		res := alice.mustDo(t, "GET", crV3("rooms", roomID, "members"), nil, nil)
		checkRoomIDs(t, res, roomID)
		crCheckOff(t, "members", res.Get("chunk"), []string{"m.room.member|" + alice.UserID, "m.room.member|" + bob.UserID}, crTypeStateKey)
	})
	t.Run("TestGetRoomMembersAtPoint", func(t *testing.T) {
		roomID := alice.createRoom(t, map[string]any{"preset": "public_chat"})
		alice.sendEventSynced(t, roomID, "m.room.message", crMsg("Hello world!"))
		syncRes, _ := alice.mustSync(t, crSyncReq{Timeout: "0"})
		at := syncRes.Get("rooms.join." + crEsc(roomID) + ".timeline.prev_batch").Str
		bob.joinRoom(t, roomID)
		alice.mustSyncUntil(t, crSyncReq{}, crJoinedTo(bob.UserID, roomID))
		bob.sendEventSynced(t, roomID, "m.room.message", crMsg("Hello back"))
		res := alice.mustDo(t, "GET", crV3("rooms", roomID, "members"), nil, url.Values{"at": {at}})
		checkRoomIDs(t, res, roomID)
		crCheckOff(t, "members at", res.Get("chunk"), []string{"m.room.member|" + alice.UserID}, crTypeStateKey)
	})
	t.Run("TestGetFilteredRoomMembers", func(t *testing.T) {
		roomID := alice.createRoom(t, map[string]any{"preset": "public_chat"})
		bob.joinRoom(t, roomID)
		alice.mustSyncUntil(t, crSyncReq{}, crJoinedTo(bob.UserID, roomID))
		bob.leaveRoom(t, roomID)
		alice.mustSyncUntil(t, crSyncReq{}, crLeftFrom(bob.UserID, roomID))
		for _, tc := range []struct {
			key, value, want string
		}{{"not_membership", "leave", alice.UserID}, {"membership", "leave", bob.UserID}, {"membership", "join", alice.UserID}} {
			res := alice.mustDo(t, "GET", crV3("rooms", roomID, "members"), nil, url.Values{tc.key: {tc.value}})
			checkRoomIDs(t, res, roomID)
			crCheckOff(t, tc.key+"="+tc.value, res.Get("chunk"), []string{"m.room.member|" + tc.want}, crTypeStateKey)
		}
	})
}
