package clientapi

import (
	"context"
	"encoding/json"
	"sort"
	"sync"
	"time"

	"github.com/ganglion/ganglion/fsm"
)

// The parts of /sync that are not room timelines: ephemeral events, account
// data, presence and to-device messages.

// typeEvent is an event with only a type and content (account data, EDUs).
type typeEvent struct {
	Type    string          `json:"type"`
	Content json.RawMessage `json:"content"`
}

type typingContent struct {
	UserIDs []string `json:"user_ids"`
}

// allowsType applies a filter's types/not_types to sender-less events.
func (f *eventFilter) allowsType(evType string) bool {
	if anyGlob(f.NotTypes, evType) {
		return false
	}
	return f.Types == nil || anyGlob(*f.Types, evType)
}

// ephemeralFor lists the room's m.typing and m.receipt events; fresh rooms
// get the current state, others the changes since the token.
func (s *syncer) ephemeralFor(roomID string, fresh bool) []any {
	out := []any{}
	ef := &s.f.Room.Ephemeral
	if !roomListAllows(ef.Rooms, ef.NotRooms, roomID) {
		return out
	}
	if ef.allowsType("m.typing") {
		if fresh || s.a.eph.TypingChangedSince(roomID, s.ephSince) {
			users := s.a.eph.Typing(roomID)
			if len(users) > 0 || !fresh {
				if users == nil {
					users = []string{}
				}
				content, _ := json.Marshal(typingContent{UserIDs: users})
				out = append(out, typeEvent{Type: "m.typing", Content: content})
			}
		}
	}
	if ef.allowsType("m.receipt") {
		since := s.since
		if fresh {
			since = -1
		}
		if content := s.rt.ReceiptsSince(roomID, s.user, since); content != nil {
			out = append(out, typeEvent{Type: "m.receipt", Content: content})
		}
	}
	return out
}

// roomAccountData lists the user's account data for the room: all of it
// for a room synced afresh, else what changed since the token.
func (s *syncer) roomAccountData(roomID string, fresh bool) []any {
	out := []any{}
	af := &s.f.Room.AccountData
	if !roomListAllows(af.Rooms, af.NotRooms, roomID) {
		return out
	}
	recs := s.roomAD[roomID]
	if fresh && s.since >= 0 {
		if s.allAD == nil {
			_, s.allAD = s.rt.AccountDataSince(s.user, -1)
			if s.allAD == nil {
				s.allAD = map[string][]fsm.AccountDataRecord{}
			}
		}
		recs = s.allAD[roomID]
	}
	for _, rec := range recs {
		if af.allowsType(rec.Type) {
			out = append(out, typeEvent{Type: rec.Type, Content: rec.Content})
		}
	}
	return out
}

// globalData fills account_data, presence and to_device.
func (s *syncer) globalData(resp *syncResponse) {
	hasPushRules := false
	for _, rec := range s.globalAD {
		hasPushRules = hasPushRules || rec.Type == "m.push_rules"
		if s.f.AccountData.allowsType(rec.Type) {
			resp.AccountData.Events = append(resp.AccountData.Events, typeEvent{Type: rec.Type, Content: rec.Content})
		}
	}
	// Clients read their push rules from the initial sync; until a user
	// changes them nothing is stored, so the defaults stand in.
	if s.since < 0 && !hasPushRules && s.f.AccountData.allowsType("m.push_rules") {
		resp.AccountData.Events = append(resp.AccountData.Events,
			typeEvent{Type: "m.push_rules", Content: defaultPushRules(s.user)})
	}
	resp.Presence.Events = s.presence()
	resp.ToDevice.Events = s.toDeviceEvents()
}

type presenceEvent struct {
	Type    string         `json:"type"`
	Sender  string         `json:"sender"`
	Content map[string]any `json:"content"`
}

func presenceEventOf(userID string, p PresenceState, now time.Time) presenceEvent {
	return presenceEvent{Type: "m.presence", Sender: userID, Content: presenceEventContent(p, now)}
}

// presence lists presence changes of the caller and of users who share a
// joined room with the caller.
func (s *syncer) presence() []any {
	out := []any{}
	if s.f.Presence.allowsNone() {
		return out
	}
	changed := s.a.eph.PresenceSince(s.ephSince)
	if changed == nil {
		changed = map[string]PresenceState{}
	}
	if s.since >= 0 {
		for u := range s.newPeers {
			if _, ok := changed[u]; !ok && u != s.user {
				if p, known := s.a.eph.Presence(u); known {
					changed[u] = p
				}
			}
		}
	}
	if len(changed) == 0 {
		return out
	}
	users := make([]string, 0, len(changed))
	for u := range changed {
		users = append(users, u)
	}
	sort.Strings(users)
	now := time.Now()
	for _, u := range users {
		if !s.f.Presence.allows("m.presence", u) || !s.sharesRoom(u) {
			continue
		}
		out = append(out, presenceEventOf(u, changed[u], now))
	}
	return out
}

// noteNewMembers marks joined members who arrived after the token (all of
// them for a room synced afresh): their presence is sent even unchanged.
func (s *syncer) noteNewMembers(joined []memberPos, fresh bool) {
	if s.since < 0 {
		return
	}
	for _, m := range joined {
		if fresh || m.pos > s.since {
			if s.newPeers == nil {
				s.newPeers = map[string]bool{}
			}
			s.newPeers[m.user] = true
		}
	}
}

// sharesRoom reports whether other is the caller or joined to a room the
// caller is joined to.
func (s *syncer) sharesRoom(other string) bool {
	if other == s.user {
		return true
	}
	for roomID, m := range s.rt.UserRooms(other) {
		if mine, ok := s.myRooms[roomID]; ok && m.Membership == "join" && mine.Membership == "join" {
			return true
		}
	}
	return false
}

// maxToDevicePerSync bounds one response's to-device messages; the rest
// follow in the next sync (the token remembers what was delivered).
const maxToDevicePerSync = 100

func (s *syncer) toDeviceEvents() []any {
	out := []any{}
	c := s.p.caller
	since := int64(-1)
	if s.p.since != nil {
		// What the token proves delivered was deleted before this view
		// (ackToDevice); ask past it all the same in case that failed.
		since = s.p.since.toDeviceSince()
	}
	msgs := s.rt.ToDeviceSince(c.UserID, c.DeviceID, since, maxToDevicePerSync)
	if len(msgs) == maxToDevicePerSync {
		last := msgs[len(msgs)-1].Pos
		if more := s.rt.ToDeviceSince(c.UserID, c.DeviceID, last, 1); len(more) > 0 {
			s.toDevice = last
		}
	}
	for _, m := range msgs {
		out = append(out, struct {
			Sender  string          `json:"sender"`
			Type    string          `json:"type"`
			Content json.RawMessage `json:"content"`
		}{m.Sender, m.Type, m.Content})
	}
	return out
}

// toDeviceAcker runs the deletions of delivered to-device messages; a sync
// that finds one in flight for its device covering its token waits for it
// instead of proposing the same deletion again.
type toDeviceAcker struct {
	mu       sync.Mutex
	inflight map[string]*toDeviceAck // device -> the latest ack proposed
}

type toDeviceAck struct {
	upTo int64
	done chan struct{}
}

func newToDeviceAcker() *toDeviceAcker {
	return &toDeviceAcker{inflight: map[string]*toDeviceAck{}}
}

// toDeviceAckWait bounds how long a sync waits for its deletion to commit.
const toDeviceAckWait = 10 * time.Second

// ackToDevice deletes, before the sync with this token is computed, the
// device's messages the token proves delivered, and waits until this node
// has applied the deletion. Doing it synchronously keeps delivery exactly
// once even when the client then syncs again with an older token
// (Complement's "sendToDevice messages are not sent multiple times"). It
// costs a commit only when something is queued at or below the token; a
// failure is logged and retried by the next sync.
func (a *API) ackToDevice(ctx context.Context, c *Caller, tok *syncToken) {
	if tok == nil {
		return
	}
	upTo := tok.toDeviceSince()
	pending := false
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		oldest := rt.ToDeviceSince(c.UserID, c.DeviceID, -1, 1)
		pending = len(oldest) > 0 && oldest[0].Pos <= upTo
		return nil
	})
	if !pending {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, toDeviceAckWait)
	defer cancel()
	k := c.UserID + "\x00" + c.DeviceID
	acks := a.toDeviceAcks
	acks.mu.Lock()
	if cur := acks.inflight[k]; cur != nil && cur.upTo >= upTo {
		acks.mu.Unlock()
		select {
		case <-cur.done:
		case <-ctx.Done():
		}
		return
	}
	ack := &toDeviceAck{upTo: upTo, done: make(chan struct{})}
	acks.inflight[k] = ack
	acks.mu.Unlock()
	defer func() {
		acks.mu.Lock()
		if acks.inflight[k] == ack {
			delete(acks.inflight, k)
		}
		acks.mu.Unlock()
		close(ack.done)
	}()
	_, idx, err := a.node.Propose(ctx, fsm.OpToDeviceAck, fsm.ToDeviceAck{UserID: c.UserID, DeviceID: c.DeviceID, UpTo: upTo})
	if err != nil {
		a.log.Debug("to-device ack not committed; the next sync retries", "error", err)
		return
	}
	// The leader applied it; this node may still be behind.
	a.node.Notifier().WaitApplied(ctx, idx)
}
