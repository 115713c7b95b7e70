package federation

import (
	"context"
	"encoding/json"
	jsonv2 "encoding/json/v2"
	"errors"
	"maps"
	"net/http"

	"github.com/julienschmidt/httprouter"
	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
	mfed "maunium.net/go/mautrix/federation"
	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/id"

	"github.com/ganglion/ganglion/fsm"
	"github.com/ganglion/ganglion/rooms"
)

// Invites across servers (invite v2): a remote server asks us to
// countersign its invite of one of our users; our users' invites of remote
// users go the other way (InviteRemote, rooms' RemoteInviter).

// inviteRequest is the body of PUT /_matrix/federation/v2/invite.
type inviteRequest struct {
	RoomVersion     string            `json:"room_version"`
	Event           json.RawMessage   `json:"event"`
	InviteRoomState []json.RawMessage `json:"invite_room_state"`
}

// invite serves PUT /_matrix/federation/v2/invite/{roomId}/{eventId}: the
// event is checked (signature of the origin, content hash, event ID, an
// invite of an existing local user sent by a user of the origin), signed
// by us, stored (in the room's DAG when we are in the room, otherwise as
// an out-of-room invite with its stripped state) and returned.
func (a *API) invite(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	roomID, eventID, origin := p.ByName("roomId"), p.ByName("eventId"), Origin(r)
	if a.rooms == nil {
		writeError(w, http.StatusNotFound, "M_UNRECOGNIZED", "this server has no users to invite")
		return
	}
	var req inviteRequest
	if !a.readJSON(w, r, &req) {
		return
	}
	ver := id.RoomVersion(req.RoomVersion)
	switch {
	case len(req.Event) == 0 || req.RoomVersion == "":
		writeError(w, http.StatusBadRequest, "M_MISSING_PARAM", "room_version and event are required")
		return
	case !rooms.SupportedVersions[ver]:
		writeJSON(w, http.StatusBadRequest, map[string]string{"errcode": "M_INCOMPATIBLE_ROOM_VERSION",
			"error": "this server does not support room version " + req.RoomVersion, "room_version": req.RoomVersion})
		return
	}
	var known *fsm.RoomRecord
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		known, _ = rt.Room(roomID)
		return nil
	})
	if known != nil && known.Version != req.RoomVersion {
		writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "room "+roomID+" is not of version "+req.RoomVersion)
		return
	}
	if known != nil && !a.aclAllows(roomID, origin) {
		writeMatrixError(w, errACLDenied(origin))
		return
	}
	ctx := r.Context()
	v, err := a.VerifyPDU(ctx, ver, roomID, req.Event)
	if err != nil {
		writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", err.Error())
		return
	}
	if merr := a.checkInvite(v, eventID, origin); merr != nil {
		writeMatrixError(w, merr)
		return
	}
	stripped, merr := a.checkInviteRoomState(ctx, ver, roomID, req.InviteRoomState)
	if merr != nil {
		writeMatrixError(w, merr)
		return
	}
	signed, err := a.countersign(ver, v.PDU)
	if err != nil {
		writeErr(w, err)
		return
	}
	if err := a.storeInvite(ctx, origin, roomID, ver, signed, stripped); err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]json.RawMessage{"event": signed})
}

// checkInvite is the spec's list of checks on an invite v2 event.
func (a *API) checkInvite(v *VerifiedPDU, eventID, origin string) *matrixError {
	p := v.PDU
	switch {
	case v.Redacted:
		return errorf(http.StatusBadRequest, "M_INVALID_PARAM", "the event's content hash is wrong")
	case v.EventID != eventID:
		return errorf(http.StatusBadRequest, "M_INVALID_PARAM", "the event's ID is "+v.EventID+", not "+eventID)
	case p.Type != "m.room.member" || p.StateKey == nil || gjson.GetBytes(p.Content, "membership").Str != "invite":
		return errorf(http.StatusBadRequest, "M_INVALID_PARAM", "not an invite event")
	case p.Sender.Homeserver() != origin:
		return errorf(http.StatusBadRequest, "M_INVALID_PARAM", "the sender is not a user of the requesting server")
	case id.UserID(*p.StateKey).Homeserver() != a.cfg.ServerName:
		return errorf(http.StatusBadRequest, "M_INVALID_PARAM", "the invitee is not a user of this server")
	}
	exists := false
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		u, err := rt.User(*p.StateKey)
		exists = err == nil && !u.Deactivated
		return nil
	})
	if !exists {
		return errorf(http.StatusForbidden, "M_FORBIDDEN", "no such user: "+*p.StateKey)
	}
	return nil
}

// checkInviteRoomState validates invite_room_state (since v1.16 full PDUs
// of the room, the create event among them): enforced for room v12, only
// warned about before, as the spec asks during the migration. It returns
// the entries to keep for /sync.
func (a *API) checkInviteRoomState(ctx context.Context, ver id.RoomVersion, roomID string, entries []json.RawMessage) ([]json.RawMessage, *matrixError) {
	out, problem := a.strippedStateEntries(ctx, ver, roomID, entries)
	if problem != nil && strictStrippedState(ver) {
		return nil, errorf(http.StatusBadRequest, "M_INVALID_PARAM", "invite_room_state: "+problem.Error())
	}
	if problem != nil {
		a.log.Named("membership").Warn("invite_room_state is not in the room version's format", "room_id", roomID, "error", problem)
	}
	return out, nil
}

// storeInvite stores our user's countersigned invite: into the room's DAG
// when we are in the room (Ingest fetches what it lacks), otherwise out of
// the room with the stripped state attached for /sync.
func (a *API) storeInvite(ctx context.Context, origin, roomID string, ver id.RoomVersion, signed json.RawMessage, stripped []json.RawMessage) error {
	if a.rooms.IsResident(roomID) {
		results, err := a.Ingest(ctx, origin, roomID, []json.RawMessage{signed})
		if err != nil {
			return err
		}
		for _, e := range results {
			if e != nil {
				return fsm.Errorf(http.StatusForbidden, "M_FORBIDDEN", "invite not accepted: %s", e)
			}
		}
		a.rooms.InvalidateHead(roomID)
		return nil
	}
	withState, err := sjson.SetBytes(signed, "unsigned.invite_room_state", stripped)
	if err != nil {
		return err
	}
	_, _, err = a.node.Propose(ctx, fsm.OpRoomInviteRemote, fsm.RemoteInviteCmd{RoomID: roomID,
		Version: string(ver), Event: withState})
	return err
}

// InviteRemote has the invitee's server countersign our user's invite
// (rooms calls it before proposing an invite of a remote user): PUT
// invite v2 with the room's stripped state; the answer must be the same
// event, signed by the invitee's server. Its refusals come back as they are
// (403 M_FORBIDDEN, 400 M_INCOMPATIBLE_ROOM_VERSION); an unreachable
// server is 502.
func (a *API) InviteRemote(ctx context.Context, version id.RoomVersion, invite *pdu.PDU, inviteRoomState []json.RawMessage) (*pdu.PDU, error) {
	evID, err := invite.GetEventID(version)
	if err != nil {
		return nil, err
	}
	raw, err := jsonv2.Marshal(invite)
	if err != nil {
		return nil, err
	}
	invitee := id.UserID(*invite.StateKey)
	fed, err := a.client.Fed()
	if err != nil {
		return nil, err
	}
	if inviteRoomState == nil {
		inviteRoomState = []json.RawMessage{}
	}
	resp, err := fed.SendInvite(ctx, &mfed.ReqSendInvite{RoomID: invite.RoomID, UserID: invitee, EventID: evID,
		Event: raw, InviteRoomState: inviteRoomState, RoomVersion: version})
	if err != nil {
		if fe := remoteFailure(err); fe != nil {
			return nil, fe
		}
		return nil, fsm.Errorf(http.StatusBadGateway, "M_UNKNOWN", "could not reach %s: %v", invitee.Homeserver(), err)
	}
	// Only the invitee server's signature is taken from the answer: the
	// event stays exactly the one we built.
	server := invitee.Homeserver()
	out := invite.Clone()
	answer, err := fsm.ParsePDU(resp.Event)
	if err == nil {
		var got id.EventID
		if got, err = answer.GetEventID(version); err == nil && got != evID {
			err = errors.New("it is another event")
		}
	}
	if err == nil {
		out.Signatures = maps.Clone(invite.Signatures) // Clone is shallow
		if out.Signatures == nil {
			out.Signatures = map[string]map[id.KeyID]string{}
		}
		out.Signatures[server] = answer.Signatures[server]
		err = out.VerifySignature(version, server, a.keyring.KeyFunc(ctx))
	}
	if err != nil {
		return nil, fsm.Errorf(http.StatusBadGateway, "M_UNKNOWN", "%s answered the invite with a bad event: %v", server, err)
	}
	return out, nil
}
