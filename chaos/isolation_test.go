package chaos

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ganglion/ganglion/internal/proctest"
)

// TestMinorityIsolation cuts one node off from the other two with the proxy
// (Raft and forwarded writes alike), first a follower and then the leader.
// While cut, every write sent to it must fail within 2 s with 503 M_UNKNOWN
// saying the cluster has no quorum, never a 200, while the other two go on
// accepting writes. After healing, the node must rejoin and converge; the
// writes it refused are retried with their txnIds and land exactly once.
func TestMinorityIsolation(t *testing.T) {
	c := newCluster(t, clusterOptions{bootstrapExpect: true})
	c.start()
	w := newWorkload(t, c, 12, 1)
	majority, minority := w.sessions[:8], w.sessions[8:]

	for _, cutLeader := range []bool{false, true} {
		leader, _, err := c.waitLeader(c.all(), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		victim := (leader + 1) % 3
		if cutLeader {
			victim = leader
		}
		w.isolationRound(majority, minority, victim)
		if t.Failed() {
			return
		}
	}
	retry := loadPlan{attempt: 5 * time.Second, giveUp: 30 * time.Second, route: rotate}
	w.retryUnacknowledged(retry)
	w.verify()
}

// cutAttempt is one write sent to the isolated node.
type cutAttempt struct {
	at   time.Duration // since the cut
	took time.Duration
	err  error
}

// isolationRound cuts victim off for a few seconds while the majority
// sessions write through the other nodes and the minority sessions write
// through the victim, then heals and waits for convergence.
func (w *workload) isolationRound(majority, minority []*session, victim int) {
	t, c := w.t, w.c
	others := slices.DeleteFunc(c.all(), func(i int) bool { return i == victim })
	st, _ := c.status(victim)
	t.Logf("isolating %s (%s)", c.nodes[victim].ID, st.State)

	const hold = 4 * time.Second
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		w.run(ctx, majority, loadPlan{perClient: 200, readEvery: 5, pace: 100 * time.Millisecond,
			attempt: 5 * time.Second, giveUp: 20 * time.Second,
			route: func(client, seq, attempt int) int { return others[(client+seq+attempt)%2] }})
	}()
	time.Sleep(500 * time.Millisecond) // the majority is writing before the cut

	c.net.Isolate(c.nodes[victim].ID)
	cutAt := time.Now()
	var mu sync.Mutex
	var attempts []cutAttempt
	probe := loadPlan{perClient: 100, attempt: 5 * time.Second, giveUp: 0,
		route: func(int, int, int) int { return victim },
		onAttempt: func(_ *sendOp, _ int, err error, took time.Duration) {
			mu.Lock()
			attempts = append(attempts, cutAttempt{at: time.Since(cutAt) - took, took: took, err: err})
			mu.Unlock()
		}}
	probeCtx, stopProbes := context.WithTimeout(ctx, hold)
	w.run(probeCtx, minority, probe)
	stopProbes()
	ackedBeforeHeal := w.acked.Load()
	c.net.Heal()
	healedAt := time.Now()

	for _, a := range attempts {
		ae, _ := a.err.(*proctest.APIError)
		switch {
		case a.err == nil:
			t.Errorf("a write on the isolated %s was acknowledged %v after the cut", c.nodes[victim].ID, a.at)
		case ae == nil || ae.Status != 503 || ae.Errcode != "M_UNKNOWN" || !strings.Contains(ae.Message, "quorum"):
			t.Errorf("a write on the isolated %s %v after the cut failed with %v; want 503 M_UNKNOWN about quorum", c.nodes[victim].ID, a.at, a.err)
		case a.took > 2*time.Second:
			t.Errorf("a write on the isolated %s %v after the cut took %v to fail (want at most 2s)", c.nodes[victim].ID, a.at, a.took)
		}
	}
	if len(attempts) < len(minority) {
		t.Errorf("only %d writes were tried on the isolated node", len(attempts))
	}
	if t.Failed() {
		t.Logf("writes on the isolated %s: %v", c.nodes[victim].ID, attempts)
	}
	cancel()
	wg.Wait()
	w.checkMajorityProgress(majority, cutAt, healedAt)
	if _, _, err := c.waitLeader(c.all(), 10*time.Second); err != nil {
		t.Errorf("after healing %s: %v", c.nodes[victim].ID, err)
	}
	idx := c.waitConverged(30 * time.Second)
	t.Logf("%d writes refused by the isolated %s; %d acknowledged by then; healed and converged at index %d in %v",
		len(attempts), c.nodes[victim].ID, ackedBeforeHeal, idx, time.Since(healedAt).Round(time.Millisecond))
}

// checkMajorityProgress requires every majority session to have had a
// write acknowledged while the cut lasted (after a new leader's election).
func (w *workload) checkMajorityProgress(majority []*session, cutAt, healedAt time.Time) {
	from, to := int64(cutAt.Sub(w.hist.start)), int64(healedAt.Sub(w.hist.start))
	w.mu.Lock()
	defer w.mu.Unlock()
	progressed := map[int]bool{}
	for _, op := range w.sends {
		if op.eventID != "" && op.call >= from && op.ret <= to {
			progressed[op.client] = true
		}
	}
	for _, s := range majority {
		if !progressed[s.idx] {
			w.t.Errorf("%s had no write acknowledged by the majority during the cut", s.u.id)
		}
	}
}

func (a cutAttempt) String() string { return fmt.Sprintf("+%v took %v: %v", a.at, a.took, a.err) }

// TestTxnRetryOutlivesCancelledAttempt: a client's first send times out
// and it retries with the same txnId while the first attempt is still in
// flight on the leader (here: the leader is cut off, so nothing commits
// for a moment). The retry must get the send's real outcome (its event ID,
// or 503 if the cluster cannot commit it now), not the first attempt's
// cancellation as a 500; and once the cluster is whole, the txnId yields
// exactly one event.
func TestTxnRetryOutlivesCancelledAttempt(t *testing.T) {
	c := newCluster(t, clusterOptions{})
	c.start()
	w := newWorkload(t, c, 2, 1)
	leader, _, err := c.waitLeader(c.all(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	s, room, url := w.sessions[1], w.rooms[0], c.nodes[leader].URL
	const txn, body = "retried-txn", "chaos retried once"
	send := func(timeout time.Duration) (string, error) {
		return withResult(timeout, func(ctx context.Context) (string, error) {
			return sendMessage(ctx, url, s.u, room, txn, body)
		})
	}

	c.net.Isolate(c.nodes[leader].ID)
	firstDone := make(chan error, 1)
	// The first attempt gives up well inside the leader's lease; the retry
	// arrives while it is still in flight.
	go func() { _, err := send(120 * time.Millisecond); firstDone <- err }()
	time.Sleep(40 * time.Millisecond)
	_, retryErr := send(5 * time.Second)
	firstErr := <-firstDone
	c.net.Heal()
	t.Logf("first attempt: %v; retry: %v", firstErr, retryErr)
	if ae, ok := retryErr.(*proctest.APIError); ok && ae.Status != 503 {
		t.Errorf("a retry while the first attempt was cancelled got %v; want the event ID or 503", retryErr)
	}

	if _, _, err := c.waitLeader(c.all(), 10*time.Second); err != nil {
		t.Fatal(err)
	}
	var eventID string
	if !proctest.Poll(15*time.Second, 100*time.Millisecond, func() bool {
		eventID, err = send(3 * time.Second)
		return err == nil
	}) {
		t.Fatalf("the send never succeeded after healing: %v", err)
	}
	again, err := send(3 * time.Second)
	if err != nil || again != eventID {
		t.Errorf("another retry gave %q (%v), want %s", again, err, eventID)
	}
	c.waitConverged(30 * time.Second)
	tl, err := fullTimeline(context.Background(), url, s.u, room)
	if err != nil {
		t.Fatal(err)
	}
	count := 0
	for _, e := range tl {
		if e.Body() == body {
			count++
		}
	}
	if count != 1 {
		t.Errorf("the retried send is in the room %d times", count)
	}
}
