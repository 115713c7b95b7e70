package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ganglion/ganglion/internal/proctest"
)

// workload is a set of users in shared rooms who send messages with txnIds
// and read with incremental syncs, every operation recorded for porcupine
// and for the duplicate and loss checks.
type workload struct {
	t        *testing.T
	c        *cluster
	prefix   string // every test message body starts with it
	rooms    []string
	sessions []*session
	hist     *history

	mu         sync.Mutex
	sends      []*sendOp
	violations []string
	acked      atomic.Int64
	attempts   atomic.Int64
}

// session is one client: a user with its sync position and what it has seen.
type session struct {
	idx         int
	u           *user
	since       string
	sincePos    int64
	views       map[string][]string // room -> bodies seen, oldest first
	lastAckNode int
	nextSeq     int // numbers the session's sends, so txnIds never repeat
}

// sendOp is one logical send: every attempt reuses its txnId.
type sendOp struct {
	client, seq     int
	room, txn, body string
	call, ret       int64 // ret is unknownReturn until acknowledged
	eventID         string
	ackNode         int
	attempts        int
	lastErr         string
	refused         error // a 4xx: the server said no, which it never should here
}

// newWorkload registers users on all nodes, creates the rooms and joins
// everyone to every room, then takes each user's first sync token.
func newWorkload(t *testing.T, c *cluster, users, rooms int) *workload {
	t.Helper()
	begin := time.Now()
	w := &workload{t: t, c: c, prefix: "chaos " + t.Name() + " ", hist: newHistory()}
	urls := c.urls()
	w.sessions = make([]*session, users)
	parallel(t, users, 8, func(i int) error {
		return setupRetry(func(ctx context.Context) (err error) {
			u, err := register(ctx, urls[i%3], fmt.Sprintf("u%d", i))
			w.sessions[i] = &session{idx: i, u: u, views: map[string][]string{}, lastAckNode: -1}
			return err
		})
	})
	for r := 0; r < rooms; r++ {
		var room string
		err := setupRetry(func(ctx context.Context) (err error) {
			room, err = createRoom(ctx, urls[r%3], w.sessions[0].u, fmt.Sprintf("room %d", r))
			return err
		})
		if err != nil {
			t.Fatalf("createRoom: %v", err)
		}
		w.rooms = append(w.rooms, room)
	}
	parallel(t, users*rooms, 8, func(k int) error {
		i, r := k/rooms, k%rooms
		if i == 0 {
			return nil
		}
		return setupRetry(func(ctx context.Context) error {
			return joinRoom(ctx, urls[k%3], w.sessions[i].u, w.rooms[r])
		})
	})
	parallel(t, users, 8, func(i int) error {
		s := w.sessions[i]
		return setupRetry(func(ctx context.Context) error {
			resp, err := syncOnce(ctx, urls[i%3], s.u, "")
			s.since, s.sincePos = resp.NextBatch, tokenPos(resp.NextBatch)
			return err
		})
	})
	t.Logf("%d users in %d rooms set up in %v", users, rooms, time.Since(begin).Round(time.Millisecond))
	return w
}

// setupRetry runs one setup step, retrying an unknown outcome (a cluster
// that formed a moment ago may still answer 503) for up to 20 s.
func setupRetry(f func(ctx context.Context) error) error {
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := withTimeout(5*time.Second, f)
		if !unknownOutcome(err) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// parallel runs f(0..n-1) on width goroutines and fails the test on any error.
func parallel(t *testing.T, n, width int, f func(i int) error) {
	t.Helper()
	errs := make([]error, n)
	next := atomic.Int64{}
	var wg sync.WaitGroup
	for g := 0; g < width; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				errs[i] = f(i)
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func (w *workload) violation(format string, args ...any) {
	w.mu.Lock()
	w.violations = append(w.violations, fmt.Sprintf(format, args...))
	w.mu.Unlock()
}

// loadPlan shapes one run of the workload.
type loadPlan struct {
	perClient int           // sends per client
	readEvery int           // every readEvery-th operation is a sync (0: none)
	pace      time.Duration // mean pause between a client's operations
	attempt   time.Duration // timeout of one HTTP attempt
	giveUp    time.Duration // how long one send keeps retrying
	// readers limits the syncing to sessions [0, readers) (0: all). A sync
	// costs the server in proportion to the events since its token, so
	// every reader adds about the whole history's worth of work.
	readers int
	// route picks the node for a client's seq-th operation, attempt-th try.
	route func(client, seq, attempt int) int
	// onAttempt, if set, sees every attempt's outcome and duration.
	onAttempt func(op *sendOp, node int, err error, took time.Duration)
}

func rotate(client, seq, attempt int) int { return (client + seq + attempt) % 3 }

// run drives the sessions until their sends are done or ctx ends.
func (w *workload) run(ctx context.Context, sessions []*session, plan loadPlan) {
	if plan.route == nil {
		plan.route = rotate
	}
	var wg sync.WaitGroup
	for _, s := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(s.idx), uint64(s.nextSeq)))
			for i := 0; i < plan.perClient && ctx.Err() == nil; i++ {
				reads := plan.readEvery > 0 && (plan.readers == 0 || s.idx < plan.readers)
				if reads && i%plan.readEvery == plan.readEvery-1 {
					node := plan.route(s.idx, s.nextSeq, 0)
					_ = withTimeout(plan.attempt, func(rctx context.Context) error { return w.read(rctx, s, node) })
				}
				w.send(ctx, s, plan)
				if plan.pace > 0 {
					jitter := time.Duration(rng.Int64N(int64(plan.pace)))
					select {
					case <-ctx.Done():
					case <-time.After(plan.pace/2 + jitter):
					}
				}
			}
		}()
	}
	wg.Wait()
}

// send makes one logical send, retrying an unknown outcome with the same
// txnId (on another node) until it is acknowledged or the plan gives up.
func (w *workload) send(ctx context.Context, s *session, plan loadPlan) *sendOp {
	seq := s.nextSeq
	s.nextSeq++
	op := &sendOp{client: s.idx, seq: seq, room: w.rooms[seq%len(w.rooms)], txn: fmt.Sprintf("txn-%d", seq),
		body: fmt.Sprintf("%sc%d #%d", w.prefix, s.idx, seq), call: w.hist.now(), ret: unknownReturn, ackNode: -1}
	w.mu.Lock()
	w.sends = append(w.sends, op)
	w.mu.Unlock()
	w.deliver(ctx, s, op, plan)
	if op.eventID != "" {
		s.lastAckNode = op.ackNode
	}
	return op
}

// deliver makes attempts at op until one is acknowledged, refused, or the
// plan's retry budget or ctx runs out.
func (w *workload) deliver(ctx context.Context, s *session, op *sendOp, plan loadPlan) {
	deadline := time.Now().Add(plan.giveUp)
	for attempt := 0; ; attempt++ {
		node := plan.route(s.idx, op.seq, attempt)
		var evID string
		begin := time.Now()
		err := withTimeout(plan.attempt, func(actx context.Context) (err error) {
			evID, err = sendMessage(actx, w.c.nodes[node].URL, s.u, op.room, op.txn, op.body)
			return err
		})
		if plan.onAttempt != nil {
			plan.onAttempt(op, node, err, time.Since(begin))
		}
		w.attempts.Add(1)
		op.attempts++
		if err == nil {
			op.ret, op.eventID, op.ackNode = w.hist.now(), evID, node
			w.acked.Add(1)
			return
		}
		op.lastErr = fmt.Sprintf("%s: %v", w.c.nodes[node].ID, err)
		if !unknownOutcome(err) {
			op.refused = err
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return
		}
		time.Sleep(time.Duration(min(50*(attempt+1), 500)) * time.Millisecond)
	}
}

// retryUnacknowledged retries, with their original txnIds, the sends whose
// outcome is still unknown; each must now succeed exactly once.
func (w *workload) retryUnacknowledged(plan loadPlan) {
	ops := w.unacknowledged()
	if len(ops) == 0 {
		return
	}
	w.t.Logf("retrying %d sends with an unknown outcome", len(ops))
	ctx, cancel := context.WithTimeout(context.Background(), plan.giveUp+plan.attempt)
	defer cancel()
	var wg sync.WaitGroup
	for _, op := range ops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.deliver(ctx, w.sessions[op.client], op, plan)
			if op.eventID == "" {
				w.violation("send %s of %s still fails after the cluster recovered: %s", op.txn, w.sessions[op.client].u.id, op.lastErr)
			}
		}()
	}
	wg.Wait()
}

// read is one incremental sync on node: new test messages are appended to
// the session's views and every room's view is recorded as a read.
func (w *workload) read(ctx context.Context, s *session, node int) error {
	base := w.c.nodes[node].URL
	call := w.hist.now()
	resp, err := syncOnce(ctx, base, s.u, s.since)
	if err != nil {
		return err
	}
	if pos := tokenPos(resp.NextBatch); pos < s.sincePos {
		w.violation("%s: sync on %s went back in time: since %s, next_batch %s", s.u.id, w.c.nodes[node].ID, s.since, resp.NextBatch)
	}
	fresh := map[string][]proctest.ClientEvent{}
	for _, room := range w.rooms {
		tl := resp.Rooms.Join[room].Timeline
		events := tl.Events
		if tl.Limited {
			// Fill the gap between the old token and the timeline's start.
			var gap []proctest.ClientEvent
			from := s.since
			for pages := 0; pages < 20; pages++ {
				page, err := messages(ctx, base, s.u, room, "f", from, tl.PrevBatch, 1000)
				if err != nil {
					return err
				}
				gap = append(gap, page.Chunk...)
				if page.End == "" || len(page.Chunk) == 0 {
					break
				}
				from = page.End
			}
			events = append(gap, events...)
		}
		fresh[room] = events
	}
	ret := w.hist.now()
	for _, room := range w.rooms {
		view := s.views[room]
		seen := make(map[string]bool, len(view))
		for _, b := range view {
			seen[b] = true
		}
		for _, e := range fresh[room] {
			b := e.Body()
			if e.Type != "m.room.message" || !strings.HasPrefix(b, w.prefix) {
				continue
			}
			if seen[b] {
				w.violation("%s: sync on %s delivered %q again", s.u.id, w.c.nodes[node].ID, b)
				continue
			}
			seen[b] = true
			view = append(view, b)
		}
		s.views[room] = view
		in := logInput{Room: room, Client: s.idx, Node: node, Read: true, SeesOwn: node == s.lastAckNode}
		w.hist.add(s.idx, in, logOutput{View: view[:len(view):len(view)]}, call, ret)
	}
	s.since, s.sincePos = resp.NextBatch, max(s.sincePos, tokenPos(resp.NextBatch))
	return nil
}
