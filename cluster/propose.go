package cluster

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/hashicorp/raft"

	"github.com/ganglion/ganglion/fsm"
)

// applyTimeout bounds how long a proposal may wait to be enqueued.
const applyTimeout = 10 * time.Second

// leaderWait is how long a write waits for an election in progress before
// the client is told the cluster is unavailable: long enough to ride out a
// failover, short enough that a node cut off from the quorum answers fast.
const leaderWait = 1500 * time.Millisecond

// awaitLeadership reports whether this node leads, waiting up to d for an
// election to settle.
func (n *Node) awaitLeadership(d time.Duration) bool {
	deadline := time.Now().Add(d)
	for !n.LeaderReady() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// ErrUnavailable is returned when the write cannot be committed now (no
// leader, no quorum, shutting down). Clients get 503 and may retry.
var ErrUnavailable = &fsm.Error{Status: http.StatusServiceUnavailable, Errcode: "M_UNKNOWN",
	Message: "the cluster has no leader or no quorum; retry shortly"}

// Future is a proposal in flight.
type Future struct {
	f raft.ApplyFuture
}

// Wait blocks until the entry is applied (or fails) and returns the
// handler's value or refusal.
func (f *Future) Wait(ctx context.Context) (any, uint64, error) {
	done := make(chan error, 1)
	go func() { done <- f.f.Error() }()
	select {
	case err := <-done:
		if err != nil {
			return nil, 0, translate(err)
		}
	case <-ctx.Done():
		return nil, 0, ctx.Err()
	}
	res, _ := f.f.Response().(fsm.Result)
	return res.Value, f.f.Index(), res.Err
}

// ProposeAsync enqueues a command and returns at once. Calls made in order
// are committed in that order, which lets the room builder pipeline sends.
//
// It does not wait for leadership: callers hold a room's lock around it,
// and the request already waited for a ready leader before it was routed
// here (Middleware), so a node that lost leadership fails fast.
func (n *Node) ProposeAsync(op string, payload any) (*Future, error) {
	if !n.LeaderReady() {
		return nil, ErrUnavailable
	}
	data, err := fsm.Encode(op, time.Now().UnixMilli(), payload)
	if err != nil {
		return nil, err
	}
	return &Future{f: n.raft.Apply(data, applyTimeout)}, nil
}

// Propose commits a command and returns the handler's value and the index
// it was applied at. On a follower the command is forwarded to the leader
// and the value is nil (only the refusal and the index come back); callers
// that need the value run on the leader, where forwarded writes land.
func (n *Node) Propose(ctx context.Context, op string, payload any) (any, uint64, error) {
	addr, id, self := n.writeTarget(leaderWait)
	if !self && addr == "" {
		return nil, 0, ErrUnavailable
	}
	data, err := fsm.Encode(op, time.Now().UnixMilli(), payload)
	if err != nil {
		return nil, 0, err
	}
	if !self {
		idx, err := n.forwardPropose(ctx, addr, id, data)
		return nil, idx, err
	}
	return (&Future{f: n.raft.Apply(data, applyTimeout)}).Wait(ctx)
}

func translate(err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost),
		errors.Is(err, raft.ErrRaftShutdown), errors.Is(err, raft.ErrEnqueueTimeout),
		errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return ErrUnavailable
	}
	return err
}

// Barrier waits until every entry committed before the call is applied to
// the local store; a new leader runs it before building on its store.
func (n *Node) Barrier(timeout time.Duration) error {
	return translate(n.raft.Barrier(timeout).Error())
}
