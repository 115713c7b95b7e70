package rooms

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/tidwall/gjson"
	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/id"

	"github.com/ganglion/ganglion/fsm"
)

// What the federation handlers need from rooms: membership event templates
// for make_join, make_leave and make_knock, and knowing whether this server
// is in a room.

// MembershipTemplate is the m.room.member event userID (of another server)
// would send to take membership in roomID: built on the room's committed
// forward extremities and current state, checked against the auth rules,
// and returned unsigned and without hashes for the requesting server to
// fill in and sign. A join to a restricted room names a local authoriser
// when the user qualifies (join_authorised_via_users_server).
//
// Errors: 404 M_NOT_FOUND for a room this server does not have, 403
// M_FORBIDDEN when the auth rules refuse, 400 M_UNABLE_TO_AUTHORISE_JOIN /
// M_UNABLE_TO_GRANT_JOIN for restricted rooms this server cannot vouch for.
func (s *Service) MembershipTemplate(roomID, userID, membership string) (*pdu.PDU, id.RoomVersion, error) {
	h := &roomHead{roomID: roomID}
	if err := s.loadHead(h); err != nil {
		return nil, "", err
	}
	content, _ := json.Marshal(map[string]string{"membership": membership})
	spec := EventSpec{Type: "m.room.member", StateKey: &userID, Sender: userID, Content: content}
	if membership == "join" {
		spec = s.withJoinAuthoriser(roomID, spec)
		if err := s.restrictedJoinError(roomID, userID, spec); err != nil {
			return nil, "", err
		}
	}
	p, _, _, err := s.build(h, spec, time.Now().UnixMilli())
	if err != nil {
		return nil, "", err
	}
	p.Signatures, p.Hashes = nil, nil
	return p, h.version, nil
}

// restrictedJoinError explains, for a restricted room, a join this server
// could not name an authoriser for: the user is in an allowed room but no
// local member may invite (try another server), or this server is in none
// of the allowed rooms (it cannot tell). Otherwise the auth rules decide.
func (s *Service) restrictedJoinError(roomID, userID string, spec EventSpec) error {
	if gjson.GetBytes(spec.Content, "join_authorised_via_users_server").Exists() {
		return nil
	}
	var out error
	_ = s.store.View(func(rt *fsm.ReadTx) error {
		room, err := rt.Room(roomID)
		if err != nil || !id.RoomVersion(room.Version).RestrictedJoins() {
			return nil
		}
		jr, err := rt.StateEvent(roomID, "m.room.join_rules", "")
		if err != nil {
			return nil
		}
		rules := gjson.GetBytes(jr.PDU, "content")
		if r := rules.Get("join_rule").Str; r != "restricted" && r != "knock_restricted" {
			return nil
		}
		if m := rt.Membership(userID, roomID); m != nil && (m.Membership == "join" || m.Membership == "invite") {
			return nil
		}
		knowsAny := false
		for _, a := range rules.Get("allow").Array() {
			if a.Get("type").Str != "m.room_membership" {
				continue
			}
			if _, err := rt.Room(a.Get("room_id").Str); err == nil && s.residentIn(rt, a.Get("room_id").Str) {
				knowsAny = true
			}
		}
		switch {
		case !knowsAny:
			out = fsm.Errorf(http.StatusBadRequest, "M_UNABLE_TO_AUTHORISE_JOIN",
				"this server is in none of the rooms the join rules allow")
		case inAllowedRoom(rt, rules.Get("allow"), userID):
			out = fsm.Errorf(http.StatusBadRequest, "M_UNABLE_TO_GRANT_JOIN",
				"no user of this server may invite to the room; try another server")
		}
		return nil
	})
	return out
}

// IsResident reports whether a user of this server is joined to roomID,
// i.e. whether the server takes part in the room's DAG.
func (s *Service) IsResident(roomID string) bool {
	resident := false
	_ = s.store.View(func(rt *fsm.ReadTx) error {
		resident = s.residentIn(rt, roomID)
		return nil
	})
	return resident
}

func (s *Service) residentIn(rt *fsm.ReadTx, roomID string) bool {
	return rt.HasJoinedMemberOf(roomID, s.serverName)
}
