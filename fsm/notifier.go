package fsm

import (
	"context"
	"sync"
)

// Notifier tells waiting readers (long-polling /sync, /events, a follower
// waiting to catch up to a token) that entries were applied, and remembers
// the last index that touched each user and room so that a parked reader
// can tell, without reading the store, whether a batch concerned it.
type Notifier struct {
	mu      sync.Mutex
	applied uint64
	ch      chan struct{}
	users   map[string]uint64
	rooms   map[string]uint64
	// floor: nothing is known about entries at or below it (after a
	// restore or at start), so everything counts as touched there.
	floor uint64
}

// NewNotifier starts at the given applied index.
func NewNotifier(applied uint64) *Notifier {
	return &Notifier{applied: applied, ch: make(chan struct{}), floor: applied,
		users: map[string]uint64{}, rooms: map[string]uint64{}}
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

// TouchedSince reports whether an entry applied after index touched user or
// any of rooms. It errs towards true: a reader that gets true re-reads.
func (n *Notifier) TouchedSince(index uint64, user string, rooms []string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if index < n.floor {
		return true
	}
	if n.users[user] > index {
		return true
	}
	for _, r := range rooms {
		if n.rooms[r] > index {
			return true
		}
	}
	return false
}

func (n *Notifier) publish(applied uint64, t *Touched) {
	n.mu.Lock()
	if applied > n.applied {
		n.applied = applied
	}
	if t != nil {
		for u := range t.Users {
			n.users[u] = applied
		}
		for r := range t.Rooms {
			n.rooms[r] = applied
		}
	}
	close(n.ch)
	n.ch = make(chan struct{})
	n.mu.Unlock()
}

func (n *Notifier) reset(applied uint64) {
	n.mu.Lock()
	n.applied = applied
	n.floor = applied
	n.users = map[string]uint64{}
	n.rooms = map[string]uint64{}
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
