package cluster

import (
	"sync"
	"sync/atomic"
	"time"
)

// barrierTimeout bounds how long a new leader waits to apply what earlier
// terms committed before it accepts writes.
const barrierTimeout = 30 * time.Second

// leadership tracks whether this node leads and is ready to build on its
// store: a new leader first applies every entry committed before its term
// (a barrier), then runs the hooks (rooms drop cached heads), and only then
// accepts proposals.
type leadership struct {
	ready atomic.Bool
	mu    sync.Mutex
	hooks []func(leader bool)
}

// OnLeadership registers fn to run on every leadership change: with true
// once this node leads and its store holds everything committed, with false
// when it stops leading. Hooks run in order on one goroutine.
func (n *Node) OnLeadership(fn func(leader bool)) {
	n.lead.mu.Lock()
	n.lead.hooks = append(n.lead.hooks, fn)
	n.lead.mu.Unlock()
}

// LeaderReady reports whether this node leads and may build on its store.
func (n *Node) LeaderReady() bool { return n.lead.ready.Load() && n.IsLeader() }

func (n *Node) watchLeadership(ch <-chan bool) {
	for {
		select {
		case <-n.done:
			return
		case leader := <-ch:
			if !leader {
				n.lead.ready.Store(false)
				n.runHooks(false)
				continue
			}
			if err := n.raft.Barrier(barrierTimeout).Error(); err != nil {
				// Lost leadership (or shutting down) before catching up:
				// the matching false follows on the channel.
				n.log.Warn("leader barrier failed", "error", err)
				continue
			}
			n.runHooks(true)
			n.lead.ready.Store(true)
			n.log.Info("leading", "applied_index", n.store.AppliedIndex())
		}
	}
}

func (n *Node) runHooks(leader bool) {
	n.lead.mu.Lock()
	hooks := append([]func(bool){}, n.lead.hooks...)
	n.lead.mu.Unlock()
	for _, fn := range hooks {
		fn(leader)
	}
}

// TransferLeadership hands leadership to another voter if this node leads
// (graceful shutdown). It waits up to d and reports failures in the log.
func (n *Node) TransferLeadership(d time.Duration) {
	if !n.IsLeader() || len(n.raft.GetConfiguration().Configuration().Servers) < 2 {
		return
	}
	f := n.raft.LeadershipTransfer()
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		if err != nil {
			n.log.Warn("leadership transfer failed", "error", err)
			return
		}
		n.log.Info("leadership transferred")
	case <-time.After(d):
		n.log.Warn("leadership transfer timed out")
	}
}
