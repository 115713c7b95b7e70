package clientapi

import (
	"fmt"
	"testing"

	"github.com/tidwall/gjson"
)

// Complement: tests/csapi/thread_notifications_test.go (TestThreadedReceipts)
// and ignored_users_test.go.

func crUnread(roomID string, check func(main, threads gjson.Result) bool) crCheck {
	return func(_ string, res gjson.Result) error {
		room := res.Get("rooms.join." + crEsc(roomID))
		main, threads := room.Get("unread_notifications"), room.Get("unread_thread_notifications")
		if !main.Exists() {
			return fmt.Errorf("no unread_notifications")
		}
		if !check(main, threads) {
			return fmt.Errorf("counts %s / %s", main.Raw, threads.Raw)
		}
		return nil
	}
}

func crCounts(r gjson.Result, highlight, notification float64) bool {
	return r.Get("highlight_count").Num == highlight && r.Get("notification_count").Num == notification
}

func TestComplementThreadedReceipts(t *testing.T) {
	base := crServer(t)
	alice := crUser(t, base, "alice")
	bob := crUser(t, base, "bob")
	roomID := alice.createRoom(t, map[string]any{"preset": "public_chat"})
	bob.joinRoom(t, roomID)
	token := bob.mustSyncUntil(t, crSyncReq{}, crJoinedTo(bob.UserID, roomID))

	// Complement mentions bob in the body alone, which highlights through
	// .m.rule.contains_user_name; spec v1.17 removed that rule, so the
	// mentions here are also intentional (m.mentions), which v1.19 highlights.
	mention := func(content map[string]any) map[string]any {
		content["m.mentions"] = map[string]any{"user_ids": []string{bob.UserID}}
		return content
	}
	first := alice.sendEventSynced(t, roomID, "m.room.message", crMsg("Hello world!"))
	firstThread := alice.sendEventSynced(t, roomID, "m.room.message", crThreadReply("Start thread!", first))
	alice.sendEventSynced(t, roomID, "m.room.message", mention(crThreadReply(fmt.Sprintf("Thread response %s!", bob.UserID), first)))
	second := alice.sendEventSynced(t, roomID, "m.room.message", mention(crMsg(fmt.Sprintf("Hello %s!", bob.UserID))))
	const threadFilter = `{"room":{"timeline":{"unread_thread_notifications":true}}}`

	// expect checks both sync forms: unthreaded totals, then main + thread.
	expect := func(t *testing.T, totalH, totalN, mainH, mainN, threadH, threadN float64) {
		t.Helper()
		bob.mustSyncUntil(t, crSyncReq{Since: token}, crTimelineHasEventID(roomID, second),
			crUnread(roomID, func(main, threads gjson.Result) bool {
				return crCounts(main, totalH, totalN) && !threads.Exists()
			}))
		bob.mustSyncUntil(t, crSyncReq{Since: token, Filter: threadFilter}, crTimelineHasEventID(roomID, second),
			crUnread(roomID, func(main, threads gjson.Result) bool {
				if threadN == 0 {
					return crCounts(main, mainH, mainN) && !threads.Exists()
				}
				return crCounts(main, mainH, mainN) && crCounts(threads.Get(crEsc(first)), threadH, threadN)
			}))
	}
	receipt := func(t *testing.T, eventID string, body map[string]any) {
		bob.mustDo(t, "POST", crV3("rooms", roomID, "receipt", "m.read", eventID), body, nil)
	}

	t.Run("counts before any receipt", func(t *testing.T) { expect(t, 2, 4, 1, 2, 1, 2) })
	t.Run("main-timeline receipt", func(t *testing.T) {
		receipt(t, first, map[string]any{"thread_id": "main"})
		expect(t, 2, 3, 1, 1, 1, 2)
	})
	t.Run("thread receipt", func(t *testing.T) {
		receipt(t, firstThread, map[string]any{"thread_id": first})
		expect(t, 2, 2, 1, 1, 1, 1)
	})
	t.Run("unthreaded receipt clears everything", func(t *testing.T) {
		receipt(t, second, map[string]any{})
		expect(t, 0, 0, 0, 0, 0, 0)
	})
}

func TestComplementInviteFromIgnoredUsersDoesNotAppearInSync(t *testing.T) {
	base := crServer(t)
	alice := crUser(t, base, "alice")
	bob := crUser(t, base, "bob")
	chris := crUser(t, base, "chris")
	publicRoom := alice.createRoom(t, map[string]any{"preset": "public_chat"})
	alice.mustSyncUntil(t, crSyncReq{}, crJoinedTo(alice.UserID, publicRoom))
	alice.mustDo(t, "PUT", crV3("user", alice.UserID, "account_data", "m.ignored_user_list"),
		map[string]any{"ignored_users": map[string]any{bob.UserID: map[string]any{}}}, nil)
	since := alice.mustSyncUntil(t, crSyncReq{}, func(_ string, res gjson.Result) error {
		return crLoop(res, "account_data.events", func(ev gjson.Result) bool {
			return ev.Get("type").Str == "m.ignored_user_list" && ev.Get("content.ignored_users."+crEsc(bob.UserID)).Exists()
		})
	})
	bobRoom := bob.createRoom(t, map[string]any{"preset": "private_chat", "invite": []string{alice.UserID}})
	chrisRoom := chris.createRoom(t, map[string]any{"preset": "private_chat", "invite": []string{alice.UserID}})
	alice.mustSyncUntil(t, crSyncReq{}, crInvitedTo(alice.UserID, chrisRoom))
	res, _ := alice.mustSync(t, crSyncReq{Since: since, Timeout: "0"})
	if res.Get("rooms.invite."+crEsc(bobRoom)).Exists() || !res.Get("rooms.invite."+crEsc(chrisRoom)).Exists() {
		t.Fatalf("invites: %s", res.Get("rooms.invite").Raw)
	}

	// Beyond Complement: the ignored user's messages are hidden too.
	bob.joinRoom(t, publicRoom)
	chris.joinRoom(t, publicRoom)
	hidden := bob.sendEvent(t, publicRoom, "m.room.message", crMsg("ignore me"))
	shown := chris.sendEvent(t, publicRoom, "m.room.message", crMsg("not me"))
	res, _ = alice.mustSync(t, crSyncReq{Since: since})
	if crTimelineHasEventID(publicRoom, shown)(alice.UserID, res) != nil || crTimelineHasEventID(publicRoom, hidden)(alice.UserID, res) == nil {
		t.Fatalf("timeline should hold chris's message and not bob's: %s", res.Get("rooms.join").Raw)
	}
	page := alice.mustDo(t, "GET", crV3("rooms", publicRoom, "messages"), nil, map[string][]string{"dir": {"b"}})
	for _, ev := range page.Get("chunk").Array() {
		if ev.Get("event_id").Str == hidden {
			t.Fatalf("ignored user's message in /messages")
		}
	}
}
