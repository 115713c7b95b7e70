package clientapi

import (
	"sync"

	"github.com/ganglion/ganglion/fsm"
)

// Lazy-loaded members: which member events each device was already sent, so
// incremental syncs skip redundant ones (spec "Lazy-loading room members").
// The record is this node's memory only; a device that moves to another node
// or outlives an eviction just gets some redundant events, which the spec
// allows.
//
// Each entry carries the next_batch position of the response that sent it:
// only a since token at or past that position proves the client received
// it, so a lost response retried with the same token sends the members
// again.

const (
	maxLazyDevices = 10000
	maxLazyRooms   = 1000 // per device
)

// lazySent is one member event a response carried.
type lazySent struct {
	eventID string
	pos     int64 // the response's next_batch position
}

type lazyMembers struct {
	mu      sync.Mutex
	devices map[string]map[string]map[string]lazySent // device key -> room -> user -> sent
}

func newLazyMembers() *lazyMembers {
	return &lazyMembers{devices: map[string]map[string]map[string]lazySent{}}
}

func lazyDeviceKey(c *Caller) string { return c.UserID + "\x00" + c.DeviceID }

// sent reports whether the device holds this member event: a response the
// since token proves received carried it.
func (l *lazyMembers) sent(c *Caller, roomID, userID, eventID string, since int64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.devices[lazyDeviceKey(c)][roomID][userID]
	return ok && e.eventID == eventID && since >= e.pos
}

// record notes the member events a response with next_batch position pos
// carries for the room; reset forgets what was sent before (the room was
// synced afresh).
func (l *lazyMembers) record(c *Caller, roomID string, recs []*fsm.EventRecord, pos int64, reset bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := lazyDeviceKey(c)
	rooms := l.devices[k]
	if rooms == nil {
		if len(l.devices) >= maxLazyDevices {
			for other := range l.devices { // evict one arbitrary device
				delete(l.devices, other)
				break
			}
		}
		rooms = map[string]map[string]lazySent{}
		l.devices[k] = rooms
	}
	users := rooms[roomID]
	if users == nil || reset {
		if users == nil && len(rooms) >= maxLazyRooms {
			for other := range rooms {
				delete(rooms, other)
				break
			}
		}
		users = map[string]lazySent{}
		rooms[roomID] = users
	}
	for _, rec := range recs {
		if rec.Type == "m.room.member" && rec.StateKey != nil {
			users[*rec.StateKey] = lazySent{eventID: rec.EventID, pos: pos}
		}
	}
}

// recordLazy remembers the member events of a room's state and timeline
// when the filter lazy-loads members.
func (s *syncer) recordLazy(roomID string, stateIDs []string, tl roomTimeline, fresh bool) {
	if !s.f.Room.State.LazyLoadMembers || s.f.Room.State.IncludeRedundantMembers {
		return
	}
	recs := make([]*fsm.EventRecord, 0, len(stateIDs)+len(tl.recs))
	for _, id := range stateIDs {
		if rec := s.event(id); rec != nil {
			recs = append(recs, rec)
		}
	}
	recs = append(recs, tl.recs...)
	s.a.lazy.record(s.p.caller, roomID, recs, s.upto, fresh)
}
