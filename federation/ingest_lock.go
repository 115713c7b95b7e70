package federation

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
)

// inboundState is the per-API state of inbound federation: the ephemeral
// sink, one ingestion at a time per room, and one processing per inbound
// transaction on this node.
type inboundState struct {
	mu    sync.Mutex
	sink  EphemeralSink
	rooms map[string]*roomLock
	txns  map[string]*txnCall
}

type roomLock struct {
	ch   chan struct{}
	refs int
}

// txnCall is a transaction being processed; retries arriving meanwhile wait
// for its answer.
type txnCall struct {
	done chan struct{}
	resp json.RawMessage
	err  error
}

// lockRoom serialises ingestion into one room on this node, so concurrent
// transactions do not fetch the same missing events twice.
func (s *inboundState) lockRoom(ctx context.Context, roomID string) (func(), error) {
	s.mu.Lock()
	l := s.rooms[roomID]
	if l == nil {
		l = &roomLock{ch: make(chan struct{}, 1)}
		s.rooms[roomID] = l
	}
	l.refs++
	s.mu.Unlock()
	release := func() {
		s.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(s.rooms, roomID)
		}
		s.mu.Unlock()
	}
	select {
	case l.ch <- struct{}{}:
		return func() { <-l.ch; release() }, nil
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
}

// once runs fn for key unless it already runs, in which case it waits for
// that run's answer.
func (s *inboundState) once(ctx context.Context, key string, fn func() (json.RawMessage, error)) (resp json.RawMessage, err error) {
	s.mu.Lock()
	if c := s.txns[key]; c != nil {
		s.mu.Unlock()
		select {
		case <-c.done:
			return c.resp, c.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	c := &txnCall{done: make(chan struct{})}
	s.txns[key] = c
	s.mu.Unlock()
	// Waiters are released even if fn panics (the router recovers it).
	defer func() {
		if p := recover(); p != nil {
			c.err = fmt.Errorf("transaction processing failed: %v", p)
			resp, err = nil, c.err
		}
		s.mu.Lock()
		delete(s.txns, key)
		s.mu.Unlock()
		close(c.done)
	}()
	c.resp, c.err = fn()
	return c.resp, c.err
}

func (s *inboundState) ephemeralSink() EphemeralSink {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sink
}
