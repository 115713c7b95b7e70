package clientapi

import (
	"testing"
	"time"

	"github.com/tidwall/gjson"
)

// Complement: tests/csapi/apidoc_room_state_test.go (TestRoomState) and
// rooms_state_test.go (TestRoomCreationReportsEventsToMyself).

func TestComplementRoomState(t *testing.T) {
	base := crServer(t)
	alice := crUser(t, base, "alice")
	public := map[string]any{"visibility": "public", "preset": "public_chat"}
	with := func(extra map[string]any) map[string]any {
		out := map[string]any{"visibility": "public", "preset": "public_chat"}
		for k, v := range extra {
			out[k] = v
		}
		return out
	}

	t.Run("GET /rooms/:room_id/state/m.room.member/:user_id fetches my membership", func(t *testing.T) {
		roomID := alice.createRoom(t, public)
		res := alice.stateContent(t, roomID, "m.room.member", alice.UserID)
		if res.Get("membership").Type != gjson.String || res.Get("membership").Str != "join" {
			t.Fatalf("membership: %s", res.Raw)
		}
	})
	t.Run("GET /rooms/:room_id/state/m.room.member/:user_id?format=event fetches my membership event", func(t *testing.T) {
		roomID := alice.createRoom(t, public)
		res := alice.mustDo(t, "GET", crV3("rooms", roomID, "state", "m.room.member", alice.UserID), nil,
			map[string][]string{"format": {"event"}})
		if res.Get("sender").Str != alice.UserID || res.Get("room_id").Str != roomID || res.Get("content.membership").Str != "join" {
			t.Fatalf("event: %s", res.Raw)
		}
	})
	t.Run("GET /rooms/:room_id/state/m.room.power_levels fetches powerlevels", func(t *testing.T) {
		roomID := alice.createRoom(t, with(map[string]any{"room_alias_name": "room_alias"}))
		res := alice.stateContent(t, roomID, "m.room.power_levels", "")
		for _, k := range []string{"ban", "kick", "redact", "users_default", "state_default", "events_default", "users", "events"} {
			if !res.Get(k).Exists() {
				t.Fatalf("power levels lack %s: %s", k, res.Raw)
			}
		}
	})
	t.Run("GET /rooms/:room_id/joined_members fetches my membership", func(t *testing.T) {
		roomID := alice.createRoom(t, public)
		res := alice.mustDo(t, "GET", crV3("rooms", roomID, "joined_members"), nil, nil)
		me := "joined." + crEsc(alice.UserID)
		for _, k := range []string{"joined", me, me + ".display_name", me + ".avatar_url"} {
			if !res.Get(k).Exists() {
				t.Fatalf("joined_members lacks %s: %s", k, res.Raw)
			}
		}
	})
	t.Run("GET /publicRooms lists newly-created room", func(t *testing.T) {
		roomID := alice.createRoom(t, public)
		res := alice.mustDo(t, "GET", crV3("publicRooms"), nil, nil)
		if crLoop(res, "chunk", func(r gjson.Result) bool { return r.Get("room_id").Str == roomID }) != nil {
			t.Fatalf("room not listed: %s", res.Raw)
		}
	})
	t.Run("GET /directory/room/:room_alias yields room ID", func(t *testing.T) {
		roomID := alice.createRoom(t, with(map[string]any{"room_alias_name": "room_new"}))
		res := alice.mustDo(t, "GET", crV3("directory", "room", "#room_new:test.local"), nil, nil)
		if res.Get("room_id").Str != roomID || !res.Get("servers").Exists() {
			t.Fatalf("alias: %s", res.Raw)
		}
	})
	t.Run("GET /joined_rooms lists newly-created room", func(t *testing.T) {
		roomID := alice.createRoom(t, public)
		res := alice.mustDo(t, "GET", crV3("joined_rooms"), nil, nil)
		if crLoop(res, "joined_rooms", func(r gjson.Result) bool { return r.Str == roomID }) != nil {
			t.Fatalf("joined_rooms: %s", res.Raw)
		}
	})
	t.Run("GET /rooms/:room_id/state/m.room.name gets name", func(t *testing.T) {
		roomID := alice.createRoom(t, with(map[string]any{"name": "room_name_test"}))
		if got := alice.stateContent(t, roomID, "m.room.name", "").Get("name").Str; got != "room_name_test" {
			t.Fatalf("name %q", got)
		}
	})
	t.Run("PUT /rooms/:room_id/state/m.room.name sets name", func(t *testing.T) {
		roomID := alice.createRoom(t, public)
		alice.mustDo(t, "PUT", crV3("rooms", roomID, "state", "m.room.name"), map[string]any{"name": "room_test_name"}, nil)
		if got := alice.stateContent(t, roomID, "m.room.name", "").Get("name").Str; got != "room_test_name" {
			t.Fatalf("name %q", got)
		}
	})
	t.Run("PUT /rooms/:room_id/state/m.room.topic sets topic", func(t *testing.T) {
		roomID := alice.createRoom(t, with(map[string]any{"topic": "room_topic_test"}))
		if got := alice.stateContent(t, roomID, "m.room.topic", "").Get("topic").Str; got != "room_topic_test" {
			t.Fatalf("topic %q", got)
		}
		alice.mustDo(t, "PUT", crV3("rooms", roomID, "state", "m.room.topic"), map[string]any{"topic": "room_test_topic"}, nil)
		if got := alice.stateContent(t, roomID, "m.room.topic", "").Get("topic").Str; got != "room_test_topic" {
			t.Fatalf("topic %q", got)
		}
	})
	t.Run("GET /rooms/:room_id/state fetches entire room state", func(t *testing.T) {
		roomID := alice.createRoom(t, with(map[string]any{"name": "room_test", "topic": "room_topic_test"}))
		want := map[string]bool{"m.room.create": true, "m.room.join_rules": true, "m.room.name": true,
			"m.room.power_levels": true, "m.room.topic": true}
		for _, ev := range alice.mustDo(t, "GET", crV3("rooms", roomID, "state"), nil, nil).Array() {
			delete(want, ev.Get("type").Str)
		}
		if len(want) != 0 {
			t.Fatalf("state lacks %v", want)
		}
	})
	t.Run("PUT /createRoom with creation content", func(t *testing.T) {
		roomID := alice.createRoom(t, with(map[string]any{"creation_content": map[string]any{"m.federate": false}}))
		res := alice.stateContent(t, roomID, "m.room.create", "")
		if f := res.Get(`m\.federate`); !f.Exists() || f.Bool() {
			t.Fatalf("create content: %s", res.Raw)
		}
	})
	t.Run("GET /rooms/:room_id/joined_members is forbidden after leaving room", func(t *testing.T) {
		roomID := alice.createRoom(t, nil)
		alice.leaveRoom(t, roomID)
		status, res := alice.do(t, "GET", "/_matrix/client/r0"+crPath("rooms", roomID, "joined_members"), nil, nil)
		crWant(t, "joined_members after leave", status, res, 403, "M_FORBIDDEN")
	})
}

func TestComplementRoomCreationReportsEventsToMyself(t *testing.T) {
	base := crServer(t)
	alice := crUser(t, base, "alice")
	bob := crUser(t, base, "bob")
	roomID := alice.createRoom(t, nil)

	t.Run("Room creation reports m.room.create to myself", func(t *testing.T) {
		alice.mustSyncUntil(t, crSyncReq{}, crTimelineHas(roomID, func(ev gjson.Result) bool {
			return ev.Get("type").Str == "m.room.create" && ev.Get("sender").Str == alice.UserID
		}))
	})
	t.Run("Room creation reports m.room.member to myself", func(t *testing.T) {
		alice.mustSyncUntil(t, crSyncReq{}, crJoinedTo(alice.UserID, roomID, func(ev gjson.Result) bool {
			return ev.Get("sender").Str == alice.UserID
		}))
	})
	t.Run("Setting room topic reports m.room.topic to myself", func(t *testing.T) {
		alice.sendStateSynced(t, roomID, "m.room.topic", "", map[string]any{"topic": "Testing topic for the new room"})
		alice.mustSyncUntil(t, crSyncReq{}, crTimelineHas(roomID, func(ev gjson.Result) bool {
			return ev.Get("type").Str == "m.room.topic" && ev.Get("state_key").Exists() &&
				ev.Get("content.topic").Str == "Testing topic for the new room"
		}))
	})
	t.Run("Setting state twice is idempotent", func(t *testing.T) {
		content := map[string]any{"a_key": "a_value"}
		first := alice.sendStateSynced(t, roomID, "a.test.state.type", "", content)
		second := alice.sendStateSynced(t, roomID, "a.test.state.type", "", content)
		if first != second {
			t.Fatalf("state events differ: %s %s", first, second)
		}
	})
	t.Run("Joining room twice is idempotent", func(t *testing.T) {
		room2 := bob.createRoom(t, map[string]any{"visibility": "public", "preset": "public_chat"})
		alice.joinRoom(t, room2)
		alice.mustSyncUntil(t, crSyncReq{}, crJoinedTo(alice.UserID, room2))
		first := crStateEventID(t, alice, room2, "m.room.member", alice.UserID)
		alice.joinRoom(t, room2)
		time.Sleep(200 * time.Millisecond)
		if second := crStateEventID(t, alice, room2, "m.room.member", alice.UserID); first != second {
			t.Fatalf("second join made a new event: %s %s", first, second)
		}
	})
}

func crStateEventID(t *testing.T, c *crClient, roomID, evType, stateKey string) string {
	t.Helper()
	for _, ev := range c.mustDo(t, "GET", crV3("rooms", roomID, "state"), nil, nil).Array() {
		if ev.Get("type").Str == evType && ev.Get("state_key").Str == stateKey {
			return ev.Get("event_id").Str
		}
	}
	return ""
}
