package federation

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/ganglion/ganglion/cluster"
	"github.com/ganglion/ganglion/fsm"
)

// TransactionSender puts one transaction to a destination
// (PUT /_matrix/federation/v1/send/{txnId}); nil means the remote answered
// 200, any error means "retry later".
type TransactionSender interface {
	SendTransaction(ctx context.Context, destination, txnID string, body []byte) error
}

// Sender is the outbound federation queue runner (invariant 8). It runs
// only while this node leads: the queues and the transaction in flight per
// destination live in the FSM (fsm/fed_outbox.go), so a new leader resends
// the same transaction ID with the same PDUs and EDUs and nothing is lost
// or sent in two different transactions. One worker goroutine per
// destination keeps one transaction in flight at a time.
type Sender struct {
	node       *cluster.Node
	serverName string
	send       TransactionSender
	log        hclog.Logger

	// Tunables, read by Start (zero means the default).
	MinBackoff         time.Duration // first retry delay; default 2s
	MaxBackoff         time.Duration // retry delay cap; default 1h
	CatchUpThreshold   int           // queued rows above which a recovering destination is thinned; default 500
	CatchUpKeepPerRoom int           // PDUs per room that thinning keeps; default 1
	MaxEphemeral       int           // ephemeral EDUs kept per destination; default 100
	PollInterval       time.Duration // fallback rescan period; default 1s

	kick chan struct{}

	mu         sync.Mutex
	leading    bool
	leadCtx    context.Context
	leadCancel context.CancelFunc
	workers    map[string]*destWorker
	ephemeral  map[string][]json.RawMessage
	wg         sync.WaitGroup // workers of the current term

	cancel context.CancelFunc
	done   chan struct{}
}

// destWorker is the state of one destination's worker. Only its goroutine
// touches the plain fields; backingOff and wake are shared.
type destWorker struct {
	dest       string
	wake       chan struct{} // DestinationOnline cuts the backoff short
	backingOff atomic.Bool

	failures   int
	retryAt    time.Time
	recovering bool // a success after failures: thin a large backlog once
	cacheID    string
	cacheBody  []byte
}

// minScanGap spaces the scans for destinations without a worker; workers
// that exist pick up new rows themselves.
const minScanGap = 20 * time.Millisecond

// NewSender returns a stopped sender; serverName is the transactions'
// origin.
func NewSender(node *cluster.Node, serverName string, send TransactionSender, log hclog.Logger) *Sender {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &Sender{node: node, serverName: serverName, send: send, log: log.Named("sender"),
		kick: make(chan struct{}, 1), workers: map[string]*destWorker{}, ephemeral: map[string][]json.RawMessage{}}
}

// Start runs the sender until ctx ends or Stop is called.
func (s *Sender) Start(ctx context.Context) {
	s.MinBackoff = orDefault(s.MinBackoff, 2*time.Second)
	s.MaxBackoff = orDefault(s.MaxBackoff, time.Hour)
	s.PollInterval = orDefault(s.PollInterval, time.Second)
	s.CatchUpThreshold = orDefault(s.CatchUpThreshold, 500)
	s.CatchUpKeepPerRoom = orDefault(s.CatchUpKeepPerRoom, 1)
	s.MaxEphemeral = orDefault(s.MaxEphemeral, 100)
	ctx, s.cancel = context.WithCancel(ctx)
	s.done = make(chan struct{})
	s.node.OnLeadership(func(bool) { s.poke() })
	go s.run(ctx)
}

// Stop ends the loop and waits for every worker. A transaction in flight
// stays recorded in the FSM for whoever leads next.
func (s *Sender) Stop() {
	if s.cancel == nil {
		return
	}
	s.cancel()
	<-s.done
}

// QueueEphemeralEDU queues a typing or presence EDU for dest in memory: it
// rides along the next transaction started for dest, or goes alone. It is
// dropped when this node does not lead or dest is backing off (it would be
// stale by the time it arrives).
func (s *Sender) QueueEphemeralEDU(dest string, edu json.RawMessage) {
	if dest == "" || dest == s.serverName {
		return
	}
	s.mu.Lock()
	if !s.leading {
		s.mu.Unlock()
		return
	}
	if w := s.workers[dest]; w != nil && w.backingOff.Load() {
		s.mu.Unlock()
		return
	}
	q := append(s.ephemeral[dest], edu)
	if len(q) > s.MaxEphemeral {
		q = q[len(q)-s.MaxEphemeral:]
	}
	s.ephemeral[dest] = q
	s.mu.Unlock()
	s.poke()
}

// DestinationOnline cuts dest's backoff short, e.g. when it just sent us a
// request and so is evidently up again.
func (s *Sender) DestinationOnline(dest string) {
	s.mu.Lock()
	w := s.workers[dest]
	s.mu.Unlock()
	if w != nil && w.backingOff.Load() {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

func (s *Sender) poke() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// run follows leadership and starts a worker for every destination with
// something to send, after every applied batch.
func (s *Sender) run(ctx context.Context) {
	defer close(s.done)
	defer s.stopLeading()
	tick := time.NewTicker(s.PollInterval)
	defer tick.Stop()
	for {
		changed, _ := s.node.Notifier().Changed()
		scanned := time.Now()
		if s.node.LeaderReady() {
			s.spawnWorkers(ctx)
		} else {
			s.stopLeading()
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-s.kick:
		case <-tick.C:
		}
		// One scan per burst of applied entries, not one per entry.
		if wait := minScanGap - time.Since(scanned); wait > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
	}
}

func (s *Sender) spawnWorkers(ctx context.Context) {
	var dests []string
	if err := s.node.Store().View(func(r *fsm.ReadTx) error {
		dests = r.OutboxDestinations()
		return nil
	}); err != nil {
		s.log.Warn("reading the outbox", "error", err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.leading {
		s.leading = true
		s.leadCtx, s.leadCancel = context.WithCancel(ctx)
		s.log.Info("leading: sending federation transactions", "destinations", len(dests))
	}
	for d := range s.ephemeral {
		dests = append(dests, d)
	}
	for _, d := range dests {
		if _, ok := s.workers[d]; ok || d == s.serverName {
			continue
		}
		w := &destWorker{dest: d, wake: make(chan struct{}, 1)}
		s.workers[d] = w
		s.wg.Add(1)
		go s.runDest(s.leadCtx, w)
	}
}

// stopLeading cancels every worker and waits for them; ephemeral EDUs go
// with the term.
func (s *Sender) stopLeading() {
	s.mu.Lock()
	if !s.leading {
		s.mu.Unlock()
		return
	}
	s.leading = false
	s.leadCancel()
	s.mu.Unlock()
	s.wg.Wait()
	s.mu.Lock()
	s.workers = map[string]*destWorker{}
	s.ephemeral = map[string][]json.RawMessage{}
	s.mu.Unlock()
	s.log.Info("not leading: federation sending stopped")
}

// workerExit removes w and has run look again: rows queued while w was
// deciding it had nothing left are picked up by a new worker.
func (s *Sender) workerExit(w *destWorker) {
	s.mu.Lock()
	if s.workers[w.dest] == w {
		delete(s.workers, w.dest)
	}
	s.mu.Unlock()
	s.wg.Done()
	s.poke()
}

// takeEphemeral removes and returns up to n of dest's ephemeral EDUs.
func (s *Sender) takeEphemeral(dest string, n int) []json.RawMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.ephemeral[dest]
	if n <= 0 || len(q) == 0 {
		return nil
	}
	n = min(n, len(q))
	out := q[:n:n]
	if n == len(q) {
		delete(s.ephemeral, dest)
	} else {
		s.ephemeral[dest] = q[n:]
	}
	return out
}

func (s *Sender) dropEphemeral(dest string) {
	s.mu.Lock()
	delete(s.ephemeral, dest)
	s.mu.Unlock()
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}
