package clientapi

import (
	"net/url"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// Complement: tests/csapi/sync_archive_test.go and room_leave_test.go.

func TestComplementSyncLeaveSection(t *testing.T) {
	base := crServer(t)
	alice := crUser(t, base, "alice")
	includeLeave := alice.createFilter(t, map[string]any{"room": map[string]any{"include_leave": true}})
	roomID := alice.createRoom(t, nil)
	alice.mustSyncUntil(t, crSyncReq{}, crJoinedTo(alice.UserID, roomID))
	_, fullStateSince := alice.mustSync(t, crSyncReq{Filter: includeLeave, Timeout: "0"})
	_, incrementalSince := alice.mustSync(t, crSyncReq{Timeout: "0"})
	alice.leaveRoom(t, roomID)

	t.Run("Left rooms appear in the leave section of sync", func(t *testing.T) {
		alice.mustSyncUntil(t, crSyncReq{Filter: includeLeave}, crLeftFrom(alice.UserID, roomID))
	})
	t.Run("Left rooms appear in the leave section of full state sync", func(t *testing.T) {
		alice.mustSyncUntil(t, crSyncReq{Since: fullStateSince, Filter: includeLeave, FullState: true}, crLeftFrom(alice.UserID, roomID))
	})
	t.Run("Newly left rooms appear in the leave section of incremental sync", func(t *testing.T) {
		alice.mustSyncUntil(t, crSyncReq{Since: incrementalSince}, crLeftFrom(alice.UserID, roomID))
	})
}

func TestComplementGappedSyncLeaveSection(t *testing.T) {
	base := crServer(t)
	alice := crUser(t, base, "alice")
	gappy := alice.createFilter(t, map[string]any{"room": map[string]any{"timeline": map[string]int{"limit": 1}, "include_leave": true}})
	roomToLeave, roomToSpam := alice.createRoom(t, nil), alice.createRoom(t, nil)
	_, since := alice.mustSync(t, crSyncReq{Filter: gappy, Timeout: "0"})
	alice.leaveRoom(t, roomToLeave)
	for i := 0; i < 20; i++ {
		alice.sendEventSynced(t, roomToSpam, "m.room.message", crMsg("Mr Anderson..."))
	}
	alice.mustSyncUntil(t, crSyncReq{Filter: gappy, Since: since}, crLeftFrom(alice.UserID, roomToLeave))
}

func TestComplementArchivedRoomsHistory(t *testing.T) {
	base := crServer(t)
	alice := crUser(t, base, "alice")
	bob := crUser(t, base, "bob")
	const madeUp = "a.madeup.test.state"
	bobFilter := bob.createFilter(t, map[string]any{"room": map[string]any{
		"timeline": map[string][]string{"types": {"m.room.message", madeUp}},
		"state":    map[string][]string{"types": {madeUp}}, "include_leave": true}})
	roomID := alice.createRoom(t, map[string]any{"preset": "public_chat"})
	bob.joinRoom(t, roomID)
	bob.mustSyncUntil(t, crSyncReq{}, crJoinedTo(bob.UserID, roomID))
	_, bobSince := bob.mustSync(t, crSyncReq{Filter: bobFilter, Timeout: "0"})
	alice.sendEventSynced(t, roomID, "m.room.message", crMsg("before"))
	alice.sendStateSynced(t, roomID, madeUp, "", map[string]any{"my_key": "before"})
	bob.leaveRoom(t, roomID)
	alice.mustSyncUntil(t, crSyncReq{}, crLeftFrom(bob.UserID, roomID))
	alice.sendEventSynced(t, roomID, "m.room.message", crMsg("after"))
	alice.sendStateSynced(t, roomID, madeUp, "", map[string]any{"my_key": "after"})

	exhaustive := func(t *testing.T, res gjson.Result) {
		t.Helper()
		room := res.Get("rooms.leave." + crEsc(roomID))
		if n := len(room.Get("state.events").Array()); n != 0 {
			t.Fatalf("want no state events: %s", room.Raw)
		}
		evs := room.Get("timeline.events").Array()
		if len(evs) != 2 || evs[0].Get("content.body").Str != "before" {
			t.Fatalf("want the two events from before leaving: %s", room.Raw)
		}
	}
	t.Run("timeline has events/initial sync", func(t *testing.T) {
		res, _ := bob.mustSync(t, crSyncReq{Filter: bobFilter})
		exhaustive(t, res)
	})
	t.Run("timeline has events/incremental sync", func(t *testing.T) {
		res, _ := bob.mustSync(t, crSyncReq{Filter: bobFilter, Since: bobSince})
		exhaustive(t, res)
	})
	t.Run("timeline is empty/initial sync", func(t *testing.T) {
		res, _ := bob.mustSync(t, crSyncReq{Filter: `{ "room": { "timeline": { "limit": 0 }, "include_leave": true }}`})
		room := res.Get("rooms.leave." + crEsc(roomID))
		if !room.Get("timeline.events").IsArray() || len(room.Get("timeline.events").Array()) != 0 {
			t.Fatalf("want an empty timeline: %s", room.Raw)
		}
		foundLeave := false
		for _, ev := range room.Get("state.events").Array() {
			if ev.Get("type").Str == madeUp && ev.Get("content.my_key").Str != "before" {
				t.Fatalf("state from after the leave: %s", ev.Raw)
			}
			if ev.Get("type").Str == "m.room.member" && ev.Get("state_key").Str == bob.UserID {
				if ev.Get("content.membership").Str != "leave" {
					t.Fatalf("bob's membership: %s", ev.Raw)
				}
				foundLeave = true
			}
		}
		if !foundLeave {
			t.Fatalf("no leave event in state: %s", room.Raw)
		}
	})
}

func TestComplementOlderLeftRoomsNotInLeaveSection(t *testing.T) {
	base := crServer(t)
	alice := crUser(t, base, "alice")
	bob := crUser(t, base, "bob")
	aliceFilter := alice.createFilter(t, map[string]any{"room": map[string]any{"timeline": map[string]int{"limit": 1}, "include_leave": true}})
	roomToLeave := alice.createRoom(t, map[string]any{"preset": "public_chat"})
	roomToSpam := alice.createRoom(t, map[string]any{"preset": "public_chat"})
	bob.joinRoom(t, roomToLeave)
	bob.joinRoom(t, roomToSpam)
	bob.mustSyncUntil(t, crSyncReq{}, crJoinedTo(bob.UserID, roomToLeave), crJoinedTo(bob.UserID, roomToSpam))
	_, since := alice.mustSync(t, crSyncReq{Filter: aliceFilter, Timeout: "0"})
	alice.leaveRoom(t, roomToLeave)
	since = alice.mustSyncUntil(t, crSyncReq{Filter: aliceFilter, Since: since}, crLeftFrom(alice.UserID, roomToLeave))
	bob.sendStateSynced(t, roomToLeave, "m.room.member", bob.UserID, map[string]any{"membership": "join", "filler": "Welcome back"})
	for i := 0; i < 20; i++ {
		bob.sendEventSynced(t, roomToSpam, "m.room.message", crMsg("Mr Anderson..."))
	}
	res, _ := alice.mustSync(t, crSyncReq{Filter: aliceFilter, Since: since})
	if n := len(res.Get("rooms.leave").Map()); n != 0 {
		t.Fatalf("old left room shown again: %s", res.Get("rooms.leave").Raw)
	}
}

func TestComplementLeaveEventVisibility(t *testing.T) {
	base := crServer(t)
	alice := crUser(t, base, "alice")
	bob := crUser(t, base, "bob")
	aliceFilter := alice.createFilter(t, map[string]any{"room": map[string]any{"include_leave": true}})
	joinedOnly := []map[string]any{{"type": "m.room.history_visibility", "state_key": "", "content": map[string]any{"history_visibility": "joined"}}}

	t.Run("TestLeaveEventVisibility", func(t *testing.T) {
		roomID := alice.createRoom(t, map[string]any{"preset": "public_chat", "initial_state": joinedOnly})
		bob.joinRoom(t, roomID)
		since := alice.mustSyncUntil(t, crSyncReq{Filter: aliceFilter}, crJoinedTo(alice.UserID, roomID), crJoinedTo(bob.UserID, roomID))
		alice.leaveRoom(t, roomID)
		bob.mustSyncUntil(t, crSyncReq{}, crLeftFrom(alice.UserID, roomID))
		res, _ := alice.mustSync(t, crSyncReq{Filter: aliceFilter, Since: since, Timeout: "0"})
		room := res.Get("rooms.leave." + crEsc(roomID))
		if !room.Exists() || len(room.Get("state.events").Array()) != 0 {
			t.Fatalf("leave section: %s", room.Raw)
		}
		evs := room.Get("timeline.events").Array()
		if len(evs) != 1 || evs[0].Get("type").Str != "m.room.member" || evs[0].Get("sender").Str != alice.UserID ||
			evs[0].Get("content.membership").Str != "leave" {
			t.Fatalf("timeline: %s", room.Raw)
		}
	})
	t.Run("TestLeaveEventInviteRejection", func(t *testing.T) {
		roomID := bob.createRoom(t, map[string]any{"initial_state": joinedOnly})
		_, since := alice.mustSync(t, crSyncReq{Timeout: "0", Filter: aliceFilter})
		bob.inviteRoom(t, roomID, alice.UserID)
		since = alice.mustSyncUntil(t, crSyncReq{Filter: aliceFilter, Since: since}, crInvitedTo(alice.UserID, roomID))
		alice.leaveRoom(t, roomID)
		alice.mustSyncUntil(t, crSyncReq{Filter: aliceFilter, Since: since}, crLeftFrom(alice.UserID, roomID))
	})
}

func TestComplementLeftRoomFixture(t *testing.T) {
	base := crServer(t)
	alice := crUser(t, base, "alice")
	bob := crUser(t, base, "bob")
	charlie := crUser(t, base, "charlie")
	roomID := alice.createRoom(t, map[string]any{"preset": "public_chat", "initial_state": []map[string]any{
		{"type": "m.room.history_visibility", "state_key": "", "content": map[string]any{"history_visibility": "joined"}}}})
	bob.joinRoom(t, roomID)
	alice.mustSyncUntil(t, crSyncReq{}, crJoinedTo(bob.UserID, roomID))
	const madeUp = "madeup.test.state"
	alice.sendStateSynced(t, roomID, "m.room.name", "", map[string]any{"name": "N1. B's room name before A left"})
	alice.sendStateSynced(t, roomID, madeUp, "", map[string]any{"body": "S1. B's state before A left"})
	alice.sendEventSynced(t, roomID, "m.room.message", crMsg("M1. B's message before A left"))
	alice.sendEventSynced(t, roomID, "m.room.message", crMsg("M2. B's message before A left"))
	bob.leaveRoom(t, roomID)
	alice.mustSyncUntil(t, crSyncReq{}, crLeftFrom(bob.UserID, roomID))
	_, bobSince := bob.mustSync(t, crSyncReq{Timeout: "0"})
	alice.sendStateSynced(t, roomID, "m.room.name", "", map[string]any{"name": "N2. B's room name after A left"})
	alice.sendStateSynced(t, roomID, madeUp, "", map[string]any{"body": "S2. B's state after A left"})
	alice.sendEventSynced(t, roomID, "m.room.message", crMsg("M3. B's message after A left"))
	charlie.joinRoom(t, roomID)
	alice.mustSyncUntil(t, crSyncReq{}, crJoinedTo(charlie.UserID, roomID))

	t.Run("Can get rooms/{roomId}/state for a departed room", func(t *testing.T) {
		if got := bob.stateContent(t, roomID, madeUp, "").Get("body").Str; got != "S1. B's state before A left" {
			t.Fatalf("bob sees %q", got)
		}
		if got := alice.stateContent(t, roomID, madeUp, "").Get("body").Str; got != "S2. B's state after A left" {
			t.Fatalf("alice sees %q", got)
		}
	})
	t.Run("Can get rooms/{roomId}/members for a departed room", func(t *testing.T) {
		res := bob.mustDo(t, "GET", crV3("rooms", roomID, "members"), nil, nil)
		crCheckOff(t, "members", res.Get("chunk"), []string{
			"m.room.member|" + alice.UserID + "|join", "m.room.member|" + bob.UserID + "|leave",
		}, func(r gjson.Result) string {
			return strings.Join([]string{r.Get("type").Str, r.Get("state_key").Str, r.Get("content.membership").Str}, "|")
		})
	})
	t.Run("Can get rooms/{roomId}/messages for a departed room", func(t *testing.T) {
		res := bob.mustDo(t, "GET", crV3("rooms", roomID, "messages"), nil, url.Values{"dir": {"b"}, "limit": {"3"}, "from": {bobSince}})
		crCheckOff(t, "messages", res.Get("chunk"), []string{
			"m.room.message|M1. B's message before A left|", "m.room.message|M2. B's message before A left|", "m.room.member||" + bob.UserID,
		}, func(r gjson.Result) string {
			return strings.Join([]string{r.Get("type").Str, r.Get("content.body").Str, r.Get("state_key").Str}, "|")
		})
	})
	t.Run("Can get 'm.room.name' state for a departed room", func(t *testing.T) {
		if got := bob.stateContent(t, roomID, "m.room.name", "").Get("name").Str; got != "N1. B's room name before A left" {
			t.Fatalf("bob sees %q", got)
		}
		if got := alice.stateContent(t, roomID, "m.room.name", "").Get("name").Str; got != "N2. B's room name after A left" {
			t.Fatalf("alice sees %q", got)
		}
	})
	t.Run("Getting messages going forward is limited for a departed room", func(t *testing.T) {
		res := bob.mustDo(t, "GET", crV3("rooms", roomID, "messages"), nil, url.Values{"dir": {"f"}, "limit": {"100"}, "from": {bobSince}})
		if n := len(res.Get("chunk").Array()); n != 0 {
			t.Fatalf("%d events after leaving: %s", n, res.Raw)
		}
	})
}
