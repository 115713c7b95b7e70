package rooms

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/id"

	"github.com/ganglion/ganglion/cluster"
	"github.com/ganglion/ganglion/fsm"
)

// SendRequest asks for one event in an existing room.
type SendRequest struct {
	RoomID string
	EventSpec
	// Txn makes the send idempotent per device and endpoint (invariant 4).
	Txn *fsm.TxnKey
}

// inflight lets a retry that arrives while the first attempt is still in
// flight wait for that attempt instead of building a second event.
type inflight struct {
	mu    sync.Mutex
	calls map[fsm.TxnKey]*inflightCall
}

type inflightCall struct {
	done    chan struct{}
	eventID string
	err     error
}

// Send builds, signs and commits one event and returns its ID. A repeated
// transaction ID returns the first event's ID and creates nothing.
func (s *Service) Send(ctx context.Context, req SendRequest) (string, error) {
	req.EventSpec = s.withJoinAuthoriser(req.RoomID, req.EventSpec)
	if req.Txn == nil {
		return s.send(ctx, req)
	}
	for {
		if id, ok := s.txnEventID(req.Txn); ok {
			return id, nil
		}
		sends := &s.inflight
		sends.mu.Lock()
		if c, ok := sends.calls[*req.Txn]; ok {
			sends.mu.Unlock()
			select {
			case <-c.done:
			case <-ctx.Done():
				return "", ctx.Err()
			}
			// The first attempt ended with its own client gone: its event
			// may have committed (then the loop finds it) or not (then this
			// request makes it).
			if c.err != nil && (errors.Is(c.err, context.Canceled) || errors.Is(c.err, context.DeadlineExceeded)) && ctx.Err() == nil {
				continue
			}
			return c.eventID, c.err
		}
		c := &inflightCall{done: make(chan struct{})}
		sends.calls[*req.Txn] = c
		sends.mu.Unlock()
		c.eventID, c.err = s.send(ctx, req)
		sends.mu.Lock()
		delete(sends.calls, *req.Txn)
		sends.mu.Unlock()
		close(c.done)
		return c.eventID, c.err
	}
}

func (s *Service) txnEventID(k *fsm.TxnKey) (string, bool) {
	var raw json.RawMessage
	_ = s.store.View(func(r *fsm.ReadTx) error {
		raw = r.TxnResult(k)
		return nil
	})
	if raw == nil {
		return "", false
	}
	var res fsm.RoomEventsResult
	if json.Unmarshal(raw, &res) != nil || len(res.EventIDs) == 0 {
		return "", false
	}
	return res.EventIDs[len(res.EventIDs)-1], true
}

// rebuildAttempts bounds how often a send is rebuilt after the store
// refused it for being built on a head that moved: federated events can
// land between a build and its apply, more than once in a busy room.
const rebuildAttempts = 6

// errRoomBusy answers a send that kept losing that race: the client may
// retry (with its transaction ID).
var errRoomBusy = &fsm.Error{Status: http.StatusServiceUnavailable, Errcode: "M_UNKNOWN",
	Message: "the room changed while the event was being built; retry"}

// send builds on the cached head; if the store refuses the event because
// the head moved (an event it was built on never committed, or federated
// events changed the forward extremities), it rebuilds on the reloaded
// head.
func (s *Service) send(ctx context.Context, req SendRequest) (string, error) {
	if s.isRemoteInvite(req.EventSpec) {
		return s.sendRemoteInvite(ctx, req)
	}
	for attempt := 1; ; attempt++ {
		id, err := s.sendOnce(ctx, req)
		var fe *fsm.Error
		if !errors.As(err, &fe) || !strings.HasPrefix(fe.Message, fsm.PrevEventUnknown) {
			return id, err
		}
		if attempt == rebuildAttempts || ctx.Err() != nil {
			return "", errRoomBusy
		}
	}
}

func (s *Service) sendOnce(ctx context.Context, req SendRequest) (string, error) {
	h, err := s.lockHead(ctx, req.RoomID)
	if err != nil {
		// Joining an unknown room is "not found"; sending to one is "not
		// in the room", as the spec words each.
		if err == errUnknownRoom && !isJoinLike(req.EventSpec) {
			return "", fsm.Errorf(http.StatusForbidden, "M_FORBIDDEN", "you are not in room %s", req.RoomID)
		}
		return "", err
	}
	p, evID, raw, err := s.build(h, req.EventSpec, time.Now().UnixMilli())
	if err != nil {
		h.mu.Unlock()
		return "", err
	}
	fut, err := s.proposeBuilt(h, req, p, evID, raw)
	if err != nil {
		return "", err
	}
	val, _, err := fut.Wait(ctx)
	return s.storedEventID(req.RoomID, val, err)
}

// proposeBuilt proposes one event built on the locked head h, records it
// in the head and unlocks it: the room's next event may be built on it
// before it commits (invariant 5).
func (s *Service) proposeBuilt(h *roomHead, req SendRequest, p *pdu.PDU, evID id.EventID, raw json.RawMessage) (*cluster.Future, error) {
	fut, err := s.node.ProposeAsync(fsm.OpRoomEvents, fsm.RoomEventsCmd{
		RoomID: req.RoomID, Events: []json.RawMessage{raw}, Txn: req.Txn})
	if err != nil {
		h.mu.Unlock()
		return nil, err
	}
	h.advance(p, evID)
	h.last = fut
	h.mu.Unlock()
	return fut, nil
}

// storedEventID is the event ID that a committed room.events proposal
// answered with (val, err from its future). After a failure, or an answer
// to an earlier attempt, the room's head reloads from the store.
func (s *Service) storedEventID(roomID string, val any, err error) (string, error) {
	if err != nil {
		s.markStale(roomID)
		return "", err
	}
	res, _ := val.(*fsm.RoomEventsResult)
	if res == nil || len(res.EventIDs) == 0 {
		s.markStale(roomID)
		return "", fsm.Errorf(http.StatusInternalServerError, "M_UNKNOWN", "event was not stored")
	}
	if res.Deduped {
		// The store answered an earlier attempt: our built event was dropped.
		s.markStale(roomID)
	}
	return res.EventIDs[len(res.EventIDs)-1], nil
}

// MembershipRequest changes Target's membership in a room.
type MembershipRequest struct {
	RoomID, Sender, Target, Membership, Reason string
	// DisplayName and AvatarURL are used for joins; when empty the
	// target's profile fills them.
	DisplayName, AvatarURL string
	IsDirect               bool
	Txn                    *fsm.TxnKey
	// Extra is further content from the request (POST /join/{roomIdOrAlias}
	// puts its whole body in the event, as Synapse does); the keys above
	// win over it.
	Extra map[string]json.RawMessage
}

// Membership builds and commits an m.room.member event.
func (s *Service) Membership(ctx context.Context, req MembershipRequest) (string, error) {
	content := map[string]any{}
	for k, v := range req.Extra {
		content[k] = v
	}
	content["membership"] = req.Membership
	if req.Reason != "" {
		content["reason"] = req.Reason
	}
	if req.Membership == "join" || req.Membership == "invite" {
		dn, av := req.DisplayName, req.AvatarURL
		if dn == "" && av == "" {
			dn, av = s.profile(req.Target)
		}
		if _, set := content["displayname"]; dn != "" && !set {
			content["displayname"] = dn
		}
		if _, set := content["avatar_url"]; av != "" && !set {
			content["avatar_url"] = av
		}
	}
	if req.IsDirect {
		content["is_direct"] = true
	}

	raw, _ := json.Marshal(content)
	target := req.Target
	return s.Send(ctx, SendRequest{RoomID: req.RoomID, Txn: req.Txn, EventSpec: EventSpec{
		Type: "m.room.member", StateKey: &target, Sender: req.Sender, Content: raw}})
}

func (s *Service) profile(userID string) (displayname, avatar string) {
	_ = s.store.View(func(r *fsm.ReadTx) error {
		if u, err := r.User(userID); err == nil {
			displayname, avatar = u.DisplayName, u.AvatarURL
		}
		return nil
	})
	return
}

// isJoinLike reports a join or knock, for which an unknown room is "not
// found" rather than "not in the room".
func isJoinLike(spec EventSpec) bool {
	if spec.Type != "m.room.member" {
		return false
	}
	var c struct {
		Membership string `json:"membership"`
	}
	_ = json.Unmarshal(spec.Content, &c)
	return c.Membership == "join" || c.Membership == "knock"
}
