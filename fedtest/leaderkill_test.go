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

// TestLeaderKillDuringExchange: A is a three-node cluster, B a single node.
// alice (A, any node) and bob (B) send 250 messages each at the same time,
// 10 ms apart; once 150 are acknowledged A's leader is SIGKILLed, and
// restarted 3 s later. Clients retry with the same txnId after any
// unknown outcome and move to another node when theirs stops answering.
//
// Pass: a new leader among the survivors within 10 s; every send is
// acknowledged; B's and A's /messages histories hold every message exactly
// once (one event per (sender, txnId)), with the acknowledged event IDs,
// in each sender's order, on every node of A (the restarted one too); A's
// and B's /state agree.
func TestLeaderKillDuringExchange(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 180*time.Second)
	defer cancel()
	a, b := newHomeserver(t, "A", 3), newHomeserver(t, "B", 1)
	a.start()
	b.start()
	alice := mustRegister(ctx, t, a, "alice")
	bob := mustRegister(ctx, t, b, "bob")
	room, expected := federatedRoom(ctx, t, alice, bob, 5)

	var acked atomic.Int64
	reports := killLeaderAt(a, &acked, 150, 3*time.Second)
	begin := time.Now()
	msgs := exchange(ctx, room, []*user{alice, bob}, []string{"killA", "killB"}, 250, 10*time.Millisecond, 60*time.Second, &acked)
	t.Logf("%d messages sent in %v", len(msgs), time.Since(begin).Round(time.Millisecond))
	r := <-reports
	if r.err != nil {
		t.Fatalf("killing A's leader: %v", r.err)
	}
	t.Logf("killed A's leader %s after %d acknowledged sends; new leader after %v",
		a.nodes[r.victim].ID, r.ackedAt, r.elected.Round(time.Millisecond))
	for _, u := range []*user{alice, bob} {
		t.Logf("%s: %d requests so far, %d with an unknown outcome (retried unchanged, sends with their txnId)", u.id, u.attempts.Load(), u.unknown.Load())
	}
	reportProblems(t, "sends", sendFailures(msgs))
	expected = append(expected, msgs...)

	begin = time.Now()
	converge := begin.Add(40 * time.Second)
	for _, u := range []*user{bob, alice} {
		h, problems := waitHistory(ctx, u, room, expected, converge)
		reportProblems(t, u.hs.label+"'s history after the leader kill", problems)
		if h != nil {
			t.Logf("%s: %d events, checked after %v", u.hs.label, len(h.events), time.Since(begin).Round(time.Millisecond))
		}
	}
	// Every node of A, the restarted one too, serves the same history.
	for i := range a.nodes {
		pinned := &user{id: alice.id, token: alice.token, hs: a, bases: []string{a.nodes[i].URL}}
		_, problems := waitHistory(ctx, pinned, room, expected, converge)
		reportProblems(t, a.nodes[i].ID+"'s history", problems)
	}
	checkSameState(ctx, t, room, alice, bob, 30*time.Second)
}

// killReport is what happened to the leader killLeaderAt killed.
type killReport struct {
	victim  int
	ackedAt int64
	elected time.Duration // from the kill to an agreed new leader
	err     error
}

// killLeaderAt SIGKILLs h's leader once acked reaches threshold, waits for
// the survivors to agree on a new leader, and restarts the victim on its
// config and data downFor after the kill. The report comes on the channel.
func killLeaderAt(h *homeserver, acked *atomic.Int64, threshold int64, downFor time.Duration) <-chan killReport {
	reports := make(chan killReport, 1)
	go func() {
		var r killReport
		defer func() { reports <- r }()
		if !proctest.Poll(60*time.Second, 5*time.Millisecond, func() bool { return acked.Load() >= threshold }) {
			r.err = fmt.Errorf("the exchange never reached %d acknowledged sends (%d)", threshold, acked.Load())
			return
		}
		victim, err := h.waitLeader(h.all(), 5*time.Second)
		if err != nil {
			r.err = err
			return
		}
		r.victim, r.ackedAt = victim, acked.Load()
		h.nodes[victim].Kill()
		killedAt := time.Now()
		survivors := slices.DeleteFunc(h.all(), func(i int) bool { return i == victim })
		if _, r.err = h.waitLeader(survivors, 10*time.Second); r.err != nil {
			return
		}
		r.elected = time.Since(killedAt)
		// The victim stays down a while: the new leader's sender must
		// resume the queues without it.
		time.Sleep(time.Until(killedAt.Add(downFor)))
		if r.err = h.nodes[victim].Start(); r.err == nil {
			r.err = h.nodes[victim].Ready(60 * time.Second)
		}
	}()
	return reports
}
