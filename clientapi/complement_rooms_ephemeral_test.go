package clientapi

import (
	"fmt"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/tidwall/gjson"
)

// Complement: tests/csapi/room_typing_test.go, apidoc_room_receipts_test.go,
// redact_test.go, tests/room_timestamp_to_event_test.go and the local part
// of tests/knocking_test.go.

func crTyping(t *testing.T, c *crClient, roomID string, typing bool, timeoutMS int) {
	t.Helper()
	c.mustDo(t, "PUT", crV3("rooms", roomID, "typing", c.UserID), map[string]any{"typing": typing, "timeout": timeoutMS}, nil)
}

func TestComplementTyping(t *testing.T) {
	base := crServer(t)
	alice := crUser(t, base, "alice")
	bob := crUser(t, base, "bob")
	charlie := crUser(t, base, "charlie")

	t.Run("TestTyping", func(t *testing.T) {
		roomID := alice.createRoom(t, map[string]any{"preset": "public_chat"})
		bob.joinRoom(t, roomID)
		token := bob.mustSyncUntil(t, crSyncReq{}, crJoinedTo(bob.UserID, roomID))
		crTyping(t, alice, roomID, true, 10000)
		bob.mustSyncUntil(t, crSyncReq{Since: token}, crUsersTyping(roomID, []string{alice.UserID}))
		crTyping(t, alice, roomID, false, 0)
		bob.mustSyncUntil(t, crSyncReq{Since: token}, crUsersTyping(roomID, []string{}))
	})
	t.Run("TestLeakyTyping", func(t *testing.T) {
		roomID := alice.createRoom(t, map[string]any{"preset": "public_chat"})
		bob.joinRoom(t, roomID)
		bobToken := bob.mustSyncUntil(t, crSyncReq{}, crJoinedTo(bob.UserID, roomID))
		_, charlieToken := charlie.mustSync(t, crSyncReq{Timeout: "0"})
		crTyping(t, alice, roomID, true, 10000)
		bob.mustSyncUntil(t, crSyncReq{Since: bobToken}, crUsersTyping(roomID, []string{alice.UserID}))
		res, _ := charlie.mustSync(t, crSyncReq{Timeout: "1000", Since: charlieToken})
		if res.Get("rooms.join." + crEsc(roomID)).Exists() {
			t.Fatalf("typing leaked to a non-member: %s", res.Raw)
		}
	})
}

func TestComplementReceipts(t *testing.T) {
	base := crServer(t)
	alice := crUser(t, base, "alice")
	setup := func(t *testing.T) (string, string) {
		roomID := alice.createRoom(t, map[string]any{"preset": "public_chat"})
		alice.mustSyncUntil(t, crSyncReq{}, crJoinedTo(alice.UserID, roomID))
		return roomID, alice.sendEventSynced(t, roomID, "m.room.message", crMsg("Hello world!"))
	}
	hasReceipt := func(roomID, eventID string) crCheck {
		return crEphemeralHas(roomID, func(ev gjson.Result) bool {
			return ev.Get("type").Str == "m.receipt" && ev.Get("content").Get(crEsc(eventID)).Get(`m\.read`).Get(crEsc(alice.UserID)).Exists()
		})
	}

	t.Run("TestRoomReceipts", func(t *testing.T) {
		roomID, eventID := setup(t)
		alice.mustDo(t, "POST", crV3("rooms", roomID, "receipt", "m.read", eventID), struct{}{}, nil)
		alice.mustSyncUntil(t, crSyncReq{}, hasReceipt(roomID, eventID))
	})
	t.Run("TestRoomReadMarkers", func(t *testing.T) {
		roomID, eventID := setup(t)
		alice.mustDo(t, "POST", crV3("rooms", roomID, "read_markers"), map[string]any{"m.fully_read": eventID, "m.read": eventID}, nil)
		alice.mustSyncUntil(t, crSyncReq{}, hasReceipt(roomID, eventID))
		alice.mustSyncUntil(t, crSyncReq{}, crRoomAccountDataHas(roomID, func(ev gjson.Result) bool {
			return ev.Get("type").Str == "m.fully_read" && ev.Get("content.event_id").Str == eventID
		}))
	})
}

func TestComplementRedact(t *testing.T) {
	base := crServer(t)
	alice := crUser(t, base, "alice")
	bob := crUser(t, base, "bob")
	roomID := alice.createRoom(t, map[string]any{"preset": "public_chat"})
	bob.joinRoom(t, roomID)
	eventID := alice.sendEventSynced(t, roomID, "m.room.message", crMsg("expected message body"))
	before := bob.mustDo(t, "GET", crV3("rooms", roomID, "event", eventID), nil, nil)
	if before.Get("content.body").Str != "expected message body" {
		t.Fatalf("before: %s", before.Raw)
	}
	redaction := alice.mustDo(t, "PUT", crV3("rooms", roomID, "redact", eventID, "redact-1"), map[string]any{"reason": "reasons..."}, nil).Get("event_id").Str
	alice.mustSyncUntil(t, crSyncReq{}, crTimelineHasEventID(roomID, redaction))
	after := bob.mustDo(t, "GET", crV3("rooms", roomID, "event", eventID), nil, nil)
	if after.Get("content").Raw != "{}" {
		t.Fatalf("content survived the redaction: %s", after.Raw)
	}
}

func TestComplementJumpToDate(t *testing.T) {
	base := crServer(t)
	alice := crUser(t, base, "alice")
	outsider := crUser(t, base, "outsider")
	type evTime struct {
		id            string
		before, after time.Time
	}
	createTestRoom := func(t *testing.T) (string, evTime, evTime) {
		roomID := alice.createRoom(t, map[string]any{"preset": "public_chat"})
		beforeA := time.Now()
		a := alice.sendEventSynced(t, roomID, "m.room.message", crMsg("Message A"))
		afterA := time.Now()
		b := alice.sendEventSynced(t, roomID, "m.room.message", crMsg("Message B"))
		return roomID, evTime{a, beforeA, afterA}, evTime{b, afterA, time.Now()}
	}
	lookup := func(t *testing.T, c *crClient, roomID string, at time.Time, dir, want string) {
		t.Helper()
		// Complement's timestamps are milliseconds, and sleeps keep the
		// clock apart from the events it brackets.
		status, res := c.do(t, "GET", crV1("rooms", roomID, "timestamp_to_event"), nil, url.Values{
			"ts": {strconv.FormatInt(at.UnixMilli(), 10)}, "dir": {dir}})
		switch {
		case status == 200 && res.Get("event_id").Str == want && want != "":
		case status == 404 && want == "":
		default:
			t.Fatalf("ts %d dir %s: want %q, got %d %s", at.UnixMilli(), dir, want, status, res.Raw)
		}
	}
	gap := func() { time.Sleep(3 * time.Millisecond) }

	t.Run("should find event after given timestamp", func(t *testing.T) {
		roomID, a, _ := createTestRoom(t)
		lookup(t, alice, roomID, a.before, "f", a.id)
	})
	t.Run("should find event before given timestamp", func(t *testing.T) {
		roomID, _, b := createTestRoom(t)
		gap()
		lookup(t, alice, roomID, b.after, "b", b.id)
	})
	t.Run("should find nothing before the earliest timestamp", func(t *testing.T) {
		before := time.Now()
		gap()
		roomID, _, _ := createTestRoom(t)
		lookup(t, alice, roomID, before, "b", "")
	})
	t.Run("should find nothing after the latest timestamp", func(t *testing.T) {
		roomID, _, b := createTestRoom(t)
		gap()
		lookup(t, alice, roomID, b.after.Add(time.Millisecond), "f", "")
	})
	for _, preset := range []string{"private_chat", "public_chat"} {
		t.Run("should not be able to query a "+preset+" room you are not a member of", func(t *testing.T) {
			roomID := alice.createRoom(t, map[string]any{"preset": preset})
			status, res := outsider.do(t, "GET", crV1("rooms", roomID, "timestamp_to_event"), nil, url.Values{
				"ts": {strconv.FormatInt(time.Now().UnixMilli(), 10)}, "dir": {"f"}})
			crWant(t, "outsider", status, res, 403, "")
		})
	}
}

// TestKnocking's steps between two users of this server, in a v7 room.
func TestComplementKnocking(t *testing.T) {
	base := crServer(t)
	alice := crUser(t, base, "alice")
	bob := crUser(t, base, "bob")
	roomID := alice.createRoom(t, map[string]any{"preset": "private_chat", "room_version": "7"})
	knock := func(t *testing.T, reason string, want int) {
		t.Helper()
		body := map[string]any{}
		if reason != "" {
			body["reason"] = reason
		}
		status, res := bob.do(t, "POST", crV3("knock", roomID), body, url.Values{"server_name": {"test.local"}})
		crWant(t, "knock", status, res, want, "")
	}
	knockSynced := func(t *testing.T, reason string) {
		t.Helper()
		knock(t, reason, 200)
		bob.mustSyncUntil(t, crSyncReq{}, func(_ string, res gjson.Result) error {
			if !res.Get("rooms.knock." + crEsc(roomID) + ".knock_state.events").IsArray() {
				return fmt.Errorf("no knock section for %s", roomID)
			}
			return nil
		})
	}
	memberEventIs := func(membership string) crCheck {
		return crTimelineHas(roomID, crMemberIs(bob.UserID, membership))
	}

	t.Run("Knocking on a room with a join rule other than 'knock' should fail", func(t *testing.T) {
		knock(t, "Can I knock anyways?", 403)
	})
	t.Run("Change the join rule of a room from 'invite' to 'knock'", func(t *testing.T) {
		alice.sendStateSynced(t, roomID, "m.room.join_rules", "", map[string]any{"join_rule": "knock"})
	})
	t.Run("Attempting to join a room with join rule 'knock' without an invite should fail", func(t *testing.T) {
		status, res := bob.do(t, "POST", crV3("join", roomID), map[string]any{}, url.Values{"server_name": {"test.local"}})
		crWant(t, "join", status, res, 403, "")
	})
	t.Run("Knocking on a room with join rule 'knock' should succeed", func(t *testing.T) {
		knockSynced(t, "Let me in... LET ME IN!!!")
	})
	t.Run("A user that has already knocked is allowed to knock again on the same room", func(t *testing.T) {
		knockSynced(t, "I really like knock knock jokes")
	})
	t.Run("Users in the room see a user's membership update when they knock", func(t *testing.T) {
		alice.mustSyncUntil(t, crSyncReq{}, crTimelineHas(roomID, func(ev gjson.Result) bool {
			return ev.Get("type").Str == "m.room.member" && ev.Get("sender").Str == bob.UserID &&
				ev.Get("content.membership").Str == "knock" && ev.Get("content.reason").Str == "Let me in... LET ME IN!!!"
		}))
	})
	t.Run("A user that has knocked on a local room can rescind their knock and then knock again", func(t *testing.T) {
		_, since := bob.mustSync(t, crSyncReq{Timeout: "0"})
		bob.leaveRoom(t, roomID)
		bob.mustSyncUntil(t, crSyncReq{Since: since}, func(_ string, res gjson.Result) error {
			return crLoop(res, "rooms.leave."+crEsc(roomID)+".timeline.events", func(ev gjson.Result) bool {
				return ev.Get("type").Str == "m.room.member" && ev.Get("sender").Str == bob.UserID && ev.Get("content.membership").Str == "leave"
			})
		})
		knockSynced(t, "Let me in... again?")
	})
	t.Run("A user in the room can reject a knock", func(t *testing.T) {
		alice.mustDo(t, "POST", crV3("rooms", roomID, "kick"), map[string]string{"user_id": bob.UserID, "reason": "I don't think so"}, nil)
		alice.mustSyncUntil(t, crSyncReq{}, memberEventIs("leave"))
		knockSynced(t, "Pleeease let me in?")
	})
	t.Run("A user can knock on a room without a reason", func(t *testing.T) {
		alice.mustDo(t, "POST", crV3("rooms", roomID, "kick"), map[string]string{"user_id": bob.UserID, "reason": "Please try again"}, nil)
		knockSynced(t, "")
	})
	t.Run("A user in the room can accept a knock", func(t *testing.T) {
		alice.inviteRoom(t, roomID, bob.UserID)
		alice.mustSyncUntil(t, crSyncReq{}, memberEventIs("invite"))
	})
	t.Run("A user cannot knock on a room they are already in", func(t *testing.T) {
		knock(t, "I'm sticking my hand out the window and knocking again!", 403)
	})
	t.Run("A user that is banned from a room cannot knock on it", func(t *testing.T) {
		alice.mustDo(t, "POST", crV3("rooms", roomID, "ban"), map[string]string{"user_id": bob.UserID, "reason": "Turns out Bob wasn't that trustworthy after all!"}, nil)
		alice.mustSyncUntil(t, crSyncReq{}, memberEventIs("ban"))
		knock(t, "I didn't mean it!", 403)
	})
}

// sytest tests/30rooms/10redactions.pl.
func TestComplementRedactionRules(t *testing.T) {
	base := crServer(t)
	creator := crUser(t, base, "creator")
	sender := crUser(t, base, "sender")
	random := crUser(t, base, "random")
	setup := func(t *testing.T) (string, string) {
		roomID := creator.createRoom(t, map[string]any{"preset": "public_chat"})
		sender.joinRoom(t, roomID)
		random.joinRoom(t, roomID)
		return roomID, sender.sendEvent(t, roomID, "m.room.message", map[string]any{"msgtype": "m.message", "body": "orangutans are not monkeys"})
	}
	redact := func(t *testing.T, c *crClient, roomID, eventID string, body map[string]any) (int, gjson.Result) {
		txn := fmt.Sprintf("red-%d", crTxn.Add(1))
		return c.do(t, "PUT", crV3("rooms", roomID, "redact", eventID, txn), body, nil)
	}

	t.Run("as power user redacts message", func(t *testing.T) {
		roomID, eventID := setup(t)
		status, res := redact(t, creator, roomID, eventID, map[string]any{})
		crWant(t, "redact", status, res, 200, "")
	})
	t.Run("as original message sender redacts message", func(t *testing.T) {
		roomID, eventID := setup(t)
		status, res := redact(t, sender, roomID, eventID, map[string]any{})
		crWant(t, "redact", status, res, 200, "")
	})
	t.Run("as random user does not redact message", func(t *testing.T) {
		roomID, eventID := setup(t)
		status, res := redact(t, random, roomID, eventID, map[string]any{})
		crWant(t, "redact", status, res, 403, "")
	})
	t.Run("disallows redaction of event in different room", func(t *testing.T) {
		_, eventID := setup(t)
		otherRoom := random.createRoom(t, nil)
		status, res := redact(t, random, otherRoom, eventID, map[string]any{})
		crWant(t, "redact across rooms", status, res, 400, "")
	})
	t.Run("Redaction of a redaction redacts the redaction reason", func(t *testing.T) {
		roomID, eventID := setup(t)
		_, res := redact(t, creator, roomID, eventID, map[string]any{"reason": "Offensively bad pun"})
		redaction := res.Get("event_id").Str
		if got := creator.mustDo(t, "GET", crV3("rooms", roomID, "event", redaction), nil, nil); got.Get("content.reason").Str != "Offensively bad pun" {
			t.Fatalf("redaction: %s", got.Raw)
		}
		redact(t, creator, roomID, redaction, map[string]any{})
		if got := creator.mustDo(t, "GET", crV3("rooms", roomID, "event", redaction), nil, nil); got.Get("content.reason").Exists() {
			t.Fatalf("redaction not redacted: %s", got.Raw)
		}
	})
}
