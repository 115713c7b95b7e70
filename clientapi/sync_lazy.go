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

const (
	maxLazyDevices = 10000
	maxLazyRooms   = 1000 // per device
)

type lazyMembers struct {
	mu      sync.Mutex
	devices map[string]map[string]map[string]string // device key -> room -> user -> member event ID
}

// lazyByAPI keeps one record per API instance (tests run several).
var lazyByAPI sync.Map // *API -> *lazyMembers

func (a *API) lazyMembers() *lazyMembers {
	if v, ok := lazyByAPI.Load(a); ok {
		return v.(*lazyMembers)
	}
	v, _ := lazyByAPI.LoadOrStore(a, &lazyMembers{devices: map[string]map[string]map[string]string{}})
	return v.(*lazyMembers)
}

func lazyDeviceKey(c *Caller) string { return c.UserID + "\x00" + c.DeviceID }

// sent reports whether the device already holds this member event.
func (l *lazyMembers) sent(c *Caller, roomID, userID, eventID string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.devices[lazyDeviceKey(c)][roomID][userID] == eventID
}

// record notes the member events a response carries for the room; reset
// forgets what was sent before (the room was synced afresh).
func (l *lazyMembers) record(c *Caller, roomID string, recs []*fsm.EventRecord, reset bool) {
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
		rooms = map[string]map[string]string{}
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
		users = map[string]string{}
		rooms[roomID] = users
	}
	for _, rec := range recs {
		if rec.Type == "m.room.member" && rec.StateKey != nil {
			users[*rec.StateKey] = rec.EventID
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
	s.a.lazyMembers().record(s.p.caller, roomID, recs, fresh)
}
