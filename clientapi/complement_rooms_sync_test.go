package clientapi

import (
	"fmt"
	"testing"
	"time"

	"github.com/tidwall/gjson"
)

// Complement: tests/csapi/sync_test.go, sync_timeline_test.go,
// rooms_members_local_test.go (sync_filter_test.go is in
// complement_accounts_userdata_test.go).

func crSendMessages(t *testing.T, c *crClient, roomID, evType, prefix string, n int) []string {
	t.Helper()
	var ids []string
	for i := 0; i < n; i++ {
		ids = append(ids, c.sendEventSynced(t, roomID, evType, crMsg(fmt.Sprintf("%s%d", prefix, i))))
	}
	return ids
}

func crCheckJoinFields(t *testing.T, res gjson.Result, roomID string) {
	t.Helper()
	room := res.Get("rooms.join." + crEsc(roomID))
	for _, k := range []string{"timeline.events", "timeline.limited", "timeline.prev_batch"} {
		if !room.Get(k).Exists() {
			t.Fatalf("%s missing: %s", k, room.Raw)
		}
	}
	for _, k := range []string{"state.events", "ephemeral.events"} {
		if !room.Get(k).IsArray() {
			t.Fatalf("%s not an array: %s", k, room.Raw)
		}
	}
}

func TestComplementCumulativeJoinLeaveJoinSync(t *testing.T) {
	base := crServer(t)
	alice := crUser(t, base, "alice")
	bob := crUser(t, base, "bob")
	roomID := bob.createRoom(t, map[string]any{"preset": "public_chat"})
	_, since := alice.mustSync(t, crSyncReq{Timeout: "0"})
	alice.joinRoom(t, roomID)
	sinceJoin := alice.mustSyncUntil(t, crSyncReq{}, crJoinedTo(alice.UserID, roomID))
	alice.leaveRoom(t, roomID)
	sinceLeave := alice.mustSyncUntil(t, crSyncReq{Since: sinceJoin}, crLeftFrom(alice.UserID, roomID))
	alice.joinRoom(t, roomID)
	alice.mustSyncUntil(t, crSyncReq{Since: sinceLeave}, crJoinedTo(alice.UserID, roomID))
	res, _ := alice.mustSync(t, crSyncReq{Timeout: "0", Since: since})
	if res.Get("rooms.leave." + crEsc(roomID)).Exists() {
		t.Fatalf("joined-left-joined room in the leave section")
	}
}

func TestComplementTentativeEventualJoiningAfterRejecting(t *testing.T) {
	base := crServer(t)
	alice := crUser(t, base, "alice")
	bob := crUser(t, base, "bob")
	roomID := alice.createRoom(t, map[string]any{"preset": "public_chat"})
	_, since := alice.mustSync(t, crSyncReq{Timeout: "0"})
	alice.inviteRoom(t, roomID, bob.UserID)
	bob.mustSyncUntil(t, crSyncReq{}, crInvitedTo(bob.UserID, roomID))
	bob.leaveRoom(t, roomID)
	poll := func(wantLeave bool) {
		t.Helper()
		start := time.Now()
		for {
			var res gjson.Result
			res, since = bob.mustSync(t, crSyncReq{Timeout: "0", FullState: true, Since: since})
			if res.Get("rooms.leave."+crEsc(roomID)).Exists() == wantLeave {
				return
			}
			if time.Since(start) > time.Second {
				t.Fatalf("leave section shown: %v, want %v", !wantLeave, wantLeave)
			}
		}
	}
	poll(true)
	bob.joinRoom(t, roomID)
	poll(false)
}

func TestComplementSync(t *testing.T) {
	base := crServer(t)
	alice := crUser(t, base, "alice")
	bob := crUser(t, base, "bob")
	filterID := alice.createFilter(t, map[string]any{"room": map[string]any{"timeline": map[string]any{"limit": 10}}})

	t.Run("Can sync a joined room", func(t *testing.T) {
		roomID := alice.createRoom(t, struct{}{})
		alice.mustSyncUntil(t, crSyncReq{}, crJoinedTo(alice.UserID, roomID))
		res, next := alice.mustSync(t, crSyncReq{Filter: filterID})
		crCheckJoinFields(t, res, roomID)
		res, _ = alice.mustSync(t, crSyncReq{Filter: filterID, Since: next})
		if res.Get("rooms.join." + crEsc(roomID)).Exists() {
			t.Fatalf("unchanged room in the sync")
		}
	})
	t.Run("Full state sync includes joined rooms", func(t *testing.T) {
		roomID := alice.createRoom(t, struct{}{})
		alice.mustSyncUntil(t, crSyncReq{}, crJoinedTo(alice.UserID, roomID))
		_, next := alice.mustSync(t, crSyncReq{Filter: filterID})
		res, _ := alice.mustSync(t, crSyncReq{Filter: filterID, Since: next, FullState: true})
		crCheckJoinFields(t, res, roomID)
	})
	t.Run("Newly joined room is included in an incremental sync", func(t *testing.T) {
		_, next := alice.mustSync(t, crSyncReq{Filter: filterID})
		roomID := alice.createRoom(t, struct{}{})
		alice.mustSyncUntil(t, crSyncReq{}, crJoinedTo(alice.UserID, roomID))
		res, next := alice.mustSync(t, crSyncReq{Filter: filterID, Since: next})
		crCheckJoinFields(t, res, roomID)
		res, _ = alice.mustSync(t, crSyncReq{Filter: filterID, Since: next})
		if res.Get("rooms.join." + crEsc(roomID)).Exists() {
			t.Fatalf("unchanged room in the sync")
		}
	})
	t.Run("Newly joined room has correct timeline in incremental sync", func(t *testing.T) {
		filterBob := bob.createFilter(t, map[string]any{"room": map[string]any{
			"timeline": map[string]any{"limit": 10, "types": []string{"m.room.message"}},
			"state":    map[string]any{"types": []string{}}}})
		roomID := alice.createRoom(t, map[string]any{"preset": "public_chat"})
		alice.mustSyncUntil(t, crSyncReq{}, crJoinedTo(alice.UserID, roomID))
		crSendMessages(t, alice, roomID, "m.room.message", "alice message 1-", 4)
		_, next := bob.mustSync(t, crSyncReq{Filter: filterBob})
		crSendMessages(t, alice, roomID, "m.room.message", "alice message 2-", 4)
		bob.joinRoom(t, roomID)
		alice.mustSyncUntil(t, crSyncReq{}, crJoinedTo(bob.UserID, roomID))
		res, _ := bob.mustSync(t, crSyncReq{Filter: filterBob, Since: next})
		timeline := res.Get("rooms.join." + crEsc(roomID) + ".timeline")
		evs := timeline.Get("events").Array()
		for _, ev := range evs {
			if ev.Get("type").Str != "m.room.message" {
				t.Fatalf("not a message: %s", ev.Raw)
			}
		}
		if (len(evs) == 6) == timeline.Get("limited").Bool() {
			t.Fatalf("%d events, limited %v", len(evs), timeline.Get("limited").Bool())
		}
	})
	t.Run("Newly joined room includes presence in incremental sync", func(t *testing.T) {
		roomID := alice.createRoom(t, map[string]any{"preset": "public_chat"})
		alice.mustSyncUntil(t, crSyncReq{}, crJoinedTo(alice.UserID, roomID))
		_, next := bob.mustSync(t, crSyncReq{})
		bob.joinRoom(t, roomID)
		alice.mustSyncUntil(t, crSyncReq{}, crJoinedTo(bob.UserID, roomID))
		next = bob.mustSyncUntil(t, crSyncReq{Since: next}, crPresenceHas(alice.UserID))
		res, _ := bob.mustSync(t, crSyncReq{Since: next})
		if n := len(res.Get("presence.events").Array()); n != 0 {
			t.Fatalf("%d presence events again: %s", n, res.Get("presence").Raw)
		}
	})
	t.Run("Get presence for newly joined members in incremental sync", func(t *testing.T) {
		roomID := alice.createRoom(t, map[string]any{"preset": "public_chat"})
		next := alice.mustSyncUntil(t, crSyncReq{}, crJoinedTo(alice.UserID, roomID))
		crSendMessages(t, alice, roomID, "m.room.message", "dummy message", 1)
		_, next = alice.mustSync(t, crSyncReq{Since: next})
		bob.joinRoom(t, roomID)
		alice.mustSyncUntil(t, crSyncReq{}, crJoinedTo(bob.UserID, roomID))
		next = alice.mustSyncUntil(t, crSyncReq{Since: next}, crPresenceHas(bob.UserID))
		res, _ := alice.mustSync(t, crSyncReq{Since: next})
		if n := len(res.Get("presence.events").Array()); n != 0 {
			t.Fatalf("%d presence events again: %s", n, res.Get("presence").Raw)
		}
	})
}

func TestComplementPresenceSyncDifferentRooms(t *testing.T) {
	base := crServer(t)
	alice := crUser(t, base, "alice")
	bob := crUser(t, base, "bob")
	charlie := crUser(t, base, "charlie")
	bobRoom, charlieRoom := alice.createRoom(t, struct{}{}), alice.createRoom(t, struct{}{})
	next := alice.mustSyncUntil(t, crSyncReq{}, crJoinedTo(alice.UserID, bobRoom), crJoinedTo(alice.UserID, charlieRoom))
	alice.inviteRoom(t, bobRoom, bob.UserID)
	alice.inviteRoom(t, charlieRoom, charlie.UserID)
	bob.joinRoom(t, bobRoom)
	charlie.joinRoom(t, charlieRoom)
	next = alice.mustSyncUntil(t, crSyncReq{Since: next}, crJoinedTo(bob.UserID, bobRoom), crJoinedTo(charlie.UserID, charlieRoom))
	for _, c := range []*crClient{bob, charlie} {
		c.mustDo(t, "PUT", crV3("presence", c.UserID, "status"), map[string]any{"presence": "online"}, nil)
	}
	online := func(userID string) crCheck {
		return func(_ string, res gjson.Result) error {
			return crLoop(res, "presence.events", func(ev gjson.Result) bool {
				return ev.Get("sender").Str == userID && ev.Get("content.presence").Str == "online"
			})
		}
	}
	alice.mustSyncUntil(t, crSyncReq{Since: next}, online(bob.UserID), online(charlie.UserID))
}

func TestComplementMembersLocal(t *testing.T) {
	base := crServer(t)
	alice := crUser(t, base, "alice")
	bob := crUser(t, base, "bob")
	roomID := alice.createRoom(t, map[string]any{"preset": "public_chat"})
	bob.mustDo(t, "PUT", crV3("presence", bob.UserID, "status"), map[string]any{"presence": "online"}, nil)
	_, incremental := alice.mustSync(t, crSyncReq{})
	bob.joinRoom(t, roomID)

	t.Run("New room members see their own join event", func(t *testing.T) {
		alice.mustSyncUntil(t, crSyncReq{}, crJoinedTo(alice.UserID, roomID))
	})
	t.Run("Existing members see new members' join events", func(t *testing.T) {
		alice.mustSyncUntil(t, crSyncReq{}, crJoinedTo(bob.UserID, roomID))
	})
	t.Run("Existing members see new members' presence in initial sync", func(t *testing.T) {
		alice.mustSyncUntil(t, crSyncReq{}, crJoinedTo(bob.UserID, roomID))
		alice.mustSyncUntil(t, crSyncReq{}, crJoinedTo(bob.UserID, roomID), crPresenceHas(bob.UserID))
	})
	t.Run("Existing members see new members' presence in incremental sync", func(t *testing.T) {
		alice.mustSyncUntil(t, crSyncReq{Since: incremental}, crJoinedTo(bob.UserID, roomID), crPresenceHas(bob.UserID))
	})
}

func TestComplementSyncTimeline(t *testing.T) {
	base := crServer(t)
	alice := crUser(t, base, "alice")
	limit1 := alice.createFilter(t, map[string]any{"room": map[string]any{"timeline": map[string]any{"limit": 1}}})
	roomTimeline := func(res gjson.Result, roomID string) gjson.Result {
		return res.Get("rooms.join." + crEsc(roomID) + ".timeline")
	}

	t.Run("Can sync a room with a single message", func(t *testing.T) {
		filterID := alice.createFilter(t, map[string]any{"room": map[string]any{"timeline": map[string]int{"limit": 2}}})
		roomID := alice.createRoom(t, struct{}{})
		ids := crSendMessages(t, alice, roomID, "m.room.message", "Test message ", 2)
		res, _ := alice.mustSync(t, crSyncReq{Filter: filterID})
		crCheckJoinFields(t, res, roomID)
		tl := roomTimeline(res, roomID)
		evs := tl.Get("events").Array()
		if len(evs) != 2 || evs[0].Get("event_id").Str != ids[0] || evs[1].Get("event_id").Str != ids[1] || !tl.Get("limited").Bool() {
			t.Fatalf("timeline: %s", tl.Raw)
		}
	})
	t.Run("A message sent after an initial sync appears in the timeline of an incremental sync.", func(t *testing.T) {
		filterID := alice.createFilter(t, map[string]any{"room": map[string]any{"timeline": map[string]any{"limit": 1}, "state": map[string]any{"types": []string{}}},
			"presence": map[string]any{"types": []string{}}})
		roomID := alice.createRoom(t, struct{}{})
		_, since := alice.mustSync(t, crSyncReq{Filter: filterID})
		eventID := alice.mustDo(t, "PUT", crV3("rooms", roomID, "send", "m.room.message", "my_transaction_id2"), crMsg("A test message"), nil).Get("event_id").Str
		alice.mustSyncUntil(t, crSyncReq{}, crTimelineHasEventID(roomID, eventID))
		res, _ := alice.mustSync(t, crSyncReq{Filter: filterID, Since: since})
		tl := roomTimeline(res, roomID)
		evs := tl.Get("events").Array()
		if len(evs) != 1 || evs[0].Get("event_id").Str != eventID || evs[0].Get("unsigned.transaction_id").Str != "my_transaction_id2" || tl.Get("limited").Bool() {
			t.Fatalf("timeline: %s", tl.Raw)
		}
	})
	t.Run("A filtered timeline reaches its limit", func(t *testing.T) {
		filterID := alice.createFilter(t, map[string]any{"room": map[string]any{"timeline": map[string]any{"limit": 1, "types": []string{"m.room.message"}}},
			"presence": map[string]any{"types": []string{}}, "account_data": map[string]any{"types": []string{}}})
		roomID := alice.createRoom(t, struct{}{})
		eventID := alice.sendEventSynced(t, roomID, "m.room.message", crMsg("A test message"))
		crSendMessages(t, alice, roomID, "a.made.up.filler.type", "Test message ", 12)
		res, _ := alice.mustSync(t, crSyncReq{Filter: filterID})
		tl := roomTimeline(res, roomID)
		evs := tl.Get("events").Array()
		if len(evs) != 1 || evs[0].Get("event_id").Str != eventID || tl.Get("limited").Bool() {
			t.Fatalf("timeline: %s", tl.Raw)
		}
	})
	t.Run("Syncing a new room with a large timeline limit isn't limited", func(t *testing.T) {
		filterID := alice.createFilter(t, map[string]any{"room": map[string]any{"timeline": map[string]any{"limit": 100}}})
		roomID := alice.createRoom(t, struct{}{})
		res, _ := alice.mustSync(t, crSyncReq{Filter: filterID})
		if roomTimeline(res, roomID).Get("limited").Bool() {
			t.Fatalf("limited: %s", roomTimeline(res, roomID).Raw)
		}
	})
	t.Run("A full_state incremental update returns only recent timeline", func(t *testing.T) {
		roomID := alice.createRoom(t, struct{}{})
		_, since := alice.mustSync(t, crSyncReq{Filter: limit1})
		crSendMessages(t, alice, roomID, "a.made.up.filler.type", "Test message ", 11)
		crSendMessages(t, alice, roomID, "another.filler.type", "Test message ", 1)
		res, _ := alice.mustSync(t, crSyncReq{Filter: limit1, Since: since, FullState: true})
		evs := roomTimeline(res, roomID).Get("events").Array()
		if len(evs) != 1 || evs[0].Get("type").Str != "another.filler.type" {
			t.Fatalf("timeline: %s", roomTimeline(res, roomID).Raw)
		}
	})
	t.Run("A prev_batch token can be used in the v1 messages API", func(t *testing.T) {
		roomID := alice.createRoom(t, struct{}{})
		ids := crSendMessages(t, alice, roomID, "m.room.message", "Test message ", 2)
		res, _ := alice.mustSync(t, crSyncReq{Filter: limit1})
		tl := roomTimeline(res, roomID)
		if evs := tl.Get("events").Array(); len(evs) != 1 || evs[0].Get("event_id").Str != ids[1] || !tl.Get("limited").Bool() {
			t.Fatalf("timeline: %s", tl.Raw)
		}
		page := alice.mustDo(t, "GET", "/_matrix/client/r0"+crPath("rooms", roomID, "messages"), nil,
			map[string][]string{"dir": {"b"}, "from": {tl.Get("prev_batch").Str}, "limit": {"1"}})
		if evs := page.Get("chunk").Array(); len(evs) != 1 || evs[0].Get("content.body").Str != "Test message 0" {
			t.Fatalf("page: %s", page.Raw)
		}
	})
	t.Run("A prev_batch token from incremental sync can be used in the v1 messages API", func(t *testing.T) {
		roomID := alice.createRoom(t, struct{}{})
		first := crSendMessages(t, alice, roomID, "m.room.message", "Test message ", 1)
		_, since := alice.mustSync(t, crSyncReq{Filter: limit1})
		second := crSendMessages(t, alice, roomID, "m.room.message", "Test message ", 1)
		res, _ := alice.mustSync(t, crSyncReq{Filter: limit1, Since: since})
		tl := roomTimeline(res, roomID)
		if evs := tl.Get("events").Array(); len(evs) != 1 || evs[0].Get("event_id").Str != second[0] {
			t.Fatalf("timeline: %s", tl.Raw)
		}
		page := alice.mustDo(t, "GET", "/_matrix/client/r0"+crPath("rooms", roomID, "messages"), nil,
			map[string][]string{"dir": {"b"}, "from": {tl.Get("prev_batch").Str}, "limit": {"1"}})
		if evs := page.Get("chunk").Array(); len(evs) != 1 || evs[0].Get("event_id").Str != first[0] {
			t.Fatalf("page: %s", page.Raw)
		}
	})
}
