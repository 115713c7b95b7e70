package federation

import (
	"encoding/json"
	"encoding/json/jsontext"
	jsonv2 "encoding/json/v2"
	"net/http"
	"slices"
	"strings"

	"github.com/julienschmidt/httprouter"
	"github.com/tidwall/gjson"
	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/id"

	"github.com/ganglion/ganglion/fsm"
)

// The resident side of the membership handshakes (make_join/send_join v2,
// make_leave/send_leave v2, make_knock/send_knock): a user of the
// requesting server asks for a template, signs it, and sends it back for
// this server to check, store and pass on to the room.

func (a *API) makeJoin(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	a.makeMembership(w, r, p, "join")
}

func (a *API) sendJoin(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	a.sendMembership(w, r, p, "join")
}

// handshakeRoom checks that this server is in the room and that origin
// passes its ACL, and returns the room's version; on failure it has
// written the error.
func (a *API) handshakeRoom(w http.ResponseWriter, r *http.Request, roomID string) (id.RoomVersion, bool) {
	if a.rooms == nil {
		writeError(w, http.StatusNotFound, "M_UNRECOGNIZED", "this server serves no rooms")
		return "", false
	}
	var room *fsm.RoomRecord
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		room, _ = rt.Room(roomID)
		return nil
	})
	if room == nil || len(room.Extremities) == 0 || !a.rooms.IsResident(roomID) {
		writeError(w, http.StatusNotFound, "M_NOT_FOUND", "unknown room "+roomID)
		return "", false
	}
	if origin := Origin(r); !a.aclAllows(roomID, origin) {
		writeMatrixError(w, errACLDenied(origin))
		return "", false
	}
	return id.RoomVersion(room.Version), true
}

// makeMembership answers make_join, make_leave and make_knock.
func (a *API) makeMembership(w http.ResponseWriter, r *http.Request, p httprouter.Params, membership string) {
	roomID, userID := p.ByName("roomId"), p.ByName("userId")
	if _, server, err := id.UserID(userID).Parse(); err != nil || server != Origin(r) {
		writeError(w, http.StatusForbidden, "M_FORBIDDEN", "user "+userID+" is not a user of the requesting server")
		return
	}
	ver, ok := a.handshakeRoom(w, r, roomID)
	if !ok {
		return
	}
	if membership != "leave" {
		vers := r.URL.Query()["ver"]
		if len(vers) == 0 && membership == "knock" {
			writeError(w, http.StatusBadRequest, "M_MISSING_PARAM", "ver is required")
			return
		}
		if len(vers) == 0 {
			vers = []string{"1"} // the spec's default
		}
		if !slices.Contains(vers, string(ver)) {
			writeJSON(w, http.StatusBadRequest, map[string]string{"errcode": "M_INCOMPATIBLE_ROOM_VERSION",
				"error": "your server does not support this room's version", "room_version": string(ver)})
			return
		}
		if membership == "knock" && !ver.Knocks() {
			writeError(w, http.StatusForbidden, "M_FORBIDDEN", "room version "+string(ver)+" does not allow knocking")
			return
		}
	}
	tmpl, ver, err := a.rooms.MembershipTemplate(roomID, userID, membership)
	if err != nil {
		writeErr(w, err)
		return
	}
	origin, _ := json.Marshal(a.cfg.ServerName)
	tmpl.DeprecatedOrigin = jsontext.Value(origin)
	raw, err := jsonv2.Marshal(tmpl)
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"room_version": ver, "event": json.RawMessage(raw)})
}

// sendMembership answers send_join, send_leave and send_knock: the event
// must be the user's own membership change, from the requesting server,
// signed by it, with a good content hash and the event ID of the path. A
// restricted join one of our users authorises gets our signature. Apply
// runs the auth rules; the event then goes to the room's other servers.
func (a *API) sendMembership(w http.ResponseWriter, r *http.Request, p httprouter.Params, membership string) {
	roomID, eventID := p.ByName("roomId"), p.ByName("eventId")
	var raw json.RawMessage
	if !a.readJSON(w, r, &raw) {
		return
	}
	ver, ok := a.handshakeRoom(w, r, roomID)
	if !ok {
		return
	}
	ctx := r.Context()
	v, err := a.VerifyPDU(ctx, ver, roomID, raw)
	if err != nil {
		writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", err.Error())
		return
	}
	if msg := badHandshakeEvent(v, eventID, membership, Origin(r)); msg != "" {
		writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", msg)
		return
	}
	if membership == "join" {
		by := gjson.GetBytes(v.PDU.Content, "join_authorised_via_users_server").Str
		if strings.HasSuffix(by, ":"+a.cfg.ServerName) {
			if v.Raw, err = a.countersign(ver, v.PDU); err != nil {
				writeErr(w, err)
				return
			}
		}
	}
	if merr := a.refusedBefore(v.EventID); merr != nil {
		writeMatrixError(w, merr) // a retry of an event the auth rules refused
		return
	}
	keys := map[string]map[string]string{}
	a.keysFor(ctx, v.PDU, keys)
	val, _, err := a.node.Propose(ctx, fsm.OpRoomRemote, fsm.RemoteEventsCmd{RoomID: roomID,
		Events: []json.RawMessage{v.Raw}, Keys: keys})
	a.rooms.InvalidateHead(roomID)
	if err != nil {
		writeErr(w, err)
		return
	}
	res, _ := val.(*fsm.RemoteEventsResult)
	if merr := handshakeOutcome(res, v.EventID); merr != nil {
		writeMatrixError(w, merr)
		return
	}
	a.forwardToRoom(ctx, roomID, v.EventID, Origin(r))
	switch membership {
	case "join":
		a.answerSendJoin(w, roomID, v.EventID)
	case "knock":
		writeJSON(w, http.StatusOK, map[string]any{"knock_room_state": a.rooms.StrippedState(roomID)})
	default:
		writeJSON(w, http.StatusOK, struct{}{})
	}
}

// badHandshakeEvent says what is wrong with a send_* event ("" if nothing).
func badHandshakeEvent(v *VerifiedPDU, eventID, membership, origin string) string {
	p := v.PDU
	switch {
	case v.Redacted:
		return "the event's content hash is wrong"
	case v.EventID != eventID:
		return "the event's ID is " + v.EventID + ", not " + eventID
	case p.Type != "m.room.member" || p.StateKey == nil:
		return "not a membership event"
	case gjson.GetBytes(p.Content, "membership").Str != membership:
		return "not a " + membership + " event"
	case *p.StateKey != p.Sender.String():
		return "state_key must be the sender"
	case p.Sender.Homeserver() != origin:
		return "the sender is not a user of the requesting server"
	}
	return ""
}

// countersign adds our signature to a join one of our users authorises.
func (a *API) countersign(ver id.RoomVersion, p *pdu.PDU) (json.RawMessage, error) {
	key, err := a.keys.Current()
	if err != nil {
		return nil, err
	}
	if err := p.Sign(ver, a.cfg.ServerName, key.ID, key.Priv); err != nil {
		return nil, err
	}
	raw, err := jsonv2.Marshal(p)
	return json.RawMessage(raw), err
}

// handshakeOutcome maps Apply's verdict on the one event to the answer.
func handshakeOutcome(res *fsm.RemoteEventsResult, eventID string) *matrixError {
	switch {
	case res == nil:
		return errorf(http.StatusInternalServerError, "M_UNKNOWN", "event was not stored")
	case res.Rejected[eventID] != "":
		return errorf(http.StatusForbidden, "M_FORBIDDEN", res.Rejected[eventID])
	case slices.Contains(res.SoftFailed, eventID):
		return errorf(http.StatusForbidden, "M_FORBIDDEN", "not allowed by the room's current state")
	case res.Missing[eventID] != "":
		return errorf(http.StatusBadRequest, "M_INVALID_PARAM", "the event refers to events this server does not have: "+res.Missing[eventID])
	case !slices.Contains(res.Accepted, eventID):
		return errorf(http.StatusForbidden, "M_FORBIDDEN", "event was not accepted")
	}
	return nil
}

// refusedBefore answers for an event stored earlier as rejected or soft
// failed: storing it again changes nothing.
func (a *API) refusedBefore(eventID string) *matrixError {
	var out *matrixError
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		if rec, err := rt.Event(eventID); err == nil && (rec.Rejected || rec.SoftFailed) {
			out = errorf(http.StatusForbidden, "M_FORBIDDEN", "the event was refused by the auth rules")
		}
		return nil
	})
	return out
}
