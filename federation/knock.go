package federation

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/julienschmidt/httprouter"
	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
	mfed "maunium.net/go/mautrix/federation"
	"maunium.net/go/mautrix/id"

	"github.com/ganglion/ganglion/fsm"
	"github.com/ganglion/ganglion/rooms"
)

// Knocking on rooms across servers (make_knock/send_knock): serving them
// for remote users of our rooms, and knocking for our users on rooms this
// server is not in.

func (a *API) makeKnock(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	a.makeMembership(w, r, p, "knock")
}

func (a *API) sendKnock(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	a.sendMembership(w, r, p, "knock")
}

// KnockRemote knocks for userID (ours) on a room this server is not in,
// through each candidate server in turn (via, the alias's servers, the
// room ID's); the knock is stored out of the room with the stripped state
// the resident server gave (knock_room_state, its badly signed entries
// dropped), so /sync lists the room under knock. In a room we are in the
// knock is local. Errors as JoinRemote's.
func (a *API) KnockRemote(ctx context.Context, userID, roomIDOrAlias string, via []string, reason string) (string, error) {
	roomID, aliasServers, err := a.resolveRoom(ctx, roomIDOrAlias)
	if err != nil {
		return "", err
	}
	if a.rooms.IsResident(roomID) {
		_, err := a.rooms.Membership(ctx, rooms.MembershipRequest{RoomID: roomID, Sender: userID, Target: userID,
			Membership: "knock", Reason: reason})
		return roomID, err
	}
	var content map[string]any
	if reason != "" {
		content = map[string]any{"reason": reason}
	}
	var (
		knocked *signedMembership
		resp    *mfed.RespSendKnock
	)
	err = a.tryServers(a.candidateServers(roomID, via, aliasServers), "knock on the room", func(server string) error {
		m, err := a.signedTemplate(ctx, server, roomID, userID, "knock", content)
		if err != nil {
			return err
		}
		if !m.ver.Knocks() {
			return fsm.Errorf(http.StatusBadRequest, "M_UNSUPPORTED_ROOM_VERSION", "room version %s has no knocking", m.ver)
		}
		fed, err := a.client.Fed()
		if err != nil {
			return err
		}
		r, err := fed.SendKnock(ctx, &mfed.ReqSendKnock{RoomID: id.RoomID(roomID), EventID: id.EventID(m.id), Event: m.raw, Via: server})
		if err != nil {
			return err
		}
		knocked, resp = m, r
		return nil
	})
	if err != nil {
		return "", err
	}
	ctx, cancel := committing(ctx)
	defer cancel()
	stripped, problem := a.strippedStateEntries(ctx, knocked.ver, roomID, resp.KnockRoomState)
	if problem != nil {
		a.log.Named("membership").Warn("knock_room_state had unusable entries", "room_id", roomID, "error", problem)
	}
	withState, err := sjson.SetBytes(knocked.raw, "unsigned.knock_room_state", stripped)
	if err != nil {
		return "", err
	}
	if _, _, err := a.node.Propose(ctx, fsm.OpRoomInviteRemote, fsm.RemoteInviteCmd{RoomID: roomID,
		Version: string(knocked.ver), Event: withState}); err != nil {
		return "", err
	}
	return roomID, nil
}

// Stripped state (invite_room_state, knock_room_state) as other servers
// send it.

// strictStrippedState: from room v12 on, stripped state must be full PDUs.
func strictStrippedState(ver id.RoomVersion) bool {
	return !ver.Equals(id.RoomV1, id.RoomV2, id.RoomV3, id.RoomV4, id.RoomV5, id.RoomV6,
		id.RoomV7, id.RoomV8, id.RoomV9, id.RoomV10, id.RoomV11)
}

// strippedStateEntries keeps the entries that are events of the room with
// good signatures and hashes; before room v12 also stripped events (type,
// state_key, sender, content), as older servers send. problem says what
// was wrong, including a missing create event.
func (a *API) strippedStateEntries(ctx context.Context, ver id.RoomVersion, roomID string, entries []json.RawMessage) ([]json.RawMessage, error) {
	out := make([]json.RawMessage, 0, len(entries))
	hasCreate := false
	var problem error
	for _, raw := range entries {
		v, err := a.VerifyPDU(ctx, ver, roomID, raw)
		switch {
		case err == nil && !v.Redacted:
			if v.PDU.Type == "m.room.create" {
				hasCreate = true
			}
			out = append(out, raw)
		case !strictStrippedState(ver) && gjson.GetBytes(raw, "type").Exists():
			out = append(out, raw)
			problem = errors.Join(problem, err)
		default:
			problem = errors.Join(problem, err)
		}
	}
	if !hasCreate {
		problem = errors.Join(problem, errors.New("the m.room.create event is missing"))
	}
	return out, problem
}
