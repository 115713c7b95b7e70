package clientapi

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ganglion/ganglion/fsm"
)

// Exactly-once to-device delivery, long-poll wake-ups and lazy-loaded
// members across a lost response.

type pollResult struct {
	resp    map[string]any
	status  int
	elapsed time.Duration
}

// longPoll runs a GET in the background (no t.Fatal off the test goroutine).
func longPoll(base, tok, path string) <-chan pollResult {
	done := make(chan pollResult, 1)
	go func() {
		start := time.Now()
		res := pollResult{}
		req, _ := http.NewRequest("GET", base+path, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			res.status = resp.StatusCode
			_ = json.Unmarshal(raw, &res.resp)
		}
		res.elapsed = time.Since(start)
		done <- res
	}()
	return done
}

func TestToDeviceNotResentForOlderToken(t *testing.T) {
	base, api := testServerAPI(t)
	_, aliceTok := registerUser(t, base, "alice")
	bob, bobTok := registerUser(t, base, "bob")
	tok0 := sySync(t, base, bobTok, "")["next_batch"].(string)
	status, out := call(t, "PUT", base+"/_matrix/client/v3/sendToDevice/m.test/once1", aliceTok,
		map[string]any{"messages": map[string]any{bob: map[string]any{"*": map[string]any{"n": 1}}}})
	wantOK(t, "send to-device", status, out)

	first := sySync(t, base, bobTok, syQuery("since", tok0))
	if n := len(syList(first, "to_device", "events")); n != 1 {
		t.Fatalf("first sync: %d to-device events: %v", n, first["to_device"])
	}
	tok1 := first["next_batch"].(string)
	// Syncing with tok1 proves delivery: the deletion is committed before
	// this sync answers.
	sySync(t, base, bobTok, syQuery("since", tok1))
	_ = api.store.View(func(rt *fsm.ReadTx) error {
		devices := rt.Devices(bob)
		if left := rt.ToDeviceSince(bob, devices[0].DeviceID, -1, 0); len(left) != 0 {
			t.Errorf("inbox after the acknowledging sync: %+v", left)
		}
		return nil
	})
	// The older token right after: nothing again.
	again := sySync(t, base, bobTok, syQuery("since", tok0))
	if n := len(syList(again, "to_device", "events")); n != 0 {
		t.Fatalf("older token got the message again: %v", again["to_device"])
	}
}

func TestLongPollWakesOnlyForOwnRooms(t *testing.T) {
	base, api := testServerAPI(t)
	alice, aliceTok := registerUser(t, base, "alice")
	_, bobTok := registerUser(t, base, "bob")
	mine := syCreateRoom(t, base, aliceTok, nil)
	other := syCreateRoom(t, base, bobTok, nil)
	since := sySync(t, base, aliceTok, "")["next_batch"].(string)
	const quiet = 1500 * time.Millisecond

	// Another room's message and typing do not end alice's long-poll.
	for _, path := range []string{
		"/_matrix/client/v3/sync?" + syQuery("since", since, "timeout", "1500"),
		"/_matrix/client/v3/events?" + syQuery("from", since, "timeout", "1500"),
	} {
		done := longPoll(base, aliceTok, path)
		time.Sleep(100 * time.Millisecond)
		sySend(t, base, bobTok, other, "not for alice")
		call(t, "PUT", syRoomURL(base, other, "/typing/")+url.PathEscape("@bob:test.local"), bobTok,
			map[string]any{"typing": true, "timeout": 10000})
		res := <-done
		if res.status != 200 || res.elapsed < quiet-100*time.Millisecond {
			t.Fatalf("%s returned early (%v, %d): %v", path, res.elapsed, res.status, res.resp)
		}
		if len(syObj(res.resp, "rooms", "join")) != 0 || len(syList(res.resp, "chunk")) != 0 {
			t.Fatalf("%s: %v", path, res.resp)
		}
	}

	// A message in alice's room wakes both at once.
	for i, path := range []string{"/_matrix/client/v3/sync?since=", "/_matrix/client/v3/events?from="} {
		now := sySync(t, base, aliceTok, syQuery("since", since))["next_batch"].(string)
		path += url.QueryEscape(now) + "&timeout=20000"
		done := longPoll(base, aliceTok, path)
		time.Sleep(100 * time.Millisecond)
		body := []string{"wake sync", "wake events"}[i]
		sySend(t, base, aliceTok, mine, body)
		res := <-done
		if res.status != 200 || res.elapsed > 5*time.Second {
			t.Fatalf("%s: %d after %v", path, res.status, res.elapsed)
		}
		got := syBodies(syList(syJoined(res.resp, mine), "timeline", "events"))
		if i == 1 {
			got = syBodies(syList(res.resp, "chunk"))
		}
		if !slices.Contains(got, body) {
			t.Fatalf("%s woke with %v", path, res.resp)
		}
	}

	// Typing in alice's room wakes /sync.
	next := sySync(t, base, aliceTok, syQuery("since", since))["next_batch"].(string)
	done := longPoll(base, aliceTok, "/_matrix/client/v3/sync?"+syQuery("since", next, "timeout", "20000"))
	time.Sleep(100 * time.Millisecond)
	call(t, "PUT", syRoomURL(base, mine, "/typing/")+url.PathEscape(alice), aliceTok,
		map[string]any{"typing": true, "timeout": 10000})
	if res := <-done; res.elapsed > 5*time.Second || len(syList(syJoined(res.resp, mine), "ephemeral", "events")) == 0 {
		t.Fatalf("typing wake-up after %v: %v", res.elapsed, res.resp)
	}

	// The watch itself: another room's batch is skipped without waking.
	notified, applied := api.node.Notifier().Changed()
	w := &longPollWatch{user: alice, index: applied, rooms: []string{mine}}
	ctx, cancel := context.WithTimeout(t.Context(), 700*time.Millisecond)
	defer cancel()
	go func() {
		time.Sleep(100 * time.Millisecond)
		req, _ := http.NewRequest("PUT", syRoomURL(base, other, "/send/m.room.message/skipme"),
			strings.NewReader(`{"msgtype":"m.text","body":"skip me"}`))
		req.Header.Set("Authorization", "Bearer "+bobTok)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	if api.park(ctx, w, notified, nil) {
		t.Fatal("park woke for another room's message")
	}
}

func TestLazyMembersResentAfterLostResponse(t *testing.T) {
	base := testServer(t)
	_, aliceTok := registerUser(t, base, "alice")
	bob, bobTok := registerUser(t, base, "bob")
	// A named room: its summary needs no heroes, whose members lazy
	// loading would send at once.
	room := syCreateRoom(t, base, aliceTok, map[string]any{"preset": "public_chat", "name": "lazy"})
	syMember(t, base, bobTok, room, "join", nil)
	sySend(t, base, aliceTok, room, "one")
	sySend(t, base, aliceTok, room, "two")
	filter := url.QueryEscape(`{"room":{"state":{"lazy_load_members":true},"timeline":{"limit":1}}}`)
	tok0 := sySync(t, base, aliceTok, "filter="+filter)["next_batch"].(string)
	hasBob := func(resp map[string]any) bool {
		return syHas(syList(syJoined(resp, room), "state", "events"), "m.room.member", bob)
	}

	sySend(t, base, bobTok, room, "hello")
	lost := sySync(t, base, aliceTok, "filter="+filter+"&since="+url.QueryEscape(tok0))
	if !hasBob(lost) {
		t.Fatalf("first incremental sync lacks bob's member event: %v", syJoined(lost, room))
	}
	// That response never reached the client: the retry sends it again.
	retry := sySync(t, base, aliceTok, "filter="+filter+"&since="+url.QueryEscape(tok0))
	if !hasBob(retry) {
		t.Fatalf("retry with the same token lacks bob's member event: %v", syJoined(retry, room))
	}
	// Once a later token proves receipt, it is redundant.
	sySend(t, base, bobTok, room, "again")
	later := sySync(t, base, aliceTok, "filter="+filter+"&since="+url.QueryEscape(retry["next_batch"].(string)))
	if got := syBodies(syList(syJoined(later, room), "timeline", "events")); !slices.Equal(got, []string{"again"}) || hasBob(later) {
		t.Fatalf("sync after receipt: timeline %v, bob's member sent again: %v", got, hasBob(later))
	}
}
