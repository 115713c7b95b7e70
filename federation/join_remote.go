package federation

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"

	mfed "maunium.net/go/mautrix/federation"
	"maunium.net/go/mautrix/id"

	"github.com/ganglion/ganglion/fsm"
	"github.com/ganglion/ganglion/rooms"
)

// JoinRemote joins userID (ours) to a room this server is not in: the
// alias resolved through its server's directory, then make_join/send_join
// v2 with each candidate server in turn (via first, then the alias's
// servers, the servers of the user's pending invite or knock, the room
// ID's server), the answer's state and auth chain
// verified (signatures, hashes, format) and proposed with the join
// (fsm.OpRoomRemote in join mode; Apply runs the auth rules). content is
// added to the join event (displayname and avatar_url come from the
// profile). When this server is in the room already the join is local.
//
// Errors (*fsm.Error): 404 M_NOT_FOUND for an unknown alias or when no
// server could be reached; the remote's refusal (403 M_FORBIDDEN, 400
// M_INCOMPATIBLE_ROOM_VERSION, ...); 400 M_UNSUPPORTED_ROOM_VERSION.
func (a *API) JoinRemote(ctx context.Context, userID, roomIDOrAlias string, via []string, content map[string]any) (string, error) {
	roomID, aliasServers, err := a.resolveRoom(ctx, roomIDOrAlias)
	if err != nil {
		return "", err
	}
	if a.rooms.IsResident(roomID) {
		return roomID, a.joinLocally(ctx, userID, roomID, content)
	}
	var (
		resp   *mfed.RespSendJoin
		joined *signedMembership
	)
	// An invite (or knock) names servers in the room: a v12 room ID names
	// none, and clients accepting an invite often give no via.
	var invitedBy []string
	if cur := a.outOfRoom(userID, roomID); cur != nil && (cur.membership == "invite" || cur.membership == "knock") {
		invitedBy = leaveServers(cur)
	}
	err = a.tryServers(a.candidateServers(roomID, via, aliasServers, invitedBy), "join the room", func(server string) error {
		m, err := a.signedTemplate(ctx, server, roomID, userID, "join", content)
		if err != nil {
			return err
		}
		fed, err := a.client.Fed()
		if err != nil {
			return err
		}
		r, err := fed.SendJoin(ctx, &mfed.ReqSendJoin{RoomID: id.RoomID(roomID), EventID: id.EventID(m.id), Event: m.raw, Via: server})
		if err != nil {
			return err
		}
		resp, joined = r, m
		return nil
	})
	if err != nil {
		return "", err
	}
	ctx, cancel := committing(ctx)
	defer cancel()
	st, err := a.checkJoinResponse(ctx, roomID, joined, resp)
	if err != nil {
		return "", err
	}
	if err := a.proposeJoin(ctx, roomID, joined.ver, st); err != nil {
		return "", err
	}
	a.rooms.InvalidateHead(roomID)
	return roomID, nil
}

// joinLocally is the ordinary join when the server is in the room.
func (a *API) joinLocally(ctx context.Context, userID, roomID string, content map[string]any) error {
	extra := map[string]json.RawMessage{}
	for k, v := range content {
		if raw, err := json.Marshal(v); err == nil {
			extra[k] = raw
		}
	}
	_, err := a.rooms.Membership(ctx, rooms.MembershipRequest{RoomID: roomID, Sender: userID, Target: userID,
		Membership: "join", Extra: extra})
	return err
}

// proposeJoin stores the room's state, auth chain and our join (join
// mode). An answer holding events the auth rules reject makes the state
// name events that are not stored; the join is then proposed once more
// with the state that was stored.
func (a *API) proposeJoin(ctx context.Context, roomID string, ver id.RoomVersion, st *joinState) error {
	for attempt := 0; attempt < 2; attempt++ {
		val, _, err := a.node.Propose(ctx, fsm.OpRoomRemote, fsm.RemoteEventsCmd{RoomID: roomID,
			Join: &fsm.RemoteJoin{Version: string(ver)}, Outliers: st.outliers, Events: []json.RawMessage{st.join},
			States: map[string][]string{st.joinID: st.stateIDs}, Keys: st.keys})
		if err != nil {
			return err
		}
		res, _ := val.(*fsm.RemoteEventsResult)
		if res == nil {
			return fsm.Errorf(http.StatusInternalServerError, "M_UNKNOWN", "the join was not stored")
		}
		switch {
		case slices.Contains(res.Accepted, st.joinID):
			return nil
		case res.Rejected[st.joinID] != "":
			return fsm.Errorf(http.StatusForbidden, "M_FORBIDDEN", "the join is not allowed: %s", res.Rejected[st.joinID])
		case slices.Contains(res.SoftFailed, st.joinID):
			return fsm.Errorf(http.StatusForbidden, "M_FORBIDDEN", "the join is not allowed by the room's current state")
		}
		a.log.Named("membership").Warn("join state incomplete", "room_id", roomID,
			"missing", len(res.Missing), "rejected", len(res.Rejected))
		st.stateIDs = slices.DeleteFunc(st.stateIDs, func(evID string) bool {
			return res.Rejected[evID] != "" || res.Missing[evID] != ""
		})
	}
	return fsm.Errorf(http.StatusBadGateway, "M_UNKNOWN", "the resident server's room state could not be used")
}
