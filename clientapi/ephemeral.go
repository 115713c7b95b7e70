package clientapi

import (
	"sort"
	"sync"
	"time"
)

// ephemeral holds typing notifications and presence in memory: they are
// never written to the Raft log (DESIGN invariant 1). Every change bumps
// serial, which /sync carries in its token, and wakes long-polls.
//
// Serials are max(serial+1, now in µs): they stay monotonic across a
// restart of this node and are roughly comparable between nodes, so a token
// minted elsewhere does not hide changes made since.
type ephemeral struct {
	mu       sync.Mutex
	now      func() time.Time
	serial   int64
	changed  chan struct{}
	typing   map[string]map[string]*typingEntry // room -> user -> entry
	typingAt map[string]int64                   // room -> serial of its last typing change
	presence map[string]*presenceEntry
}

// PresenceState is a user's presence as this node knows it.
type PresenceState struct {
	Presence        string // online, unavailable or offline
	StatusMsg       string
	LastActiveTS    int64 // unix ms of the last pro-active event; 0 if never
	CurrentlyActive bool
}

type typingEntry struct {
	expires time.Time
	timer   *time.Timer
}

type presenceEntry struct {
	state  PresenceState
	serial int64
}

func newEphemeral() *ephemeral {
	return &ephemeral{
		now:      time.Now,
		changed:  make(chan struct{}),
		typing:   map[string]map[string]*typingEntry{},
		typingAt: map[string]int64{},
		presence: map[string]*presenceEntry{},
	}
}

// bump records a change and wakes waiters; e.mu must be held.
func (e *ephemeral) bump() int64 {
	e.serial = max(e.serial+1, e.now().UnixMicro())
	close(e.changed)
	e.changed = make(chan struct{})
	return e.serial
}

// Serial increases on every typing or presence change.
func (e *ephemeral) Serial() int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.serial
}

// Changed is closed on the next change (a new channel each time).
func (e *ephemeral) Changed() <-chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.changed
}

// SetTyping marks user as typing in room for timeout, or stops it. Only a
// start or a stop is a change; extending a running timeout is not.
func (e *ephemeral) SetTyping(roomID, userID string, typing bool, timeout time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	users := e.typing[roomID]
	old := users[userID]
	if old != nil {
		old.timer.Stop()
		delete(users, userID)
	}
	if !typing {
		if old != nil {
			e.typingAt[roomID] = e.bump()
		}
		return
	}
	if users == nil {
		users = map[string]*typingEntry{}
		e.typing[roomID] = users
	}
	entry := &typingEntry{expires: e.now().Add(timeout)}
	entry.timer = time.AfterFunc(timeout, func() { e.expireTyping(roomID, userID, entry) })
	users[userID] = entry
	if old == nil || !old.expires.After(e.now()) {
		e.typingAt[roomID] = e.bump()
	}
}

// expireTyping drops entry when its timeout fires, unless it was replaced.
func (e *ephemeral) expireTyping(roomID, userID string, entry *typingEntry) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.typing[roomID][userID] != entry {
		return
	}
	delete(e.typing[roomID], userID)
	if len(e.typing[roomID]) == 0 {
		delete(e.typing, roomID)
	}
	e.typingAt[roomID] = e.bump()
}

// Typing lists the users typing in room now, sorted.
func (e *ephemeral) Typing(roomID string) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	out := []string{}
	for user, entry := range e.typing[roomID] {
		if entry.expires.After(now) {
			out = append(out, user)
		}
	}
	sort.Strings(out)
	return out
}

// TypingChangedSince reports whether room's typing list changed after serial.
func (e *ephemeral) TypingChangedSince(roomID string, serial int64) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.typingAt[roomID] > serial
}

// SetPresence sets a user's presence and status message (PUT /presence,
// /sync set_presence). Going online is a pro-active event: it refreshes the
// last active time. Only a new state, message or activity flag is a change,
// so a repeated call wakes no one.
func (e *ephemeral) SetPresence(userID, presence, statusMsg string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.setPresence(userID, presence, statusMsg)
}

func (e *ephemeral) setPresence(userID, presence, statusMsg string) {
	p := e.presence[userID]
	if p == nil {
		p = &presenceEntry{state: PresenceState{Presence: "offline"}}
		e.presence[userID] = p
	}
	next := p.state
	next.Presence, next.StatusMsg = presence, statusMsg
	next.CurrentlyActive = presence == "online"
	if presence == "online" {
		next.LastActiveTS = e.now().UnixMilli()
	}
	changed := next.Presence != p.state.Presence || next.StatusMsg != p.state.StatusMsg ||
		next.CurrentlyActive != p.state.CurrentlyActive || p.serial == 0
	p.state = next
	if changed {
		p.serial = e.bump()
	}
}

// Presence is a user's presence, if this node has any for them.
func (e *ephemeral) Presence(userID string) (PresenceState, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	p := e.presence[userID]
	if p == nil {
		return PresenceState{}, false
	}
	return p.state, true
}

// PresenceSince lists the users whose presence changed after serial.
func (e *ephemeral) PresenceSince(serial int64) map[string]PresenceState {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := map[string]PresenceState{}
	for user, p := range e.presence {
		if p.serial > serial {
			out[user] = p.state
		}
	}
	return out
}

// presenceEventContent is the m.presence content (and GET /presence body)
// of p as seen at now.
func presenceEventContent(p PresenceState, now time.Time) map[string]any {
	out := map[string]any{"presence": p.Presence}
	if p.LastActiveTS > 0 {
		out["last_active_ago"] = max(now.UnixMilli()-p.LastActiveTS, 0)
	}
	if p.StatusMsg != "" {
		out["status_msg"] = p.StatusMsg
	}
	if p.Presence == "online" {
		out["currently_active"] = p.CurrentlyActive
	}
	return out
}
