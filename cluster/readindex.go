package cluster

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"time"
)

// readBarrierWait bounds how long a read waits to learn and reach the
// leader's commit index. Past it (no leader, cut off) the read is served
// from the local store as it is: available, though possibly behind.
const readBarrierWait = 500 * time.Millisecond

// readRounds coalesces read barriers: one round at a time asks the leader
// (or, on the leader, the quorum) and every read that arrived before the
// round started shares its answer. A read arriving during a round waits for
// the next one, so it never uses an answer older than itself.
type readRounds struct {
	mu      sync.Mutex
	next    *readRound
	running bool
}

type readRound struct {
	done  chan struct{}
	index uint64
	ok    bool
}

// ReadBarrier returns once this node has applied everything that was
// committed when the call began, so a read after it sees every write
// acknowledged before it, on any node. It gives up after readBarrierWait.
func (n *Node) ReadBarrier(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, readBarrierWait)
	defer cancel()
	rd := n.reads.join(n)
	select {
	case <-rd.done:
	case <-ctx.Done():
		return
	}
	if rd.ok {
		n.fsm.Notifier().WaitApplied(ctx, rd.index)
	}
}

func (r *readRounds) join(n *Node) *readRound {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.next == nil {
		r.next = &readRound{done: make(chan struct{})}
	}
	rd := r.next
	if !r.running {
		r.running = true
		r.next = nil
		go r.run(n, rd)
	}
	return rd
}

func (r *readRounds) run(n *Node, rd *readRound) {
	for rd != nil {
		rd.index, rd.ok = n.readIndex()
		close(rd.done)
		r.mu.Lock()
		rd, r.next = r.next, nil
		if rd == nil {
			r.running = false
		}
		r.mu.Unlock()
	}
}

// readIndex finds the index a read must wait for: on the leader, after
// confirming it still leads; on a follower, by asking the leader. It is
// the leader's store index, not Raft's commit index: every acknowledged
// write is applied to the leader's store before it is acknowledged (a new
// leader applies a barrier before it accepts writes), while no-op and
// barrier entries, which never reach the store, would keep a commit index
// out of reach until the next write.
//
// A node that believed it led but no longer does (resumed after a pause,
// deposed while away) finds out here and asks the new leader, retrying
// within the barrier's bound rather than serving what it has.
func (n *Node) readIndex() (uint64, bool) {
	deadline := time.Now().Add(readBarrierWait)
	for {
		if idx, ok := n.readIndexOnce(); ok {
			return idx, true
		}
		if time.Now().After(deadline) {
			return 0, false
		}
		select {
		case <-n.done:
			return 0, false
		case <-time.After(25 * time.Millisecond):
		}
	}
}

func (n *Node) readIndexOnce() (uint64, bool) {
	if n.LeaderReady() {
		if err := n.raft.VerifyLeader().Error(); err != nil {
			return 0, false
		}
		return n.store.AppliedIndex(), true
	}
	addr, id := n.raft.LeaderWithID()
	if id == "" || string(id) == n.cfg.Node.ID {
		return 0, false
	}
	ctx, cancel := context.WithTimeout(context.Background(), readBarrierWait)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+string(addr)+pathReadIndex, nil)
	if err != nil {
		return 0, false
	}
	resp, err := n.fwd.RoundTrip(req)
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	var ans struct {
		Index uint64 `json:"index"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(resp.Body, 4096)).Decode(&ans) != nil {
		return 0, false
	}
	return ans.Index, true
}
