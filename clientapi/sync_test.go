package clientapi

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestSyncInitialAndIncremental(t *testing.T) {
	base := testServer(t)
	alice, tok := registerUser(t, base, "alice")
	roomID := syCreateRoom(t, base, tok, map[string]any{"name": "Sync room"})
	for i := range 3 {
		sySend(t, base, tok, roomID, fmt.Sprintf("m%d", i))
	}

	first := sySync(t, base, tok, "")
	if !strings.HasPrefix(first["next_batch"].(string), "s") {
		t.Fatalf("next_batch %v", first["next_batch"])
	}
	jr := syJoined(first, roomID)
	if jr == nil {
		t.Fatalf("room missing from initial sync: %v", first)
	}
	timeline := syList(jr, "timeline", "events")
	state := syList(jr, "state", "events")
	if got := syBodies(timeline); !slices.Equal(got, []string{"m0", "m1", "m2"}) {
		t.Fatalf("timeline bodies %v", got)
	}
	all := append(append([]any{}, state...), timeline...)
	for _, want := range [][2]string{{"m.room.create", ""}, {"m.room.name", ""}, {"m.room.member", alice}} {
		if !syHas(all, want[0], want[1]) {
			t.Fatalf("state+timeline lacks %v", want)
		}
	}
	stateIDs, tlIDs := syEventIDs(state), syEventIDs(timeline)
	for id := range stateIDs {
		if tlIDs[id] {
			t.Fatalf("event %s in both state and timeline", id)
		}
	}
	for _, e := range timeline {
		if _, has := syObj(e)["room_id"]; has {
			t.Fatalf("timeline event carries room_id: %v", e)
		}
	}
	if n := syObj(jr, "summary")["m.joined_member_count"]; n != float64(1) {
		t.Fatalf("joined count %v", n)
	}
	if un := syObj(jr, "unread_notifications"); un["notification_count"] != float64(0) {
		t.Fatalf("unread_notifications %v", un)
	}

	sySend(t, base, tok, roomID, "m3")
	second := sySync(t, base, tok, syQuery("since", first["next_batch"].(string)))
	jr = syJoined(second, roomID)
	if got := syBodies(syList(jr, "timeline", "events")); !slices.Equal(got, []string{"m3"}) {
		t.Fatalf("incremental timeline %v", got)
	}
	if syObj(jr, "timeline")["limited"] != false || len(syList(jr, "state", "events")) != 0 {
		t.Fatalf("incremental room %v", jr)
	}

	third := sySync(t, base, tok, syQuery("since", second["next_batch"].(string)))
	if syJoined(third, roomID) != nil {
		t.Fatalf("nothing new, yet the room is in the sync: %v", third)
	}

	full := sySync(t, base, tok, syQuery("since", second["next_batch"].(string), "full_state", "true"))
	if !syHas(syList(syJoined(full, roomID), "state", "events"), "m.room.create", "") {
		t.Fatalf("full_state lacks the create event: %v", full)
	}
}

func TestSyncLongPollWakes(t *testing.T) {
	base := testServer(t)
	_, tok := registerUser(t, base, "alice")
	roomID := syCreateRoom(t, base, tok, nil)
	since := sySync(t, base, tok, "")["next_batch"].(string)

	type result struct {
		resp    map[string]any
		elapsed time.Duration
	}
	done := make(chan result, 1)
	go func() {
		start := time.Now()
		status, out := call(t, "GET", base+"/_matrix/client/v3/sync?"+syQuery("since", since, "timeout", "20000"), tok, nil)
		if status != 200 {
			out = nil
		}
		done <- result{out, time.Since(start)}
	}()
	sySend(t, base, tok, roomID, "wake up")
	select {
	case res := <-done:
		if res.resp == nil {
			t.Fatal("long-poll sync failed")
		}
		if got := syBodies(syList(syJoined(res.resp, roomID), "timeline", "events")); !slices.Equal(got, []string{"wake up"}) {
			t.Fatalf("woken sync timeline %v", got)
		}
		if res.elapsed > 5*time.Second {
			t.Fatalf("long-poll took %v", res.elapsed)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("long-poll did not wake on a new message")
	}

	// A timeout with nothing new returns an empty answer.
	next := sySync(t, base, tok, syQuery("since", since, "timeout", "1"))
	start := time.Now()
	empty := sySync(t, base, tok, syQuery("since", next["next_batch"].(string), "timeout", "200"))
	if time.Since(start) < 200*time.Millisecond || len(syObj(empty, "rooms", "join")) != 0 {
		t.Fatalf("empty long-poll: %v after %v", empty, time.Since(start))
	}
}

func TestSyncLimitedAndPaging(t *testing.T) {
	base := testServer(t)
	_, tok := registerUser(t, base, "alice")
	roomID := syCreateRoom(t, base, tok, nil)
	for i := range 15 {
		sySend(t, base, tok, roomID, fmt.Sprintf("a%02d", i))
	}
	filter := `{"room":{"timeline":{"limit":5}}}`
	first := sySync(t, base, tok, syQuery("filter", filter))
	tl := syObj(syJoined(first, roomID), "timeline")
	if got := syBodies(syList(tl, "events")); !slices.Equal(got, []string{"a10", "a11", "a12", "a13", "a14"}) {
		t.Fatalf("limited timeline %v", got)
	}
	if tl["limited"] != true {
		t.Fatalf("timeline not limited: %v", tl)
	}
	earlier := syMessages(t, base, tok, roomID, syQuery("dir", "b", "from", tl["prev_batch"].(string), "limit", "100"))
	if got := syBodies(earlier); len(got) != 10 || got[0] != "a09" || got[9] != "a00" {
		t.Fatalf("/messages from prev_batch: %v", got)
	}

	// An incremental sync with a gap: prev_batch..since closes it exactly.
	since := first["next_batch"].(string)
	for i := range 8 {
		sySend(t, base, tok, roomID, fmt.Sprintf("b%d", i))
	}
	second := sySync(t, base, tok, syQuery("since", since, "filter", `{"room":{"timeline":{"limit":3}}}`))
	tl = syObj(syJoined(second, roomID), "timeline")
	if got := syBodies(syList(tl, "events")); !slices.Equal(got, []string{"b5", "b6", "b7"}) || tl["limited"] != true {
		t.Fatalf("incremental limited timeline %v", tl)
	}
	gap := syMessages(t, base, tok, roomID, syQuery("dir", "b", "from", tl["prev_batch"].(string), "to", since, "limit", "100"))
	if got := syBodies(gap); !slices.Equal(got, []string{"b4", "b3", "b2", "b1", "b0"}) {
		t.Fatalf("gap from /messages: %v", got)
	}
}

func syMessages(t *testing.T, base, tok, roomID, query string) []any {
	t.Helper()
	status, out := call(t, "GET", syRoomURL(base, roomID, "/messages?"+query), tok, nil)
	if status != 200 {
		t.Fatalf("/messages ?%s: %d %v", query, status, out)
	}
	return syList(out, "chunk")
}

func TestSyncTransactionIDOnlyForSendingDevice(t *testing.T) {
	base := testServer(t)
	_, tok1 := registerUser(t, base, "alice")
	tok2 := mustLogin(t, base, "alice", "pass-alice", "")
	roomID := syCreateRoom(t, base, tok1, nil)
	sySendTxn(t, base, tok1, roomID, "with txn", "my-txn-1")
	for _, c := range []struct {
		tok  string
		want any
	}{{tok1, "my-txn-1"}, {tok2, nil}} {
		events := syList(syJoined(sySync(t, base, c.tok, ""), roomID), "timeline", "events")
		var got any
		for _, e := range events {
			if syObj(e, "content")["body"] == "with txn" {
				got = syObj(e, "unsigned")["transaction_id"]
			}
		}
		if got != c.want {
			t.Fatalf("transaction_id %v, want %v", got, c.want)
		}
	}
}

func TestSyncInviteJoinLeave(t *testing.T) {
	base := testServer(t)
	_, atok := registerUser(t, base, "alice")
	bob, btok := registerUser(t, base, "bob")
	roomID := syCreateRoom(t, base, atok, map[string]any{"name": "Invite room"})
	sySend(t, base, atok, roomID, "before bob")
	since := sySync(t, base, btok, "")["next_batch"].(string)

	syMember(t, base, atok, roomID, "invite", map[string]any{"user_id": bob})
	inv := sySync(t, base, btok, syQuery("since", since))
	stripped := syList(syObj(inv, "rooms", "invite", roomID), "invite_state", "events")
	for _, want := range [][2]string{{"m.room.create", ""}, {"m.room.name", ""}, {"m.room.join_rules", ""}, {"m.room.member", bob}} {
		if !syHas(stripped, want[0], want[1]) {
			t.Fatalf("invite_state lacks %v: %v", want, stripped)
		}
	}
	if initial := sySync(t, base, btok, ""); syObj(initial, "rooms", "invite", roomID) == nil {
		t.Fatalf("initial sync lacks the invite: %v", initial)
	}

	syMember(t, base, btok, roomID, "join", nil)
	joined := sySync(t, base, btok, syQuery("since", inv["next_batch"].(string)))
	jr := syJoined(joined, roomID)
	if jr == nil {
		t.Fatalf("newly joined room missing: %v", joined)
	}
	all := append(syList(jr, "state", "events"), syList(jr, "timeline", "events")...)
	if !syHas(all, "m.room.create", "") || !syHas(all, "m.room.name", "") || !syHas(all, "m.room.member", bob) {
		t.Fatalf("newly joined room lacks full state: %v", jr)
	}
	if syObj(inv, "rooms", "join", roomID) != nil {
		t.Fatalf("invited room listed as joined")
	}

	syMember(t, base, btok, roomID, "leave", nil)
	left := sySync(t, base, btok, syQuery("since", joined["next_batch"].(string)))
	lr := syObj(left, "rooms", "leave", roomID)
	events := syList(lr, "timeline", "events")
	if len(events) == 0 || syObj(events[len(events)-1], "content")["membership"] != "leave" {
		t.Fatalf("leave section: %v", left)
	}
	if syJoined(left, roomID) != nil {
		t.Fatalf("left room still joined")
	}
	fullLeft := sySync(t, base, btok, syQuery("since", joined["next_batch"].(string), "full_state", "true"))
	if syObj(fullLeft, "rooms", "leave", roomID) == nil {
		t.Fatalf("full_state sync lacks the newly left room: %v", fullLeft)
	}
	sySend(t, base, atok, roomID, "after bob")

	if initial := sySync(t, base, btok, ""); syObj(initial, "rooms", "leave", roomID) != nil {
		t.Fatalf("initial sync without include_leave lists the left room")
	}
	withLeave := sySync(t, base, btok, syQuery("filter", `{"room":{"include_leave":true}}`))
	lr = syObj(withLeave, "rooms", "leave", roomID)
	bodies := syBodies(syList(lr, "timeline", "events"))
	if lr == nil || slices.Contains(bodies, "after bob") {
		t.Fatalf("include_leave room %v", lr)
	}

	// A kick shows up in the leave section too.
	syMember(t, base, atok, roomID, "invite", map[string]any{"user_id": bob})
	syMember(t, base, btok, roomID, "join", nil)
	before := sySync(t, base, btok, "")["next_batch"].(string)
	syMember(t, base, atok, roomID, "kick", map[string]any{"user_id": bob, "reason": "bye"})
	kicked := sySync(t, base, btok, syQuery("since", before))
	if syObj(kicked, "rooms", "leave", roomID) == nil {
		t.Fatalf("kick not in leave section: %v", kicked)
	}

	// Forgotten rooms disappear even with include_leave.
	syMember(t, base, btok, roomID, "forget", nil)
	if again := sySync(t, base, btok, syQuery("filter", `{"room":{"include_leave":true}}`)); syObj(again, "rooms", "leave", roomID) != nil {
		t.Fatalf("forgotten room still listed")
	}
}

func TestSyncFilters(t *testing.T) {
	base := testServer(t)
	alice, tok := registerUser(t, base, "alice")
	_, btok := registerUser(t, base, "bob")
	_, ctok := registerUser(t, base, "carol")
	// Named, so no heroes (whose members lazy loading would also send).
	roomID := syCreateRoom(t, base, tok, map[string]any{"preset": "public_chat", "name": "Filters"})
	other := syCreateRoom(t, base, tok, nil)
	syMember(t, base, btok, roomID, "join", nil)
	syMember(t, base, ctok, roomID, "join", nil)
	for i := range 4 {
		sySend(t, base, ctok, roomID, fmt.Sprintf("c%d", i))
	}

	status, out := call(t, "POST", base+"/_matrix/client/v3/user/"+url.PathEscape(alice)+"/filter", tok,
		`{"room":{"timeline":{"limit":2,"types":["m.room.message"]},"not_rooms":["`+other+`"]}}`)
	if status != 200 {
		t.Fatalf("create filter: %d %v", status, out)
	}
	byID := sySync(t, base, tok, syQuery("filter", out["filter_id"].(string)))
	inline := sySync(t, base, tok, syQuery("filter", `{"room":{"timeline":{"limit":2,"types":["m.room.message"]},"not_rooms":["`+other+`"]}}`))
	for name, resp := range map[string]map[string]any{"by id": byID, "inline": inline} {
		if got := syBodies(syList(syJoined(resp, roomID), "timeline", "events")); !slices.Equal(got, []string{"c2", "c3"}) {
			t.Fatalf("%s: timeline %v", name, got)
		}
		if syJoined(resp, other) != nil {
			t.Fatalf("%s: not_rooms room present", name)
		}
	}

	lazy := sySync(t, base, tok, syQuery("filter", `{"room":{"timeline":{"limit":2},"state":{"lazy_load_members":true}}}`))
	members := map[string]bool{}
	for _, e := range syList(syJoined(lazy, roomID), "state", "events") {
		if m := syObj(e); m["type"] == "m.room.member" {
			members[m["state_key"].(string)] = true
		}
	}
	if members[alice] || !members["@carol:test.local"] || members["@bob:test.local"] {
		t.Fatalf("lazy-loaded members %v", members)
	}

	noAccountData := sySync(t, base, tok, syQuery("filter", `{"account_data":{"types":[]},"presence":{"types":[]}}`))
	if len(syList(noAccountData, "account_data", "events")) != 0 || len(syList(noAccountData, "presence", "events")) != 0 {
		t.Fatalf("types [] still returned events: %v", noAccountData)
	}

	for _, c := range []struct{ filter, errcode string }{
		{"999999", "M_INVALID_PARAM"},
		{"{not json", "M_NOT_JSON"},
		{`{"room":{"timeline":{"limit":"ten"}}}`, "M_BAD_JSON"},
	} {
		status, out := call(t, "GET", base+"/_matrix/client/v3/sync?"+syQuery("filter", c.filter), tok, nil)
		if status != 400 || out["errcode"] != c.errcode {
			t.Fatalf("filter %q: %d %v", c.filter, status, out)
		}
	}
}

func TestSyncBadParams(t *testing.T) {
	base := testServer(t)
	_, tok := registerUser(t, base, "alice")
	for _, query := range []string{"since=garbage", "since=s1_x", "set_presence=dancing", "timeout=soon", "full_state=maybe"} {
		status, out := call(t, "GET", base+"/_matrix/client/v3/sync?"+query, tok, nil)
		if status != 400 || out["errcode"] != "M_INVALID_PARAM" {
			t.Fatalf("?%s: %d %v", query, status, out)
		}
	}
	if status, out := call(t, "GET", base+"/_matrix/client/v3/sync", "", nil); status != 401 {
		t.Fatalf("no token: %d %v", status, out)
	}
}

func TestSyncTokenFromTheFutureWaits(t *testing.T) {
	base := testServer(t)
	_, tok := registerUser(t, base, "alice")
	now, err := parseSyncToken(sySync(t, base, tok, "")["next_batch"].(string))
	if err != nil {
		t.Fatal(err)
	}
	future := syncToken{Pos: now.Pos + 1000<<16, Eph: now.Eph}.String()
	start := time.Now()
	resp := sySync(t, base, tok, syQuery("since", future, "timeout", "300"))
	if elapsed := time.Since(start); elapsed < 300*time.Millisecond {
		t.Fatalf("answered after %v without waiting", elapsed)
	}
	if resp["next_batch"] != future || len(syObj(resp, "rooms", "join")) != 0 {
		t.Fatalf("future token answer %v", resp)
	}
}
