package fedtest

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ganglion/ganglion/internal/proctest"
)

// TestServerComesBack: alice (A) and bob, dave (B) share a room; bob may
// set state; 10 messages go each way. A is SIGKILLed; while it is down bob and dave send 15
// messages each and bob changes the topic; after 5 s A restarts on the
// same config and data, and alice and bob both send 15 more at once.
//
// Pass: every send is acknowledged; A's and B's /messages histories hold
// every message from both sides exactly once, in each sender's order, with
// the acknowledged event IDs; A's and B's /state are identical (same event
// IDs) and carry the topic set while A was down.
func TestServerComesBack(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	a, b := newHomeserver(t, "A", 1), newHomeserver(t, "B", 1)
	a.start()
	b.start()
	alice := mustRegister(ctx, t, a, "alice")
	bob := mustRegister(ctx, t, b, "bob")
	dave := mustRegister(ctx, t, b, "dave")
	room, expected := federatedRoom(ctx, t, alice, bob, 5)
	if err := dave.join(ctx, room, a.name); err != nil {
		t.Fatalf("dave on B joins %s: %v", room, err)
	}
	if err := waitMember(ctx, alice, room, dave.id, "join", 30*time.Second); err != nil {
		t.Fatal(err)
	}
	pl, err := alice.stateEvent(ctx, room, "m.room.power_levels", "")
	if err != nil {
		t.Fatalf("alice reads the power levels: %v", err)
	}
	users, _ := pl["users"].(map[string]any)
	if users == nil {
		users = map[string]any{}
	}
	users[bob.id] = 50
	pl["users"] = users
	if _, err := alice.sendState(ctx, room, "m.room.power_levels", "", pl); err != nil {
		t.Fatalf("alice lets bob set state: %v", err)
	}

	// Warm-up one side at a time: both directions flow before the stop.
	for _, w := range []struct {
		from, to *user
		series   string
	}{{alice, bob, "warmA"}, {bob, alice, "warmB"}} {
		msgs := sendSeries(ctx, w.from, room, w.series, 10, 0, 20*time.Second, nil)
		expected = append(expected, msgs...)
		reportProblems(t, "sends before the stop", sendFailures(msgs))
		_, problems := waitHistory(ctx, w.to, room, expected, time.Now().Add(30*time.Second))
		reportProblems(t, w.to.hs.label+"'s history before A stops", problems)
	}
	if t.Failed() {
		t.FailNow()
	}

	a.nodes[0].Kill()
	stoppedAt := time.Now()
	down := exchange(ctx, room, []*user{bob, dave}, []string{"downB", "downD"}, 15, 0, 20*time.Second, nil)
	expected = append(expected, down...)
	reportProblems(t, "B's sends while A is down", sendFailures(down))
	topic := fmt.Sprintf("set on B while A was down (%d)", time.Now().UnixNano())
	if _, err := bob.sendState(ctx, room, "m.room.topic", "", map[string]any{"topic": topic}); err != nil {
		t.Errorf("bob sets the topic while A is down: %v", err)
	}
	// A stays down a while: B's sender must retry, then catch up.
	time.Sleep(time.Until(stoppedAt.Add(5 * time.Second)))
	a.restart(0)
	t.Logf("A down for %v", time.Since(stoppedAt).Round(time.Millisecond))

	var acked atomic.Int64
	back := exchange(ctx, room, []*user{alice, bob}, []string{"backA", "backB"}, 15, 0, 20*time.Second, &acked)
	expected = append(expected, back...)
	reportProblems(t, "sends after A is back", sendFailures(back))

	begin := time.Now()
	converge := begin.Add(40 * time.Second)
	for _, u := range []*user{alice, bob} {
		h, problems := waitHistory(ctx, u, room, expected, converge)
		reportProblems(t, u.hs.label+"'s history after A came back", problems)
		if h != nil {
			t.Logf("%s: %d events, converged check done after %v", u.hs.label, len(h.events), time.Since(begin).Round(time.Millisecond))
		}
	}
	checkSameState(ctx, t, room, alice, bob, 30*time.Second)
	if content, err := alice.stateEvent(ctx, room, "m.room.topic", ""); err != nil || content["topic"] != topic {
		t.Errorf("A's topic is %v (err %v), want %q", content["topic"], err, topic)
	}
}

// stateLines returns u's view of the room's current state as sorted
// "type|state_key|event_id" lines.
func stateLines(ctx context.Context, u *user, room string) ([]string, error) {
	events, err := u.state(ctx, room)
	if err != nil {
		return nil, err
	}
	out := proctest.StateLines(events)
	slices.Sort(out)
	return out, nil
}

// checkSameState polls until x's and y's /state agree, then reports the
// difference if they never do.
func checkSameState(ctx context.Context, t *testing.T, room string, x, y *user, timeout time.Duration) {
	t.Helper()
	var sx, sy []string
	var errX, errY error
	ok := proctest.Poll(timeout, 250*time.Millisecond, func() bool {
		sx, errX = stateLines(ctx, x, room)
		sy, errY = stateLines(ctx, y, room)
		return errX == nil && errY == nil && slices.Equal(sx, sy)
	})
	if ok {
		return
	}
	if errX != nil || errY != nil {
		t.Errorf("/state: %s: %v; %s: %v", x.hs.label, errX, y.hs.label, errY)
		return
	}
	var onlyX, onlyY []string
	for _, l := range sx {
		if !slices.Contains(sy, l) {
			onlyX = append(onlyX, l)
		}
	}
	for _, l := range sy {
		if !slices.Contains(sx, l) {
			onlyY = append(onlyY, l)
		}
	}
	t.Errorf("room state differs after %v:\n  only on %s: %v\n  only on %s: %v", timeout, x.hs.label, onlyX, y.hs.label, onlyY)
}
