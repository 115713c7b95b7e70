package rooms

import (
	"context"
	"net/http"
	"sync"

	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/id"

	"github.com/ganglion/ganglion/cluster"
	"github.com/ganglion/ganglion/fsm"
)

// roomHead is the leader's view of a room including events proposed but not
// yet committed, so event N+1 can be built on N before N commits.
type roomHead struct {
	mu          sync.Mutex
	loaded      bool
	stale       bool
	roomID      string
	version     id.RoomVersion
	creator     string
	state       map[pdu.StateKey]id.EventID
	pdus        map[id.EventID]*pdu.PDU // parsed state events, for auth
	extremities []id.EventID
	depth       int64
	last        *cluster.Future // newest proposal; all earlier ones apply before it
}

var errUnknownRoom = &fsm.Error{Status: http.StatusNotFound, Errcode: "M_NOT_FOUND", Message: "unknown room"}

// lockHead returns the room's head, locked and current. The caller unlocks.
func (s *Service) lockHead(ctx context.Context, roomID string) (*roomHead, error) {
	s.headsMu.Lock()
	h, ok := s.heads[roomID]
	if !ok {
		h = &roomHead{roomID: roomID}
		s.heads[roomID] = h
	}
	s.headsMu.Unlock()
	h.mu.Lock()
	if h.loaded && !h.stale {
		return h, nil
	}
	// After a refused proposal the cached head may hold events that never
	// committed: wait for everything in flight to apply, then reload.
	if h.last != nil {
		_, _, _ = h.last.Wait(ctx)
		h.last = nil
	}
	if err := s.loadHead(h); err != nil {
		h.mu.Unlock()
		return nil, err
	}
	return h, nil
}

func (s *Service) loadHead(h *roomHead) error {
	return s.store.View(func(r *fsm.ReadTx) error {
		room, err := r.Room(h.roomID)
		if err != nil {
			return errUnknownRoom
		}
		h.version = id.RoomVersion(room.Version)
		h.creator = room.Creator
		h.depth = room.Depth
		h.extremities = h.extremities[:0]
		for _, e := range room.Extremities {
			h.extremities = append(h.extremities, id.EventID(e))
		}
		h.state = map[pdu.StateKey]id.EventID{}
		for k, v := range r.CurrentState(h.roomID) {
			h.state[pdu.StateKey{Type: k[0], StateKey: k[1]}] = id.EventID(v)
		}
		h.pdus = map[id.EventID]*pdu.PDU{}
		h.loaded, h.stale = true, false
		return nil
	})
}

// markStale makes the next user of the head reload it from the store.
func (s *Service) markStale(roomID string) {
	s.headsMu.Lock()
	h := s.heads[roomID]
	s.headsMu.Unlock()
	if h == nil {
		return
	}
	h.mu.Lock()
	h.stale = true
	h.mu.Unlock()
}

// getPDUs resolves event IDs for the auth checks from the head's cache, then
// the store.
func (s *Service) getPDUs(h *roomHead, ids []id.EventID) ([]*pdu.PDU, error) {
	out := make([]*pdu.PDU, len(ids))
	var missing []int
	for i, eid := range ids {
		if p, ok := h.pdus[eid]; ok {
			out[i] = p
		} else {
			missing = append(missing, i)
		}
	}
	if len(missing) == 0 {
		return out, nil
	}
	err := s.store.View(func(r *fsm.ReadTx) error {
		for _, i := range missing {
			rec, err := r.Event(string(ids[i]))
			if err != nil {
				continue
			}
			p, err := fsm.ParsePDU(rec.PDU)
			if err != nil {
				return err
			}
			p.InternalMeta.EventID = ids[i]
			p.InternalMeta.Rejected = rec.Rejected
			if rec.RedactedBecause == "" {
				h.pdus[ids[i]] = p
			}
			out[i] = p
		}
		return nil
	})
	return out, err
}

// advance records a built event in the head.
func (h *roomHead) advance(p *pdu.PDU, evID id.EventID) {
	h.extremities = []id.EventID{evID}
	if p.Depth > h.depth {
		h.depth = p.Depth
	}
	if p.StateKey != nil {
		h.state[pdu.StateKey{Type: p.Type, StateKey: *p.StateKey}] = evID
		p.InternalMeta.EventID = evID
		h.pdus[evID] = p
	}
}

// InvalidateHead makes the next local event of the room rebuild its head
// from the store: federated events have moved its forward extremities.
func (s *Service) InvalidateHead(roomID string) { s.markStale(roomID) }
