package clientapi

import (
	"context"

	"github.com/ganglion/ganglion/fsm"
)

// Long-poll wake-ups. Every applied batch and every typing or presence
// change wakes every parked /sync and /events; most concern other users.
// A parked request keeps what its last computation depended on and, on a
// wake-up, computes again only when the notifier says an entry touched the
// user or one of their rooms, or an ephemeral change may concern them.
// When in doubt it computes again: that only costs time, never an event.

// maxPresenceCheck bounds the presence changes examined one by one; past
// it a wake-up computes again.
const maxPresenceCheck = 100

// longPollWatch is what a parked request watches.
type longPollWatch struct {
	user  string
	index uint64   // the notifier's applied index taken before the last computation
	rooms []string // the user's joined, invited and knocked rooms
	// Ephemeral changes (/sync only): typing in the joined rooms, presence
	// of users who share one when the filter lets presence through.
	eph      bool
	ephSince int64 // the serial the last computation read
	joined   map[string]bool
	presence bool
}

// syncWatch is the watch after a /sync computation: index is what the
// notifier had applied before it started.
func (s *syncer) watch(index uint64) *longPollWatch {
	w := &longPollWatch{user: s.user, index: index, eph: true, ephSince: s.ephNow,
		joined: map[string]bool{}, presence: !s.f.Presence.allowsNone()}
	for roomID, m := range s.myRooms {
		switch m.Membership {
		case "join":
			w.joined[roomID] = true
			w.rooms = append(w.rooms, roomID)
		case "invite", "knock":
			w.rooms = append(w.rooms, roomID)
		}
	}
	return w
}

// streamWatch is the watch of a legacy /events request: the one room it
// reads, or the user's rooms.
func (a *API) streamWatch(user, roomID string, index uint64) *longPollWatch {
	w := &longPollWatch{user: user, index: index}
	if roomID != "" {
		w.rooms = []string{roomID}
		return w
	}
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		for id, m := range rt.UserRooms(user) {
			if m.Membership == "join" || m.Membership == "invite" || m.Membership == "knock" {
				w.rooms = append(w.rooms, id)
			}
		}
		return nil
	})
	return w
}

// park waits for a wake-up that may concern the watch (true), or for ctx
// to end (false). notified and ephChanged were taken before the last
// computation (ephChanged nil when ephemeral data is not watched).
func (a *API) park(ctx context.Context, w *longPollWatch, notified, ephChanged <-chan struct{}) bool {
	n := a.node.Notifier()
	for {
		select {
		case <-notified:
		case <-ephChanged:
		case <-ctx.Done():
			return false
		}
		// New channels first, so a change after the checks below still
		// wakes the next wait.
		var applied uint64
		notified, applied = n.Changed()
		ephNow := w.ephSince
		if w.eph {
			ephChanged = a.eph.Changed()
			ephNow = a.eph.Serial()
		}
		if n.TouchedSince(w.index, w.user, w.rooms) || a.ephConcerns(w) {
			return true
		}
		w.index, w.ephSince = applied, ephNow
	}
}

// ephConcerns reports whether a typing or presence change after the
// watch's serial may show in the user's sync.
func (a *API) ephConcerns(w *longPollWatch) bool {
	if !w.eph || a.eph.Serial() <= w.ephSince {
		return false
	}
	for roomID := range w.joined {
		if a.eph.TypingChangedSince(roomID, w.ephSince) {
			return true
		}
	}
	if !w.presence {
		return false
	}
	changed := a.eph.PresenceSince(w.ephSince)
	if len(changed) == 0 {
		return false
	}
	if _, own := changed[w.user]; own || len(changed) > maxPresenceCheck {
		return true
	}
	shares := false
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		for u := range changed {
			for roomID, m := range rt.UserRooms(u) {
				if m.Membership == "join" && w.joined[roomID] {
					shares = true
					return nil
				}
			}
		}
		return nil
	})
	return shares
}
