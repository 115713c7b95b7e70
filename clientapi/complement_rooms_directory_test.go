package clientapi

import (
	"testing"

	"github.com/tidwall/gjson"
)

// Complement: tests/csapi/apidoc_room_alias_test.go (TestRoomAlias,
// TestRoomDeleteAlias, TestRoomCanonicalAlias), public_rooms_test.go, and
// knocking_test.go's TestKnockRoomsInPublicRoomsDirectory.

func crSetAlias(t *testing.T, c *crClient, roomID, alias string) (int, gjson.Result) {
	return c.do(t, "PUT", crV3("directory", "room", alias), map[string]any{"room_id": roomID}, nil)
}

func crCanonical(t *testing.T, c *crClient, roomID, alias string, alt []string) (int, gjson.Result) {
	content := map[string]any{"alias": alias}
	if alt != nil {
		content["alt_aliases"] = alt
	}
	return c.do(t, "PUT", crV3("rooms", roomID, "state", "m.room.canonical_alias"), content, nil)
}

func TestComplementRoomAlias(t *testing.T) {
	base := crServer(t)
	alice := crUser(t, base, "alice")
	bob := crUser(t, base, "bob")
	mustSet := func(t *testing.T, c *crClient, roomID, alias string) {
		t.Helper()
		status, res := crSetAlias(t, c, roomID, alias)
		crWant(t, "set alias "+alias, status, res, 200, "")
	}
	mustResolve := func(t *testing.T, c *crClient, alias, roomID string) {
		t.Helper()
		if got := c.mustDo(t, "GET", crV3("directory", "room", alias), nil, nil).Get("room_id").Str; got != roomID {
			t.Fatalf("%s resolves to %q, want %s", alias, got, roomID)
		}
	}
	del := func(t *testing.T, c *crClient, alias string) (int, gjson.Result) {
		return c.do(t, "DELETE", crV3("directory", "room", alias), nil, nil)
	}

	t.Run("PUT /directory/room/:room_alias creates alias", func(t *testing.T) {
		roomID := alice.createRoom(t, nil)
		mustSet(t, alice, roomID, "#creates_alias:test.local")
		mustResolve(t, alice, "#creates_alias:test.local", roomID)
	})
	t.Run("GET /rooms/:room_id/aliases lists aliases", func(t *testing.T) {
		roomID := alice.createRoom(t, nil)
		if res := alice.mustDo(t, "GET", crV3("rooms", roomID, "aliases"), nil, nil); res.Get("aliases").Raw != "[]" {
			t.Fatalf("aliases: %s", res.Raw)
		}
		mustSet(t, alice, roomID, "#lists_aliases:test.local")
		res := alice.mustDo(t, "GET", crV3("rooms", roomID, "aliases"), nil, nil)
		if res.Get("aliases").Raw != `["#lists_aliases:test.local"]` {
			t.Fatalf("aliases: %s", res.Raw)
		}
	})
	t.Run("Only room members can list aliases of a room", func(t *testing.T) {
		roomID := alice.createRoom(t, nil)
		mustSet(t, alice, roomID, "#room_members_list:test.local")
		mustResolve(t, alice, "#room_members_list:test.local", roomID)
		status, res := bob.do(t, "GET", crV3("rooms", roomID, "aliases"), nil, nil)
		crWant(t, "non-member lists aliases", status, res, 403, "")
	})
	t.Run("Room aliases can contain Unicode", func(t *testing.T) {
		const alias = "#老虎Â£я🤨👉ඞ:test.local"
		roomID := alice.createRoom(t, nil)
		mustSet(t, alice, roomID, alias)
		mustResolve(t, alice, alias, roomID)
	})

	t.Run("Alias creators can delete alias with no ops", func(t *testing.T) {
		roomID := alice.createRoom(t, map[string]any{"preset": "public_chat"})
		bob.joinRoom(t, roomID)
		bob.mustSyncUntil(t, crSyncReq{}, crJoinedTo(bob.UserID, roomID))
		mustSet(t, bob, roomID, "#no_ops_delete:test.local")
		mustResolve(t, bob, "#no_ops_delete:test.local", roomID)
		status, res := del(t, bob, "#no_ops_delete:test.local")
		crWant(t, "delete own alias", status, res, 200, "")
	})
	t.Run("Alias creators can delete canonical alias with no ops", func(t *testing.T) {
		roomID := alice.createRoom(t, map[string]any{"preset": "public_chat"})
		bob.joinRoom(t, roomID)
		bob.mustSyncUntil(t, crSyncReq{}, crJoinedTo(bob.UserID, roomID))
		mustSet(t, bob, roomID, "#no_ops_delete_canonical:test.local")
		mustResolve(t, bob, "#no_ops_delete_canonical:test.local", roomID)
		alice.sendStateSynced(t, roomID, "m.room.canonical_alias", "", map[string]any{"alias": "#no_ops_delete_canonical:test.local"})
		status, res := del(t, bob, "#no_ops_delete_canonical:test.local")
		crWant(t, "delete own canonical alias", status, res, 200, "")
	})
	t.Run("Deleting a non-existent alias should return a 404", func(t *testing.T) {
		status, res := del(t, bob, "#scatman_portal:test.local")
		crWant(t, "delete missing alias", status, res, 404, "M_NOT_FOUND")
	})
	t.Run("Can delete canonical alias", func(t *testing.T) {
		roomID := alice.createRoom(t, nil)
		mustSet(t, alice, roomID, "#random_alias:test.local")
		alice.sendStateSynced(t, roomID, "m.room.canonical_alias", "", map[string]any{"alias": "#random_alias:test.local"})
		_, since := alice.mustSync(t, crSyncReq{Timeout: "0"})
		status, res := del(t, alice, "#random_alias:test.local")
		crWant(t, "delete canonical alias", status, res, 200, "")
		alice.mustSyncUntil(t, crSyncReq{Since: since}, crTimelineHas(roomID, func(ev gjson.Result) bool {
			return ev.Get("type").Str == "m.room.canonical_alias" && ev.Get("content").IsObject() && len(ev.Get("content").Map()) == 0
		}))
	})
	t.Run("Regular users can add and delete aliases in the default room configuration", func(t *testing.T) {
		roomID := alice.createRoom(t, nil)
		alice.inviteRoom(t, roomID, bob.UserID)
		bob.joinRoom(t, roomID)
		bob.mustSyncUntil(t, crSyncReq{}, crJoinedTo(bob.UserID, roomID))
		mustSet(t, bob, roomID, "#random_alias_2:test.local")
		mustResolve(t, alice, "#random_alias_2:test.local", roomID)
		status, res := del(t, bob, "#random_alias_2:test.local")
		crWant(t, "delete", status, res, 200, "")
	})
	t.Run("Regular users can add and delete aliases when m.room.aliases is restricted", func(t *testing.T) {
		roomID := alice.createRoom(t, nil)
		alice.inviteRoom(t, roomID, bob.UserID)
		bob.joinRoom(t, roomID)
		alice.sendStateSynced(t, roomID, "m.room.power_levels", "", map[string]any{
			"users": crPLUsers(t, alice, roomID, map[string]any{alice.UserID: 100}), "events": map[string]any{"m.room.aliases": 50}})
		mustSet(t, bob, roomID, "#random_alias_3:test.local")
		mustResolve(t, alice, "#random_alias_3:test.local", roomID)
		status, res := del(t, bob, "#random_alias_3:test.local")
		crWant(t, "delete", status, res, 200, "")
	})
	t.Run("Users can't delete other's aliases", func(t *testing.T) {
		roomID := alice.createRoom(t, nil)
		alice.inviteRoom(t, roomID, bob.UserID)
		bob.joinRoom(t, roomID)
		mustSet(t, alice, roomID, "#random_alias_4:test.local")
		mustResolve(t, bob, "#random_alias_4:test.local", roomID)
		status, res := del(t, bob, "#random_alias_4:test.local")
		crWant(t, "delete another's alias", status, res, 403, "M_FORBIDDEN")
	})
	t.Run("Users with sufficient power-level can delete other's aliases", func(t *testing.T) {
		roomID := alice.createRoom(t, nil)
		alice.inviteRoom(t, roomID, bob.UserID)
		bob.joinRoom(t, roomID)
		alice.sendStateSynced(t, roomID, "m.room.power_levels", "", map[string]any{
			"users": crPLUsers(t, alice, roomID, map[string]any{alice.UserID: 100, bob.UserID: 100})})
		mustSet(t, alice, roomID, "#random_alias_5:test.local")
		mustResolve(t, bob, "#random_alias_5:test.local", roomID)
		status, res := del(t, bob, "#random_alias_5:test.local")
		crWant(t, "delete as admin", status, res, 200, "")
	})
}

func TestComplementRoomCanonicalAlias(t *testing.T) {
	base := crServer(t)
	alice := crUser(t, base, "alice")
	set := func(t *testing.T, roomID, alias string) {
		t.Helper()
		status, res := crSetAlias(t, alice, roomID, alias)
		crWant(t, "set alias", status, res, 200, "")
	}
	for _, tc := range []struct {
		name, alias string
		alt         []string
		publish     []string // aliases to create on the room first
		wrongRoom   bool     // publish them on another room instead
		deleteFirst bool
		errcode     string
	}{
		{name: "m.room.canonical_alias accepts present aliases", alias: "#accepts_present_aliases:test.local", publish: []string{"#accepts_present_aliases:test.local"}},
		{name: "m.room.canonical_alias rejects missing aliases", alias: "#rejects_missing:test.local", errcode: "M_BAD_ALIAS"},
		{name: "m.room.canonical_alias rejects invalid aliases", alias: "%invalid_aliases:test.local", errcode: "M_INVALID_PARAM"},
		{name: "m.room.canonical_alias setting rejects deleted aliases", alias: "#deleted_aliases:test.local", publish: []string{"#deleted_aliases:test.local"}, deleteFirst: true, errcode: "M_BAD_ALIAS"},
		{name: "m.room.canonical_alias rejects alias pointing to different local room", alias: "#diffroom1:test.local", publish: []string{"#diffroom1:test.local"}, wrongRoom: true, errcode: "M_BAD_ALIAS"},
		{name: "m.room.canonical_alias accepts present alt_aliases", alias: "#alt_present_alias:test.local", alt: []string{"#alt_present_alias:test.local"}, publish: []string{"#alt_present_alias:test.local"}},
		{name: "m.room.canonical_alias rejects missing alt_aliases", alias: "#alt_missing:test.local", alt: []string{"#alt_missing_wrong:test.local"}, publish: []string{"#alt_missing:test.local"}, errcode: "M_BAD_ALIAS"},
		{name: "m.room.canonical_alias rejects invalid alt_aliases", alias: "#alt_invalid:test.local", alt: []string{"%alt_invalid_wrong:test.local"}, publish: []string{"#alt_invalid:test.local"}, errcode: "M_INVALID_PARAM"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			roomID := alice.createRoom(t, nil)
			target := roomID
			if tc.wrongRoom {
				target = alice.createRoom(t, nil)
			}
			for _, a := range tc.publish {
				set(t, target, a)
			}
			if tc.deleteFirst {
				alice.mustDo(t, "DELETE", crV3("directory", "room", tc.alias), nil, nil)
				status, res := alice.do(t, "GET", crV3("directory", "room", tc.alias), nil, nil)
				crWant(t, "deleted alias", status, res, 404, "")
			}
			status, res := crCanonical(t, alice, roomID, tc.alias, tc.alt)
			if tc.errcode == "" {
				crWant(t, "canonical alias", status, res, 200, "")
				alice.mustSyncUntil(t, crSyncReq{}, crTimelineHasEventID(roomID, res.Get("event_id").Str))
				return
			}
			crWant(t, "canonical alias", status, res, 400, tc.errcode)
		})
	}
	t.Run("m.room.canonical_alias rejects alt_alias pointing to different local room", func(t *testing.T) {
		room1, room2 := alice.createRoom(t, nil), alice.createRoom(t, nil)
		set(t, room1, "#alt_room1:test.local")
		set(t, room2, "#alt_room2:test.local")
		status, res := crCanonical(t, alice, room2, "#alt_room2:test.local", []string{"#alt_room1:test.local"})
		crWant(t, "alt alias of another room", status, res, 400, "M_BAD_ALIAS")
	})
}

func TestComplementPublicRooms(t *testing.T) {
	base := crServer(t)
	alice := crUser(t, base, "alice")

	t.Run("Can search public room list", func(t *testing.T) {
		roomID := alice.createRoom(t, map[string]any{"visibility": "public", "name": "Test Name", "topic": "Test Topic Wombles"})
		res := alice.mustDo(t, "POST", crV3("publicRooms"), map[string]any{"filter": map[string]any{"generic_search_term": "wombles"}}, nil)
		if chunk := res.Get("chunk").Array(); len(chunk) != 1 || chunk[0].Get("room_id").Str != roomID {
			t.Fatalf("search: %s", res.Raw)
		}
	})
	t.Run("Name/topic keys are correct", func(t *testing.T) {
		configs := []struct{ alias, name, topic string }{
			{"publicroomalias_no_name", "", ""},
			{"publicroomalias_with_name", "name_1", ""},
			{"publicroomalias_with_topic", "", "topic_1"},
			{"publicroomalias_with_name_topic", "name_2", "topic_2"},
			{"publicroom_with_unicode_chars_name", "un nom français", ""},
			{"publicroom_with_unicode_chars_topic", "", "un topic à la française"},
			{"publicroom_with_unicode_chars_name_topic", "un nom français", "un topic à la française"},
		}
		for _, c := range configs {
			body := map[string]any{"visibility": "public", "room_alias_name": c.alias}
			if c.name != "" {
				body["name"] = c.name
			}
			if c.topic != "" {
				body["topic"] = c.topic
			}
			alice.createRoom(t, body)
		}
		res := alice.mustDo(t, "GET", crV3("publicRooms"), nil, nil)
		found := 0
		for _, room := range res.Get("chunk").Array() {
			for _, k := range []string{"world_readable", "guest_can_join", "num_joined_members"} {
				if !room.Get(k).Exists() {
					t.Fatalf("room lacks %s: %s", k, room.Raw)
				}
			}
			for _, c := range configs {
				if room.Get("canonical_alias").Str != "#"+c.alias+":test.local" {
					continue
				}
				found++
				if room.Get("num_joined_members").Int() != 1 || room.Get("name").Str != c.name || room.Get("topic").Str != c.topic {
					t.Fatalf("%s: %s", c.alias, room.Raw)
				}
			}
		}
		if found != len(configs) {
			t.Fatalf("found %d of %d rooms: %s", found, len(configs), res.Raw)
		}
	})
	t.Run("TestKnockRoomsInPublicRoomsDirectory", func(t *testing.T) {
		check := func(t *testing.T, roomID, joinRule string) {
			t.Helper()
			alice.mustDo(t, "PUT", crV3("directory", "list", "room", roomID), map[string]string{"visibility": "public"}, nil)
			res := alice.mustDo(t, "GET", crV3("publicRooms"), nil, nil)
			if crLoop(res, "chunk", func(r gjson.Result) bool {
				return r.Get("room_id").Str == roomID && r.Get("join_rule").Str == joinRule
			}) != nil {
				t.Fatalf("room %s with join_rule %s not listed: %s", roomID, joinRule, res.Raw)
			}
		}
		roomID := alice.createRoom(t, map[string]any{"preset": "private_chat", "room_version": "7"})
		alice.sendStateSynced(t, roomID, "m.room.join_rules", "", map[string]any{"join_rule": "knock"})
		check(t, roomID, "knock")
		check(t, alice.createRoom(t, map[string]any{"preset": "public_chat"}), "public")
	})
}

// sytest tests/30rooms/70publicroomslist.pl: "Can paginate public room list".
func TestComplementPublicRoomsPagination(t *testing.T) {
	base := crServer(t)
	alice := crUser(t, base, "alice")
	for i := 0; i < 10; i++ {
		alice.createRoom(t, map[string]any{"visibility": "public"})
	}
	total := len(alice.mustDo(t, "GET", crV3("publicRooms"), nil, nil).Get("chunk").Array())
	walk := func(t *testing.T, key, token string) (map[string]int, string, string) {
		counts := map[string]int{}
		next, prev := "", ""
		for i := 0; i < 20; i++ {
			body := map[string]any{"limit": 3}
			if token != "" {
				body["since"] = token
			}
			res := alice.mustDo(t, "POST", crV3("publicRooms"), body, nil)
			chunk := res.Get("chunk").Array()
			if len(chunk) > 3 {
				t.Fatalf("too many results: %s", res.Raw)
			}
			for _, r := range chunk {
				counts[r.Get("room_id").Str]++
			}
			next, prev = res.Get("next_batch").Str, res.Get("prev_batch").Str
			token = res.Get(key).Str
			if token == "" {
				return counts, next, prev
			}
		}
		t.Fatalf("pagination did not end")
		return nil, "", ""
	}
	counts, _, prev := walk(t, "next_batch", "")
	if len(counts) != total {
		t.Fatalf("forwards: %d of %d rooms", len(counts), total)
	}
	for room, n := range counts {
		if n != 1 {
			t.Fatalf("forwards: %s seen %d times", room, n)
		}
	}
	counts, _, _ = walk(t, "prev_batch", prev)
	if len(counts) < total-3 {
		t.Fatalf("backwards: %d of %d rooms", len(counts), total)
	}
	for room, n := range counts {
		if n != 1 {
			t.Fatalf("backwards: %s seen %d times", room, n)
		}
	}
}
