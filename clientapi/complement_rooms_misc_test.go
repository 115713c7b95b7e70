package clientapi

import (
	"fmt"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// Complement: tests/csapi/apidoc_room_create_rich_topic_test.go,
// invalid_test.go (TestJson, TestEvent) and apidoc_search_test.go.

func TestComplementRoomCreateRichTopic(t *testing.T) {
	base := crServer(t)
	alice := crUser(t, base, "alice")
	for _, tc := range []struct {
		name string
		body map[string]any
	}{
		{"POST /createRoom sets m.topic when the topic parameter is supplied", map[string]any{"topic": "Test Room", "preset": "public_chat"}},
		{"POST /createRoom makes sets m.topic when the topic parameter is supplied in addition to initial_state", map[string]any{
			"topic": "Test Room", "preset": "public_chat", "initial_state": []map[string]any{
				{"type": "m.room.topic", "state_key": "", "content": map[string]any{"topic": "Shenanigans"}}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			content := alice.stateContent(t, alice.createRoom(t, tc.body), "m.room.topic", "")
			text := content.Get(`m\.topic.m\.text`).Array()
			if content.Get("topic").Str != "Test Room" || len(text) != 1 || text[0].Get("body").Str != "Test Room" {
				t.Fatalf("topic content: %s", content.Raw)
			}
			if mime := text[0].Get("mimetype"); mime.Exists() && mime.Str != "text/plain" {
				t.Fatalf("mimetype %q", mime.Str)
			}
		})
	}
}

func TestComplementJSONAndEventLimits(t *testing.T) {
	base := crServer(t)
	alice := crUser(t, base, "alice")
	roomID := alice.createRoom(t, nil)
	txn := 0
	send := func(t *testing.T, raw string) (int, gjson.Result) {
		txn++
		return alice.do(t, "PUT", crV3("rooms", roomID, "send", "complement.dummy", fmt.Sprint("json-", txn)), []byte(raw), nil)
	}

	t.Run("Invalid numerical values", func(t *testing.T) {
		for _, raw := range []string{`{"body": 9007199254740992}`, `{"body": -9007199254740992}`, `{"body": 1.1}`} {
			status, res := send(t, raw)
			crWant(t, raw, status, res, 400, "M_BAD_JSON")
		}
	})
	t.Run("Invalid JSON special values", func(t *testing.T) {
		for _, raw := range []string{`{"body": Infinity}`, `{"body": -Infinity}`, `{"body": NaN}`} {
			status, res := send(t, raw)
			crWant(t, raw, status, res, 400, "")
		}
	})
	t.Run("Large Event", func(t *testing.T) {
		status, res := alice.do(t, "PUT", crV3("rooms", roomID, "send", "m.room.message", "1"),
			map[string]any{"msgtype": "m.text", "body": strings.Repeat("and they dont stop coming ", 2700)}, nil)
		crWant(t, "large event", status, res, 413, "")
	})
	t.Run("Large State Event", func(t *testing.T) {
		status, res := alice.do(t, "PUT", crV3("rooms", roomID, "state", "marvel.universe.fate"),
			map[string]any{"body": strings.Repeat("Dormammu, I've Come To Bargain.\n", 2200)}, nil)
		crWant(t, "large state event", status, res, 413, "")
	})
}

func TestComplementSearch(t *testing.T) {
	base := crServer(t)
	alice := crUser(t, base, "alice")
	const sce = "search_categories.room_events"
	search := func(t *testing.T, body map[string]any, nextBatch string) gjson.Result {
		q := map[string][]string{}
		if nextBatch != "" {
			q["next_batch"] = []string{nextBatch}
		}
		return alice.mustDo(t, "POST", crV3("search"), map[string]any{"search_categories": map[string]any{"room_events": body}}, q)
	}

	t.Run("Can search for an event by body", func(t *testing.T) {
		roomID := alice.createRoom(t, map[string]any{"preset": "private_chat"})
		eventID := alice.sendEventSynced(t, roomID, "m.room.message", crMsg("hello, world"))
		res := search(t, map[string]any{"keys": []string{"content.body"}, "search_term": "hello", "filter": map[string]any{"rooms": []string{roomID}}}, "")
		r0 := res.Get(sce + ".results.0.result")
		if res.Get(sce+".count").Num != 1 || r0.Get("event_id").Str != eventID || r0.Get("room_id").Str != roomID ||
			!r0.Get("type").Exists() || r0.Get("content.body").Str != "hello, world" {
			t.Fatalf("search: %s", res.Raw)
		}
	})
	t.Run("Can get context around search results", func(t *testing.T) {
		roomID := alice.createRoom(t, map[string]any{"preset": "private_chat"})
		for i := 1; i <= 7; i++ {
			alice.sendEventSynced(t, roomID, "m.room.message", crMsg(fmt.Sprintf("Message number %d", i)))
		}
		res := search(t, map[string]any{"keys": []string{"content.body"}, "search_term": "Message 4", "order_by": "recent",
			"filter": map[string]any{"limit": 1, "rooms": []string{roomID}}, "event_context": map[string]any{"before_limit": 2, "after_limit": 2}}, "")
		r := res.Get(sce + ".results.0")
		if !res.Get(sce+".next_batch").Exists() || res.Get(sce+".count").Num != 1 || r.Get("result.room_id").Str != roomID ||
			r.Get("result.content.body").Str != "Message number 4" ||
			r.Get("context.events_before.0.content.body").Str != "Message number 3" || r.Get("context.events_before.1.content.body").Str != "Message number 2" ||
			r.Get("context.events_after.0.content.body").Str != "Message number 5" || r.Get("context.events_after.1.content.body").Str != "Message number 6" {
			t.Fatalf("search: %s", res.Raw)
		}
	})
	t.Run("Can back-paginate search results", func(t *testing.T) {
		roomID := alice.createRoom(t, map[string]any{"preset": "private_chat"})
		var ids []string
		for i := 0; i < 20; i++ {
			ids = append(ids, alice.sendEventSynced(t, roomID, "m.room.message", crMsg(fmt.Sprintf("Message number %d", i))))
		}
		body := map[string]any{"keys": []string{"content.body"}, "search_term": "Message", "order_by": "recent",
			"filter": map[string]any{"limit": 10, "rooms": []string{roomID}}}
		next := ""
		for _, want := range [][2]string{{ids[19], ids[10]}, {ids[9], ids[0]}} {
			res := search(t, body, next)
			next = res.Get(sce + ".next_batch").Str
			if next == "" || res.Get(sce+".count").Num != 20 || res.Get(sce+".results.0.result.event_id").Str != want[0] ||
				res.Get(sce+".results.9.result.event_id").Str != want[1] {
				t.Fatalf("page: %s", res.Raw)
			}
		}
		res := search(t, body, next)
		if res.Get(sce+".count").Num != 20 || res.Get(sce+".results.0.result").Exists() || res.Get(sce+".next_batch").Exists() {
			t.Fatalf("last page: %s", res.Raw)
		}
	})
	for _, ordering := range []string{"rank", "recent"} {
		t.Run(fmt.Sprintf("Search results with %s ordering do not include redacted events", ordering), func(t *testing.T) {
			roomID := alice.createRoom(t, map[string]any{"preset": "private_chat"})
			redacted := alice.sendEventSynced(t, roomID, "m.room.message", crMsg("This message is going to be redacted"))
			visible := alice.sendEventSynced(t, roomID, "m.room.message", crMsg("This message is not going to be redacted"))
			redaction := alice.mustDo(t, "PUT", crV3("rooms", roomID, "redact", redacted, "r-"+ordering), map[string]any{"reason": "testing"}, nil).Get("event_id").Str
			alice.mustSyncUntil(t, crSyncReq{}, crTimelineHasEventID(roomID, redaction))
			res := search(t, map[string]any{"keys": []string{"content.body"}, "order_by": ordering, "search_term": "redacted",
				"filter": map[string]any{"rooms": []string{roomID}}}, "")
			results := res.Get(sce + ".results").Array()
			if len(results) != 1 || results[0].Get("result.event_id").Str != visible {
				t.Fatalf("search: %s", res.Raw)
			}
		})
	}
}

// tests/csapi/direct_message_create_test.go.
func TestComplementDirectMessageCreate(t *testing.T) {
	base := crServer(t)
	alice := crUser(t, base, "alice")
	bob := crUser(t, base, "bob")
	roomID := alice.createRoom(t, map[string]any{"invite": []string{bob.UserID}, "is_direct": true})
	next := bob.mustSyncUntil(t, crSyncReq{}, crInvitedTo(bob.UserID, roomID))
	bob.joinRoom(t, roomID)
	bob.mustSyncUntil(t, crSyncReq{}, crTimelineHas(roomID, crMemberIs(bob.UserID, "join")))
	res, _ := bob.mustSync(t, crSyncReq{Since: next})
	joins := 0
	for _, ev := range res.Get("rooms.join." + crEsc(roomID) + ".timeline.events").Array() {
		if crMemberIs(bob.UserID, "join")(ev) {
			joins++
		}
	}
	if joins != 1 {
		t.Fatalf("%d joins of bob in the timeline", joins)
	}
}

// tests/restricted_rooms_test.go: TestRestrictedRoomsLocalJoin (v8).
func TestComplementRestrictedRoomsLocalJoin(t *testing.T) {
	base := crServer(t)
	alice := crUser(t, base, "alice")
	bob := crUser(t, base, "bob")
	allowed := alice.createRoom(t, map[string]any{"preset": "public_chat", "name": "Allowed Room"})
	room := alice.createRoom(t, map[string]any{"preset": "public_chat", "name": "Room", "room_version": "8",
		"initial_state": []map[string]any{{"type": "m.room.join_rules", "state_key": "", "content": map[string]any{
			"join_rule": "restricted", "allow": []map[string]any{{"type": "m.room_membership", "room_id": allowed, "via": []string{"test.local"}}}}}}})
	mustFail := func(t *testing.T) {
		t.Helper()
		if status, res := bob.do(t, "POST", crV3("join", room), map[string]any{}, nil); status < 400 {
			t.Fatalf("join should fail: %d %s", status, res.Raw)
		}
	}
	t.Run("Join should fail initially", mustFail)
	t.Run("Join should succeed when joined to allowed room", func(t *testing.T) {
		bob.joinRoom(t, allowed)
		bob.sendStateSynced(t, allowed, "m.room.member", bob.UserID, map[string]any{"membership": "join", "displayname": "Bobby"})
		bob.joinRoom(t, room)
		bob.sendStateSynced(t, room, "m.room.member", bob.UserID, map[string]any{"membership": "join", "displayname": "Bobby",
			"join_authorised_via_users_server": "unused"})
	})
	t.Run("Join should fail when left allowed room", func(t *testing.T) {
		bob.leaveRoom(t, room)
		bob.leaveRoom(t, allowed)
		alice.mustSyncUntil(t, crSyncReq{}, crLeftFrom(bob.UserID, allowed))
		mustFail(t)
	})
	t.Run("Join should succeed when invited", func(t *testing.T) {
		alice.inviteRoom(t, room, bob.UserID)
		bob.joinRoom(t, room)
		bob.leaveRoom(t, room)
		bob.joinRoom(t, allowed)
	})
	t.Run("Join should fail with mangled join rules", func(t *testing.T) {
		alice.sendStateSynced(t, room, "m.room.join_rules", "", map[string]any{"join_rule": "restricted", "allow": []string{"invalid"}})
		mustFail(t)
		alice.sendStateSynced(t, room, "m.room.join_rules", "", map[string]any{"join_rule": "restricted", "allow": "invalid"})
		mustFail(t)
	})
}

// tests/direct_messaging_test.go: TestIsDirectFlagLocal.
func TestComplementIsDirectFlagLocal(t *testing.T) {
	base := crServer(t)
	alice := crUser(t, base, "alice")
	bob := crUser(t, base, "bob")
	roomID := alice.createRoom(t, map[string]any{"invite": []string{bob.UserID}, "is_direct": true})
	bob.mustSyncUntil(t, crSyncReq{}, func(_ string, res gjson.Result) error {
		return crLoop(res, "rooms.invite."+crEsc(roomID)+".invite_state.events", func(ev gjson.Result) bool {
			return crMemberIs(bob.UserID, "invite")(ev) && ev.Get("content.is_direct").Bool()
		})
	})
}
