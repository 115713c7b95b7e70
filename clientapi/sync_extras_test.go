package clientapi

import (
	"fmt"
	"net/url"
	"slices"
	"testing"
	"time"
)

func syDeviceID(t *testing.T, base, tok string) string {
	t.Helper()
	status, out := call(t, "GET", base+"/_matrix/client/v3/account/whoami", tok, nil)
	if status != 200 {
		t.Fatalf("whoami: %d %v", status, out)
	}
	return fmt.Sprint(out["device_id"])
}

func syToDevice(t *testing.T, base, tok, user, device string, n int) {
	t.Helper()
	status, out := call(t, "PUT", base+"/_matrix/client/v3/sendToDevice/m.test/"+fmt.Sprintf("td%d", syTxn.Add(1)), tok,
		map[string]any{"messages": map[string]any{user: map[string]any{device: map[string]any{"n": n}}}})
	if status != 200 {
		t.Fatalf("sendToDevice: %d %v", status, out)
	}
}

func TestSyncToDevice(t *testing.T) {
	base := testServer(t)
	alice, atok := registerUser(t, base, "alice")
	bob, btok := registerUser(t, base, "bob")
	dev := syDeviceID(t, base, btok)
	for i := range 105 {
		syToDevice(t, base, atok, bob, dev, i)
	}
	first := sySync(t, base, btok, "")
	msgs := syList(first, "to_device", "events")
	if len(msgs) != maxToDevicePerSync || syObj(msgs[0])["sender"] != alice || syObj(msgs[0], "content")["n"] != float64(0) {
		t.Fatalf("first batch: %d messages, first %v", len(msgs), msgs[0])
	}
	second := sySync(t, base, btok, syQuery("since", first["next_batch"].(string), "timeout", "10000"))
	msgs = syList(second, "to_device", "events")
	if len(msgs) != 5 || syObj(msgs[0], "content")["n"] != float64(100) {
		t.Fatalf("second batch: %v", msgs)
	}
	third := sySync(t, base, btok, syQuery("since", second["next_batch"].(string)))
	if len(syList(third, "to_device", "events")) != 0 {
		t.Fatalf("delivered messages repeated: %v", third)
	}
	// The since tokens acknowledged everything: a fresh sync finds none.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if n := len(syList(sySync(t, base, btok, ""), "to_device", "events")); n == 0 {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("%d acknowledged messages still queued", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestSyncEphemeralAndAccountData(t *testing.T) {
	base := testServer(t)
	alice, atok := registerUser(t, base, "alice")
	_, btok := registerUser(t, base, "bob")
	carol, ctok := registerUser(t, base, "carol")
	roomID := syCreateRoom(t, base, atok, map[string]any{"preset": "public_chat"})
	syMember(t, base, btok, roomID, "join", nil)
	eventID := sySend(t, base, atok, roomID, "read me")
	since := sySync(t, base, btok, "")["next_batch"].(string)

	// A typing notification wakes a parked long-poll.
	done := make(chan map[string]any, 1)
	go func() {
		_, out := call(t, "GET", base+"/_matrix/client/v3/sync?"+syQuery("since", since, "timeout", "20000"), btok, nil)
		done <- out
	}()
	status, out := call(t, "PUT", syRoomURL(base, roomID, "/typing/"+url.PathEscape(alice)), atok,
		map[string]any{"typing": true, "timeout": 30000})
	if status != 200 {
		t.Fatalf("typing: %d %v", status, out)
	}
	var woken map[string]any
	select {
	case woken = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("typing did not wake the long-poll")
	}
	if !syTyping(woken, roomID, alice) {
		t.Fatalf("typing missing: %v", syJoined(woken, roomID))
	}
	since = woken["next_batch"].(string)

	status, out = call(t, "POST", syRoomURL(base, roomID, "/receipt/m.read/"+url.PathEscape(eventID)), atok, map[string]any{})
	if status != 200 {
		t.Fatalf("receipt: %d %v", status, out)
	}
	status, out = call(t, "PUT", base+"/_matrix/client/v3/presence/"+url.PathEscape(alice)+"/status", atok,
		map[string]any{"presence": "online", "status_msg": "testing"})
	if status != 200 {
		t.Fatalf("presence: %d %v", status, out)
	}
	call(t, "PUT", base+"/_matrix/client/v3/presence/"+url.PathEscape(carol)+"/status", ctok, map[string]any{"presence": "online"})
	status, out = call(t, "PUT", base+"/_matrix/client/v3/user/"+url.PathEscape("@bob:test.local")+"/account_data/org.example.global", btok,
		map[string]any{"a": 1})
	if status != 200 {
		t.Fatalf("account data: %d %v", status, out)
	}
	status, out = call(t, "PUT", base+"/_matrix/client/v3/user/"+url.PathEscape("@bob:test.local")+"/rooms/"+url.PathEscape(roomID)+"/account_data/org.example.room", btok,
		map[string]any{"b": 2})
	if status != 200 {
		t.Fatalf("room account data: %d %v", status, out)
	}

	resp := sySync(t, base, btok, syQuery("since", since))
	jr := syJoined(resp, roomID)
	var receipt map[string]any
	for _, e := range syList(jr, "ephemeral", "events") {
		if syObj(e)["type"] == "m.receipt" {
			receipt = syObj(e, "content", eventID, "m.read")
		}
	}
	if receipt[alice] == nil {
		t.Fatalf("receipt missing: %v", syList(jr, "ephemeral", "events"))
	}
	if !syHas(syList(resp, "account_data", "events"), "org.example.global", "*") ||
		!syHas(syList(jr, "account_data", "events"), "org.example.room", "*") {
		t.Fatalf("account data missing: %v / %v", resp["account_data"], jr["account_data"])
	}
	senders := map[string]any{}
	for _, e := range syList(resp, "presence", "events") {
		senders[syObj(e)["sender"].(string)] = syObj(e, "content")["status_msg"]
	}
	if senders[alice] != "testing" {
		t.Fatalf("alice's presence missing: %v", senders)
	}
	if _, seen := senders[carol]; seen {
		t.Fatalf("presence of a user sharing no room leaked: %v", senders)
	}

	// Nothing changed since: the ephemeral state is not repeated.
	again := sySync(t, base, btok, syQuery("since", resp["next_batch"].(string)))
	if syJoined(again, roomID) != nil || len(syList(again, "account_data", "events")) != 0 {
		t.Fatalf("unchanged data repeated: %v", again)
	}
	// An initial sync carries the current typing list.
	if !syTyping(sySync(t, base, btok, ""), roomID, alice) {
		t.Fatal("initial sync lacks the typing list")
	}
}

func syTyping(resp map[string]any, roomID, user string) bool {
	for _, e := range syList(syJoined(resp, roomID), "ephemeral", "events") {
		if syObj(e)["type"] == "m.typing" {
			for _, u := range syList(e, "content", "user_ids") {
				if u == user {
					return true
				}
			}
		}
	}
	return false
}

func TestSyncSummaryHeroes(t *testing.T) {
	base := testServer(t)
	_, atok := registerUser(t, base, "alice")
	bob, btok := registerUser(t, base, "bob")
	carol, _ := registerUser(t, base, "carol")
	roomID := syCreateRoom(t, base, atok, map[string]any{"preset": "public_chat"})
	syMember(t, base, btok, roomID, "join", nil)
	syMember(t, base, atok, roomID, "invite", map[string]any{"user_id": carol})
	summary := syObj(syJoined(sySync(t, base, atok, ""), roomID), "summary")
	heroes := []string{}
	for _, h := range syList(summary, "m.heroes") {
		heroes = append(heroes, h.(string))
	}
	if summary["m.joined_member_count"] != float64(2) || summary["m.invited_member_count"] != float64(1) ||
		!slices.Equal(heroes, []string{bob, carol}) {
		t.Fatalf("summary %v", summary)
	}
}

func TestSyncLazyLoadingRedundancy(t *testing.T) {
	base := testServer(t)
	alice, atok := registerUser(t, base, "alice")
	bob, btok := registerUser(t, base, "bob")
	charlie, ctok := registerUser(t, base, "charlie")
	roomID := syCreateRoom(t, base, atok, map[string]any{"preset": "public_chat", "name": "LL"})
	syMember(t, base, btok, roomID, "join", nil)
	syMember(t, base, ctok, roomID, "join", nil)
	for i := range 3 {
		sySend(t, base, ctok, roomID, fmt.Sprintf("c%d", i))
	}
	const ll = `{"room":{"timeline":{"limit":2},"state":{"lazy_load_members":true}}}`
	const llRedundant = `{"room":{"timeline":{"limit":2},"state":{"lazy_load_members":true,"include_redundant_members":true}}}`
	members := func(resp map[string]any) map[string]bool {
		out := map[string]bool{}
		for _, e := range syList(syJoined(resp, roomID), "state", "events") {
			if m := syObj(e); m["type"] == "m.room.member" {
				out[m["state_key"].(string)] = true
			}
		}
		return out
	}
	first := sySync(t, base, atok, syQuery("filter", ll))
	// Only timeline senders: not the caller (sytest 15lazy-members.pl).
	if m := members(first); m[alice] || !m[charlie] || m[bob] {
		t.Fatalf("initial lazy members %v", m)
	}
	sySend(t, base, ctok, roomID, "c3")
	second := sySync(t, base, atok, syQuery("filter", ll, "since", first["next_batch"].(string)))
	if m := members(second); len(m) != 0 {
		t.Fatalf("redundant members resent: %v", m)
	}
	sySend(t, base, ctok, roomID, "c4")
	third := sySync(t, base, atok, syQuery("filter", llRedundant, "since", second["next_batch"].(string)))
	if m := members(third); !m[charlie] {
		t.Fatalf("include_redundant_members ignored: %v", m)
	}
	sySend(t, base, btok, roomID, "bob speaks")
	fourth := sySync(t, base, atok, syQuery("filter", ll, "since", third["next_batch"].(string)))
	if m := members(fourth); !m[bob] || m[charlie] {
		t.Fatalf("new speaker's member event: %v", m)
	}
}

func TestSyncPresenceOfNewMembersAndFederationFormat(t *testing.T) {
	base := testServer(t)
	_, atok := registerUser(t, base, "alice")
	bob, btok := registerUser(t, base, "bob")
	roomID := syCreateRoom(t, base, atok, map[string]any{"preset": "public_chat"})
	status, out := call(t, "PUT", base+"/_matrix/client/v3/presence/"+url.PathEscape(bob)+"/status", btok,
		map[string]any{"presence": "unavailable", "status_msg": "away"})
	if status != 200 {
		t.Fatalf("presence: %d %v", status, out)
	}
	since := sySync(t, base, atok, "")["next_batch"].(string)
	syMember(t, base, btok, roomID, "join", nil)
	resp := sySync(t, base, atok, syQuery("since", since, "set_presence", "offline"))
	found := false
	for _, e := range syList(resp, "presence", "events") {
		if syObj(e)["sender"] == bob && syObj(e, "content")["status_msg"] == "away" {
			found = true
		}
	}
	if !found {
		t.Fatalf("presence of the newly joined member missing: %v", resp["presence"])
	}

	fed := sySync(t, base, atok, syQuery("filter", `{"event_format":"federation","event_fields":["event_id","type","signatures"]}`))
	events := syList(syJoined(fed, roomID), "timeline", "events")
	if len(events) == 0 {
		t.Fatal("no timeline")
	}
	for _, e := range events {
		m := syObj(e)
		if m["event_id"] == nil || m["signatures"] == nil || m["content"] != nil {
			t.Fatalf("federation-format event %v", m)
		}
	}
}

// Clients read push rules from the initial sync: the defaults appear until
// the user stores their own.
func TestInitialSyncCarriesDefaultPushRules(t *testing.T) {
	base := testServer(t)
	_, tok := registerUser(t, base, "pusher")
	st, out := call(t, "GET", base+"/_matrix/client/v3/sync", tok, nil)
	if st != 200 {
		t.Fatalf("sync: %d %v", st, out)
	}
	var rules map[string]any
	for _, ev := range syList(out, "account_data", "events") {
		if m, _ := ev.(map[string]any); m["type"] == "m.push_rules" {
			rules, _ = m["content"].(map[string]any)
		}
	}
	global, _ := rules["global"].(map[string]any)
	if global == nil || global["override"] == nil || global["underride"] == nil {
		t.Fatalf("initial sync push rules = %v", rules)
	}
	// An incremental sync does not repeat them.
	st, again := call(t, "GET", base+"/_matrix/client/v3/sync?timeout=0&since="+out["next_batch"].(string), tok, nil)
	if st != 200 || len(syList(again, "account_data", "events")) != 0 {
		t.Fatalf("incremental sync account data: %d %v", st, again["account_data"])
	}
}
