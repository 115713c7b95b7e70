package clientapi

import (
	"fmt"
	"net/url"
	"slices"
	"testing"
	"time"
)

func TestLegacyInitialSyncEventsRoundTrip(t *testing.T) {
	base := testServer(t)
	_, tok := registerUser(t, base, "alice")
	_, btok := registerUser(t, base, "bob")
	roomID := syCreateRoom(t, base, tok, map[string]any{"name": "Legacy"})
	for i := range 3 {
		sySend(t, base, tok, roomID, fmt.Sprintf("old%d", i))
	}

	status, snap := call(t, "GET", base+"/_matrix/client/v3/initialSync?limit=2", tok, nil)
	if status != 200 {
		t.Fatalf("initialSync: %d %v", status, snap)
	}
	var room map[string]any
	for _, r := range syList(snap, "rooms") {
		if syObj(r)["room_id"] == roomID {
			room = syObj(r)
		}
	}
	if room == nil || room["membership"] != "join" || room["visibility"] != "private" {
		t.Fatalf("initialSync room %v", room)
	}
	chunk := syList(room, "messages", "chunk")
	if got := syBodies(chunk); !slices.Equal(got, []string{"old1", "old2"}) {
		t.Fatalf("messages %v", got)
	}
	if syObj(chunk[0])["room_id"] != roomID || !syHas(syList(room, "state"), "m.room.create", "") {
		t.Fatalf("legacy events lack room_id or state: %v", room)
	}
	if _, ok := snap["presence"].([]any); !ok {
		t.Fatalf("presence is not a list: %v", snap)
	}
	end := snap["end"].(string)

	// /events from initialSync's end long-polls until the next message.
	type result struct {
		out     map[string]any
		elapsed time.Duration
	}
	done := make(chan result, 1)
	go func() {
		start := time.Now()
		_, out := call(t, "GET", base+"/_matrix/client/v3/events?"+syQuery("from", end, "timeout", "20000"), tok, nil)
		done <- result{out, time.Since(start)}
	}()
	newID := sySend(t, base, tok, roomID, "new")
	var stream map[string]any
	select {
	case res := <-done:
		stream = res.out
		if res.elapsed > 5*time.Second {
			t.Fatalf("/events took %v", res.elapsed)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("/events did not wake")
	}
	if got := syBodies(syList(stream, "chunk")); !slices.Equal(got, []string{"new"}) || stream["start"] != end {
		t.Fatalf("/events answer %v", stream)
	}
	if syObj(syList(stream, "chunk")[0])["room_id"] != roomID {
		t.Fatalf("/events chunk lacks room_id")
	}

	// Its end is a /sync token and vice versa.
	streamEnd := stream["end"].(string)
	if resp := sySync(t, base, tok, syQuery("since", streamEnd)); syJoined(resp, roomID) != nil {
		t.Fatalf("/sync from /events end repeats events: %v", resp)
	}
	status, again := call(t, "GET", base+"/_matrix/client/v3/events?"+syQuery("from", end, "timeout", "0"), tok, nil)
	if status != 200 || !slices.Equal(syBodies(syList(again, "chunk")), []string{"new"}) {
		t.Fatalf("/events replay from end: %d %v", status, again)
	}
	syncTok := sySync(t, base, tok, "")["next_batch"].(string)
	status, empty := call(t, "GET", base+"/_matrix/client/v3/events?"+syQuery("from", syncTok, "timeout", "0"), tok, nil)
	if status != 200 || len(syList(empty, "chunk")) != 0 {
		t.Fatalf("/events from a /sync token: %d %v", status, empty)
	}
	status, bad := call(t, "GET", base+"/_matrix/client/v3/events?from=nonsense", tok, nil)
	if status != 400 {
		t.Fatalf("bad from: %d %v", status, bad)
	}

	// GET /events/{eventId}: members see it, others get 404.
	status, ev := call(t, "GET", base+"/_matrix/client/v3/events/"+url.PathEscape(newID), tok, nil)
	if status != 200 || ev["event_id"] != newID || ev["room_id"] != roomID {
		t.Fatalf("get event: %d %v", status, ev)
	}
	for _, c := range []struct{ tok, id string }{{btok, newID}, {tok, "$nope"}} {
		status, out := call(t, "GET", base+"/_matrix/client/v3/events/"+url.PathEscape(c.id), c.tok, nil)
		if status != 404 || out["errcode"] != "M_NOT_FOUND" {
			t.Fatalf("hidden event: %d %v", status, out)
		}
	}
}

func TestLegacyRoomInitialSync(t *testing.T) {
	base := testServer(t)
	_, tok := registerUser(t, base, "alice")
	_, btok := registerUser(t, base, "bob")
	roomID := syCreateRoom(t, base, tok, map[string]any{"preset": "public_chat"})
	sySend(t, base, tok, roomID, "hello")

	status, out := call(t, "GET", syRoomURL(base, roomID, "/initialSync"), tok, nil)
	if status != 200 || out["membership"] != "join" || out["room_id"] != roomID {
		t.Fatalf("room initialSync: %d %v", status, out)
	}
	if got := syBodies(syList(out, "messages", "chunk")); !slices.Equal(got, []string{"hello"}) {
		t.Fatalf("messages %v", got)
	}
	if !syHas(syList(out, "state"), "m.room.join_rules", "") || syObj(out, "messages")["end"] == nil {
		t.Fatalf("room initialSync %v", out)
	}

	// Not a member, not world-readable: 403. World-readable: a preview.
	if status, out := call(t, "GET", syRoomURL(base, roomID, "/initialSync"), btok, nil); status != 403 {
		t.Fatalf("outsider: %d %v", status, out)
	}
	status, _ = call(t, "PUT", syRoomURL(base, roomID, "/state/m.room.history_visibility"), tok,
		map[string]any{"history_visibility": "world_readable"})
	if status != 200 {
		t.Fatalf("set world_readable: %d", status)
	}
	sySend(t, base, tok, roomID, "public now")
	status, peek := call(t, "GET", syRoomURL(base, roomID, "/initialSync"), btok, nil)
	if status != 200 || peek["membership"] != nil {
		t.Fatalf("peek: %d %v", status, peek)
	}
	if got := syBodies(syList(peek, "messages", "chunk")); !slices.Contains(got, "public now") || slices.Contains(got, "hello") {
		t.Fatalf("peek shows %v", got)
	}
	status, peekStream := call(t, "GET", base+"/_matrix/client/v3/events?"+syQuery("room_id", roomID, "timeout", "0",
		"from", fmt.Sprint(syObj(peek, "messages")["start"])), btok, nil)
	if status != 200 || !slices.Contains(syBodies(syList(peekStream, "chunk")), "public now") {
		t.Fatalf("peek /events: %d %v", status, peekStream)
	}

	// After leaving, the snapshot is the room as it was at the leave.
	syMember(t, base, btok, roomID, "join", nil)
	syMember(t, base, btok, roomID, "leave", nil)
	sySend(t, base, tok, roomID, "after bob left")
	status, left := call(t, "GET", syRoomURL(base, roomID, "/initialSync"), btok, nil)
	if status != 200 || left["membership"] != "leave" || slices.Contains(syBodies(syList(left, "messages", "chunk")), "after bob left") {
		t.Fatalf("left snapshot: %d %v", status, left)
	}
}
