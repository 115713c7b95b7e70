package federation

import (
	"context"
	"encoding/json"
	"encoding/json/jsontext"
	jsonv2 "encoding/json/v2"
	"net/http"
	"time"

	"github.com/julienschmidt/httprouter"
	"github.com/tidwall/gjson"
	mfed "maunium.net/go/mautrix/federation"
	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/id"

	"github.com/ganglion/ganglion/fsm"
	"github.com/ganglion/ganglion/rooms"
)

// Leaving rooms this server is not in: rejecting a remote invite or
// retracting a knock (make_leave/send_leave v2), and serving those
// handshakes for remote users of our rooms.

func (a *API) makeLeave(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	a.makeMembership(w, r, p, "leave")
}

func (a *API) sendLeave(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	a.sendMembership(w, r, p, "leave")
}

// outOfRoomMembership is our user's membership in a room we are not in.
type outOfRoomMembership struct {
	membership string
	event      *fsm.EventRecord
	version    id.RoomVersion
}

func (a *API) outOfRoom(userID, roomID string) *outOfRoomMembership {
	var out *outOfRoomMembership
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		m := rt.Membership(userID, roomID)
		if m == nil {
			return nil
		}
		ev, err := rt.Event(m.EventID)
		if err != nil {
			return nil
		}
		out = &outOfRoomMembership{membership: m.Membership, event: ev, version: id.RoomVersion(rt.RoomVersionOf(roomID))}
		return nil
	})
	return out
}

// LeaveRemote makes userID (ours) leave a room this server is not in:
// rejects an invite or retracts a knock through the inviting server (or
// the servers the stripped state names, or the room ID's). When none of
// them will, the invite is rejected here only (an out-of-band leave, as
// other servers do), so the user is not stuck with it. In a room we are
// in, the leave is local.
func (a *API) LeaveRemote(ctx context.Context, userID, roomID, reason string) error {
	if a.rooms.IsResident(roomID) {
		_, err := a.rooms.Membership(ctx, rooms.MembershipRequest{RoomID: roomID, Sender: userID, Target: userID,
			Membership: "leave", Reason: reason})
		return err
	}
	cur := a.outOfRoom(userID, roomID)
	switch {
	case cur == nil:
		return fsm.Errorf(http.StatusForbidden, "M_FORBIDDEN", "you are not invited to or knocking on %s", roomID)
	case cur.membership == "leave" || cur.membership == "ban":
		return nil
	case cur.membership != "invite" && cur.membership != "knock":
		return fsm.Errorf(http.StatusForbidden, "M_FORBIDDEN", "you are not invited to or knocking on %s", roomID)
	}
	var content map[string]any
	if reason != "" {
		content = map[string]any{"reason": reason}
	}
	var left *signedMembership
	err := a.tryServers(a.candidateServers(roomID, leaveServers(cur)), "leave the room", func(server string) error {
		m, err := a.signedTemplate(ctx, server, roomID, userID, "leave", content)
		if err != nil {
			return err
		}
		fed, err := a.client.Fed()
		if err != nil {
			return err
		}
		if err := fed.SendLeave(ctx, &mfed.ReqSendLeave{RoomID: id.RoomID(roomID), EventID: id.EventID(m.id), Event: m.raw, Via: server}); err != nil {
			return err
		}
		left = m
		return nil
	})
	ctx, cancel := committing(ctx)
	defer cancel()
	raw, ver := json.RawMessage(nil), cur.version
	if err == nil {
		raw, ver = left.raw, left.ver
	} else {
		a.log.Named("membership").Info("rejecting out of band: no server took the leave",
			"room_id", roomID, "user_id", userID, "error", err)
		if raw, err = a.outOfBandLeave(cur, userID, reason); err != nil {
			return err
		}
	}
	_, _, err = a.node.Propose(ctx, fsm.OpRoomInviteRemote, fsm.RemoteInviteCmd{RoomID: roomID, Version: string(ver), Event: raw})
	return err
}

// leaveServers are the servers that know of our invite or knock: the
// inviter's, and the senders' of the stripped state we were given.
func leaveServers(cur *outOfRoomMembership) []string {
	out := []string{id.UserID(cur.event.Sender).Homeserver()}
	for _, path := range []string{"unsigned.invite_room_state", "unsigned.knock_room_state"} {
		for _, e := range gjson.GetBytes(cur.event.PDU, path).Array() {
			if s := id.UserID(e.Get("sender").Str).Homeserver(); s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}

// outOfBandLeave builds, signs with our key, our user's leave following the
// invite or knock it rejects (prev and auth events: that event).
func (a *API) outOfBandLeave(cur *outOfRoomMembership, userID, reason string) (json.RawMessage, error) {
	if !rooms.SupportedVersions[cur.version] {
		return nil, fsm.Errorf(http.StatusBadRequest, "M_UNSUPPORTED_ROOM_VERSION", "unknown room version")
	}
	content := map[string]any{"membership": "leave"}
	if reason != "" {
		content["reason"] = reason
	}
	c, _ := json.Marshal(content)
	prev := id.EventID(cur.event.EventID)
	p := &pdu.PDU{Type: "m.room.member", StateKey: &userID, Sender: id.UserID(userID), RoomID: id.RoomID(cur.event.RoomID),
		Content: jsontext.Value(c), OriginServerTS: time.Now().UnixMilli(), Depth: cur.event.Depth + 1,
		PrevEvents: []id.EventID{prev}, AuthEvents: []id.EventID{prev}}
	key, err := a.keys.Current()
	if err != nil {
		return nil, err
	}
	if err := p.Sign(cur.version, a.cfg.ServerName, key.ID, key.Priv); err != nil {
		return nil, err
	}
	raw, err := jsonv2.Marshal(p)
	return json.RawMessage(raw), err
}
