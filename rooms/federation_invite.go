package rooms

import (
	"context"
	"encoding/json"
	jsonv2 "encoding/json/v2"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/tidwall/gjson"
	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/id"

	"github.com/ganglion/ganglion/fsm"
)

// RemoteInviter has an invitee's server countersign an invite (PUT
// /_matrix/federation/v2/invite); federation.API implements it. It returns
// the event signed by both servers, with the same event ID.
type RemoteInviter interface {
	InviteRemote(ctx context.Context, version id.RoomVersion, invite *pdu.PDU, inviteRoomState []json.RawMessage) (*pdu.PDU, error)
}

// SetRemoteInviter installs the federation hook that invites of users of
// other servers go through (before serving). Without one such invites are
// refused.
func (s *Service) SetRemoteInviter(ri RemoteInviter) { s.inviter = ri }

func (s *Service) remoteInviter() RemoteInviter { return s.inviter }

// isRemoteInvite reports an invite of a user of another server.
func (s *Service) isRemoteInvite(spec EventSpec) bool {
	if spec.Type != "m.room.member" || spec.StateKey == nil ||
		gjson.GetBytes(spec.Content, "membership").Str != "invite" {
		return false
	}
	_, server, err := id.UserID(*spec.StateKey).Parse()
	return err == nil && server != s.serverName
}

// remoteInviteAttempts bounds rebuilds when the room moved while the
// invitee's server was signing.
const remoteInviteAttempts = 3

// sendRemoteInvite builds the invite on the head, has the invitee's server
// countersign it without holding the head (a network round trip must not
// stall the room), then proposes it if the head has not moved meanwhile;
// otherwise it builds and asks again.
func (s *Service) sendRemoteInvite(ctx context.Context, req SendRequest) (string, error) {
	ri := s.remoteInviter()
	if ri == nil {
		return "", fsm.Errorf(http.StatusForbidden, "M_FORBIDDEN", "this server does not federate: cannot invite %s", *req.StateKey)
	}
	for attempt := 1; ; attempt++ {
		h, err := s.lockHead(ctx, req.RoomID)
		if err != nil {
			if err == errUnknownRoom {
				return "", fsm.Errorf(http.StatusForbidden, "M_FORBIDDEN", "you are not in room %s", req.RoomID)
			}
			return "", err
		}
		p, evID, _, err := s.build(h, req.EventSpec, time.Now().UnixMilli())
		built := slices.Clone(h.extremities)
		ver := h.version
		h.mu.Unlock()
		if err != nil {
			return "", err
		}
		signed, err := ri.InviteRemote(ctx, ver, p, s.StrippedState(req.RoomID))
		if err != nil {
			return "", err
		}
		if got, err := signed.GetEventID(ver); err != nil || got != evID {
			return "", fsm.Errorf(http.StatusBadGateway, "M_UNKNOWN", "the invitee's server returned another event")
		}
		raw, err := jsonv2.Marshal(signed)
		if err != nil {
			return "", err
		}
		h, err = s.lockHead(ctx, req.RoomID)
		if err != nil {
			return "", err
		}
		if !slices.Equal(h.extremities, built) {
			h.mu.Unlock()
			if attempt == remoteInviteAttempts {
				return "", fsm.Errorf(http.StatusServiceUnavailable, "M_UNKNOWN", "the room kept changing; try again")
			}
			continue
		}
		fut, err := s.proposeBuilt(h, req, signed, evID, raw)
		if err != nil {
			return "", err
		}
		val, _, err := fut.Wait(ctx)
		var fe *fsm.Error
		if errors.As(err, &fe) && strings.HasPrefix(fe.Message, fsm.PrevEventUnknown) && attempt < remoteInviteAttempts {
			s.markStale(req.RoomID)
			continue
		}
		return s.storedEventID(req.RoomID, val, err)
	}
}

// strippedStateTypes are the state events that identify a room to an
// invitee or knocker (client-server API, "Stripped state").
var strippedStateTypes = []string{"m.room.create", "m.room.name", "m.room.avatar", "m.room.topic",
	"m.room.join_rules", "m.room.canonical_alias", "m.room.encryption"}

// StrippedState is the room's current state that identifies it, as full
// PDUs (room versions' format, as invite_room_state and knock_room_state
// carry them since v1.16); the create event first.
func (s *Service) StrippedState(roomID string) []json.RawMessage {
	out := []json.RawMessage{}
	_ = s.store.View(func(rt *fsm.ReadTx) error {
		for _, t := range strippedStateTypes {
			if rec, err := rt.StateEvent(roomID, t, ""); err == nil {
				out = append(out, rec.PDU)
			}
		}
		return nil
	})
	return out
}
