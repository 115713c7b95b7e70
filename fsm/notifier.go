package fsm

import (
	"context"
	"sync"
)

// Notifier tells waiting readers (long-polling /sync, /events, a follower
// waiting to catch up to a token) that entries were applied.
type Notifier struct {
	mu      sync.Mutex
	applied uint64
	ch      chan struct{}
}

// NewNotifier starts at the given applied index.
func NewNotifier(applied uint64) *Notifier {
	return &Notifier{applied: applied, ch: make(chan struct{})}
}

// Applied is the last applied index announced.
func (n *Notifier) Applied() uint64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.applied
}

// Changed returns a channel closed at the next publish, and the applied
// index as of now. Callers check their condition after taking the channel.
func (n *Notifier) Changed() (<-chan struct{}, uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.ch, n.applied
}

func (n *Notifier) publish(applied uint64, _ *Touched) {
	n.mu.Lock()
	if applied > n.applied {
		n.applied = applied
	}
	close(n.ch)
	n.ch = make(chan struct{})
	n.mu.Unlock()
}

func (n *Notifier) reset(applied uint64) {
	n.mu.Lock()
	n.applied = applied
	close(n.ch)
	n.ch = make(chan struct{})
	n.mu.Unlock()
}

// WaitApplied blocks until index is applied or ctx ends; it reports whether
// the index was reached.
func (n *Notifier) WaitApplied(ctx context.Context, index uint64) bool {
	for {
		ch, applied := n.Changed()
		if applied >= index {
			return true
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return false
		}
	}
}
