package clientapi

import (
	"net/url"
	"testing"

	"github.com/tidwall/gjson"
)

// Complement: tests/csapi/apidoc_room_create_test.go (TestRoomCreate),
// apidoc_room_levels_test.go and power_levels_test.go, apidoc_room_forget_test.go.

func TestComplementRoomCreate(t *testing.T) {
	base := crServer(t)
	alice := crUser(t, base, "alice")
	bob := crUser(t, base, "bob")
	create := func(t *testing.T, body map[string]any) (int, gjson.Result) {
		return alice.do(t, "POST", crV3("createRoom"), body, nil)
	}
	wantRoom := func(t *testing.T, status int, res gjson.Result) {
		t.Helper()
		if status != 200 || res.Get("room_id").Type != gjson.String {
			t.Fatalf("createRoom: %d %s", status, res.Raw)
		}
	}

	t.Run("POST /createRoom makes a public room", func(t *testing.T) {
		status, res := create(t, map[string]any{"visibility": "public", "room_alias_name": "30-room-create-alias-random"})
		wantRoom(t, status, res)
	})
	t.Run("POST /createRoom makes a private room", func(t *testing.T) {
		status, res := create(t, map[string]any{"visibility": "private"})
		wantRoom(t, status, res)
	})
	t.Run("POST /createRoom makes a room with a topic", func(t *testing.T) {
		roomID := alice.createRoom(t, map[string]any{"topic": "Test Room", "preset": "public_chat"})
		if got := alice.stateContent(t, roomID, "m.room.topic", "").Get("topic").Str; got != "Test Room" {
			t.Fatalf("topic %q", got)
		}
	})
	t.Run("POST /createRoom makes a room with a name", func(t *testing.T) {
		roomID := alice.createRoom(t, map[string]any{"name": "Test Room", "preset": "public_chat"})
		if got := alice.stateContent(t, roomID, "m.room.name", "").Get("name").Str; got != "Test Room" {
			t.Fatalf("name %q", got)
		}
	})
	t.Run("POST /createRoom creates a room with the given version", func(t *testing.T) {
		// Complement asks for version "2"; this server creates v3 and later
		// (see the report), so the version asked for here is the oldest it has.
		roomID := alice.createRoom(t, map[string]any{"room_version": "3", "preset": "public_chat"})
		if got := alice.stateContent(t, roomID, "m.room.create", "").Get("room_version").Str; got != "3" {
			t.Fatalf("room_version %q", got)
		}
		// v3 event IDs are standard base64: '/' and '+' travel escaped.
		for i := 0; i < 8; i++ {
			eventID := alice.sendEvent(t, roomID, "m.room.message", crMsg("v3"))
			if got := alice.mustDo(t, "GET", crV3("rooms", roomID, "event", eventID), nil, nil); got.Get("event_id").Str != eventID {
				t.Fatalf("event %s: %s", eventID, got.Raw)
			}
		}
	})
	t.Run("POST /createRoom makes a private room with invites", func(t *testing.T) {
		status, res := create(t, map[string]any{"visibility": "private", "invite": []string{bob.UserID}})
		wantRoom(t, status, res)
	})
	t.Run("POST /createRoom rejects attempts to create rooms with numeric versions", func(t *testing.T) {
		status, res := create(t, map[string]any{"visibility": "private", "room_version": 1, "preset": "public_chat"})
		crWant(t, "numeric version", status, res, 400, "M_BAD_JSON")
	})
	t.Run("POST /createRoom rejects attempts to create rooms with unknown versions", func(t *testing.T) {
		status, res := create(t, map[string]any{"visibility": "private", "room_version": "ahfgwjyerhgiuveisbruvybseyrugvi", "preset": "public_chat"})
		crWant(t, "unknown version", status, res, 400, "M_UNSUPPORTED_ROOM_VERSION")
	})
	t.Run("Rooms can be created with an initial invite list (SYN-205)", func(t *testing.T) {
		roomID := alice.createRoom(t, map[string]any{"invite": []string{bob.UserID}})
		bob.mustSyncUntil(t, crSyncReq{}, crInvitedTo(bob.UserID, roomID))
	})
	t.Run("Can /sync newly created room", func(t *testing.T) {
		roomID := alice.createRoom(t, nil)
		alice.sendEventSynced(t, roomID, "m.room.test", map[string]any{})
	})
	t.Run("POST /createRoom ignores attempts to set the room version via creation_content", func(t *testing.T) {
		roomID := alice.createRoom(t, map[string]any{"creation_content": map[string]any{"test": "azerty", "room_version": "test"}})
		alice.mustSyncUntil(t, crSyncReq{}, crJoinedTo(alice.UserID, roomID))
		res, _ := alice.mustSync(t, crSyncReq{})
		ev0 := res.Get("rooms.join." + crEsc(roomID) + ".timeline.events.0")
		if ev0.Get("type").Str != "m.room.create" || !ev0.Get("content.room_version").Exists() ||
			ev0.Get("content.room_version").Str == "test" || ev0.Get("content.test").Str != "azerty" {
			t.Fatalf("first timeline event: %s", ev0.Raw)
		}
	})
}

func TestComplementPowerLevels(t *testing.T) {
	base := crServer(t)
	alice := crUser(t, base, "alice")

	t.Run("TestDemotingUsersViaUsersDefault", func(t *testing.T) {
		roomID := alice.createRoom(t, map[string]any{"preset": "public_chat", "room_version": "11",
			"power_level_content_override": map[string]any{"users_default": 100, "users": map[string]any{alice.UserID: 100},
				"events": map[string]int{}, "notifications": map[string]int{}}})
		alice.sendStateSynced(t, roomID, "m.room.power_levels", "", map[string]any{"users_default": 40,
			"users": map[string]any{alice.UserID: 100}, "events": map[string]int{}, "notifications": map[string]int{}})
	})
	// The rest assumes the creator is listed in users, as before room v12.
	roomID := alice.createRoom(t, map[string]any{"room_version": "11"})
	t.Run("GET /rooms/:room_id/state/m.room.power_levels can fetch levels", func(t *testing.T) {
		res := alice.stateContent(t, roomID, "m.room.power_levels", "")
		for _, k := range []string{"ban", "kick", "redact", "state_default", "events_default", "users_default"} {
			if res.Get(k).Type != gjson.Number {
				t.Fatalf("%s is not a number: %s", k, res.Raw)
			}
		}
		for _, m := range []string{"events", "users"} {
			res.Get(m).ForEach(func(k, v gjson.Result) bool {
				if v.Type != gjson.Number {
					t.Fatalf("%s.%s is not a number", m, k.Str)
				}
				return true
			})
		}
		if res.Get("users."+crEsc(alice.UserID)).Int() <= res.Get("users_default").Int() {
			t.Fatalf("creator not above users_default: %s", res.Raw)
		}
	})
	t.Run("PUT /rooms/:room_id/state/m.room.power_levels can set levels", func(t *testing.T) {
		content := map[string]any{"invite": 100.0, "users": map[string]any{alice.UserID: 100.0, "@random-other-user:their.home": 20.0}}
		eventID := alice.sendStateSynced(t, roomID, "m.room.power_levels", "", content)
		got := alice.mustDo(t, "GET", crV3("rooms", roomID, "event", eventID), nil, nil).Get("content")
		if got.Get("invite").Num != 100 || got.Get("users.@random-other-user:their\\.home").Num != 20 || len(got.Map()) != 2 {
			t.Fatalf("content: %s", got.Raw)
		}
	})
	t.Run("PUT power_levels should not explode if the old power levels were empty", func(t *testing.T) {
		alice.sendStateSynced(t, roomID, "m.room.power_levels", "", map[string]any{"users": map[string]any{alice.UserID: 100}})
		alice.sendStateSynced(t, roomID, "m.room.power_levels", "", map[string]any{})
		status, res := alice.do(t, "PUT", crV3("rooms", roomID, "state", "m.room.power_levels"), map[string]any{"users": map[string]string{}}, nil)
		crWant(t, "PL change without power", status, res, 403, "")
		if pl := alice.stateContent(t, roomID, "m.room.power_levels", ""); pl.Get("users").Exists() {
			t.Fatalf("old state changed: %s", pl.Raw)
		}
	})
}

func TestComplementRoomForget(t *testing.T) {
	base := crServer(t)
	alice := crUser(t, base, "alice")
	bob := crUser(t, base, "bob")
	forget := func(t *testing.T, c *crClient, roomID string) (int, gjson.Result) {
		return c.do(t, "POST", crV3("rooms", roomID, "forget"), map[string]any{}, nil)
	}
	includeLeave := `{"room":{"include_leave":true}}`

	t.Run("Can't forget room you're still in", func(t *testing.T) {
		roomID := alice.createRoom(t, map[string]any{"preset": "private_chat"})
		status, res := forget(t, alice, roomID)
		crWant(t, "forget while joined", status, res, 400, "M_UNKNOWN")
	})
	t.Run("Forgotten room messages cannot be paginated", func(t *testing.T) {
		roomID := alice.createRoom(t, map[string]any{"preset": "public_chat"})
		bob.joinRoom(t, roomID)
		alice.sendEventSynced(t, roomID, "m.room.message", crMsg("Hello world!"))
		alice.leaveRoom(t, roomID)
		alice.mustDo(t, "POST", crV3("rooms", roomID, "forget"), map[string]any{}, nil)
		status, res := alice.do(t, "GET", crV3("rooms", roomID, "messages"), nil, nil)
		crWant(t, "messages after forget", status, res, 403, "M_FORBIDDEN")
	})
	t.Run("Forgetting room does not show up in v2 initial /sync", func(t *testing.T) {
		roomID := alice.createRoom(t, map[string]any{"preset": "public_chat"})
		bob.joinRoom(t, roomID)
		alice.sendEventSynced(t, roomID, "m.room.message", crMsg("Hello world!"))
		alice.leaveRoom(t, roomID)
		bob.mustSyncUntil(t, crSyncReq{}, crLeftFrom(alice.UserID, roomID))
		alice.mustDo(t, "POST", crV3("rooms", roomID, "forget"), map[string]any{}, nil)
		bob.sendEventSynced(t, roomID, "m.room.message", crMsg("Hello world!"))
		res, _ := alice.mustSync(t, crSyncReq{Filter: includeLeave})
		for _, section := range []string{"archived", "join", "invite", "leave"} {
			if res.Get("rooms." + section + "." + crEsc(roomID)).Exists() {
				t.Fatalf("forgotten room in rooms.%s", section)
			}
		}
	})
	t.Run("Leave for forgotten room shows up in v2 incremental /sync", func(t *testing.T) {
		roomID := alice.createRoom(t, map[string]any{"preset": "public_chat"})
		bob.joinRoom(t, roomID)
		alice.sendEventSynced(t, roomID, "m.room.message", crMsg("Hello world!"))
		before := alice.mustSyncUntil(t, crSyncReq{}, crJoinedTo(alice.UserID, roomID))
		alice.leaveRoom(t, roomID)
		bob.mustSyncUntil(t, crSyncReq{}, crLeftFrom(alice.UserID, roomID))
		alice.mustDo(t, "POST", crV3("rooms", roomID, "forget"), map[string]any{}, nil)
		bob.sendEventSynced(t, roomID, "m.room.message", crMsg("Hello world!"))
		res, _ := alice.mustSync(t, crSyncReq{Since: before, Filter: includeLeave})
		if !res.Get("rooms.leave." + crEsc(roomID)).Exists() {
			t.Fatalf("leave of the forgotten room not in the incremental sync: %s", res.Get("rooms").Raw)
		}
	})
	t.Run("Can forget room you've been kicked from", func(t *testing.T) {
		roomID := alice.createRoom(t, map[string]any{"preset": "public_chat"})
		bob.joinRoom(t, roomID)
		alice.sendEventSynced(t, roomID, "m.room.message", crMsg("Hello world!"))
		alice.mustDo(t, "POST", crV3("rooms", roomID, "kick"), map[string]any{"user_id": bob.UserID}, nil)
		alice.mustSyncUntil(t, crSyncReq{}, crLeftFrom(bob.UserID, roomID))
		res, _ := bob.mustSync(t, crSyncReq{})
		for _, section := range []string{"archived", "join", "invite"} {
			if res.Get("rooms." + section + "." + crEsc(roomID)).Exists() {
				t.Fatalf("kicked room in rooms.%s", section)
			}
		}
		bob.mustDo(t, "POST", crV3("rooms", roomID, "forget"), map[string]any{}, nil)
	})
	t.Run("Can re-join room if re-invited", func(t *testing.T) {
		roomID := alice.createRoom(t, map[string]any{"preset": "private_chat"})
		alice.inviteRoom(t, roomID, bob.UserID)
		alice.sendStateSynced(t, roomID, "m.room.join_rules", "", map[string]any{"join_rule": "invite"})
		bob.joinRoom(t, roomID)
		messageID := alice.sendEventSynced(t, roomID, "m.room.message", crMsg("Before leave"))
		bob.leaveRoom(t, roomID)
		alice.mustSyncUntil(t, crSyncReq{}, crLeftFrom(bob.UserID, roomID))
		bob.mustDo(t, "POST", crV3("rooms", roomID, "forget"), map[string]any{}, nil)
		status, res := bob.do(t, "POST", crV3("join", roomID), map[string]any{}, nil)
		crWant(t, "rejoin without invite", status, res, 403, "M_FORBIDDEN")
		alice.inviteRoom(t, roomID, bob.UserID)
		bob.joinRoom(t, roomID)
		q := url.Values{"dir": {"b"}, "limit": {"100"}}
		page := bob.mustDo(t, "GET", crV3("rooms", roomID, "messages"), nil, q)
		if crLoop(page, "chunk", func(r gjson.Result) bool { return r.Get("event_id").Str == messageID }) != nil {
			t.Fatalf("'Before leave' not visible after rejoin: %s", page.Raw)
		}
		messageID = alice.sendEventSynced(t, roomID, "m.room.message", crMsg("After rejoin"))
		q.Set("limit", "1")
		page = bob.mustDo(t, "GET", crV3("rooms", roomID, "messages"), nil, q)
		if crLoop(page, "chunk", func(r gjson.Result) bool { return r.Get("event_id").Str == messageID }) != nil {
			t.Fatalf("'After rejoin' not visible: %s", page.Raw)
		}
	})
	t.Run("Can forget room we weren't an actual member", func(t *testing.T) {
		roomID := alice.createRoom(t, map[string]any{"preset": "private_chat"})
		alice.inviteRoom(t, roomID, bob.UserID)
		bob.leaveRoom(t, roomID)
		bob.mustDo(t, "POST", crV3("rooms", roomID, "forget"), map[string]any{}, nil)
		alice.leaveRoom(t, roomID)
		alice.mustDo(t, "POST", crV3("rooms", roomID, "forget"), map[string]any{}, nil)
	})
}
