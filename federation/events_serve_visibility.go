package federation

import (
	"encoding/json"
	jsonv2 "encoding/json/v2"
	"net/http"

	"github.com/tidwall/gjson"
	"maunium.net/go/mautrix/id"

	"github.com/ganglion/ganglion/fsm"
)

// What another server may see of a room (the spec's history visibility for
// servers, as Synapse applies it):
//
//   - Every room endpoint first requires the room to be known here, the
//     server to pass the room's ACL, and one of its users to be joined to
//     the room now (403 M_FORBIDDEN otherwise): a server that is not in the
//     room gets nothing, whatever the history visibility.
//   - An event's content is visible when, in the state after the event,
//     history_visibility is world_readable or shared (the default), or one
//     of the server's users is joined, or invited and the visibility is
//     "invited". Otherwise the event is served redacted: its place in the
//     DAG (IDs, prev and auth events, signatures) stays available, so the
//     server can still build and check the room's graph.
//   - Events with no state known here (outliers: auth chains, state from a
//     join; backfilled history) are visible: they are what a member server
//     needs to check the room's state.
//   - Rejected events are never served.

// roomAccess checks that origin may ask about roomID at all.
func roomAccess(rt *fsm.ReadTx, roomID, origin string) *matrixError {
	if room, err := rt.Room(roomID); err != nil || len(room.Extremities) == 0 {
		return errorf(http.StatusNotFound, "M_NOT_FOUND", "unknown room "+roomID)
	}
	if !roomACL(rt, roomID).allows(origin) {
		return errACLDenied(origin)
	}
	if !hostInRoom(rt, roomID, origin) {
		return errorf(http.StatusForbidden, "M_FORBIDDEN", "server "+origin+" is not in room "+roomID)
	}
	return nil
}

// hostInRoom reports whether a user of server is joined to the room now.
func hostInRoom(rt *fsm.ReadTx, roomID, server string) bool {
	for user, m := range rt.RoomMembers(roomID) {
		if m == "join" && id.UserID(user).Homeserver() == server {
			return true
		}
	}
	return false
}

// visibility decides what one server may see of one room's events.
type visibility struct {
	rt     *fsm.ReadTx
	room   *fsm.RoomRecord
	server string
}

func newVisibility(rt *fsm.ReadTx, room *fsm.RoomRecord, server string) *visibility {
	return &visibility{rt: rt, room: room, server: server}
}

// canSee reports whether the server may see rec's content.
func (v *visibility) canSee(rec *fsm.EventRecord) bool {
	st, err := v.rt.StateAfterEvent(rec)
	if err != nil {
		return true // no state known: an outlier or backfilled event
	}
	vis := "shared"
	if hv := st[[2]string{"m.room.history_visibility", ""}]; hv != "" {
		if ev, err := v.rt.Event(hv); err == nil {
			if s := gjson.GetBytes(ev.PDU, "content.history_visibility").Str; s != "" {
				vis = s
			}
		}
	}
	switch vis {
	case "world_readable", "shared":
		return true
	}
	for k, evID := range st {
		if k[0] != "m.room.member" || id.UserID(k[1]).Homeserver() != v.server {
			continue
		}
		ev, err := v.rt.Event(evID)
		if err != nil {
			continue
		}
		switch gjson.GetBytes(ev.PDU, "content.membership").Str {
		case "join":
			return true
		case "invite":
			if vis == "invited" {
				return true
			}
		}
	}
	return false
}

// served is rec's PDU as the server may see it: whole, or redacted.
func (v *visibility) served(rec *fsm.EventRecord) json.RawMessage {
	if v.canSee(rec) {
		return rec.PDU
	}
	return redactedPDU(id.RoomVersion(v.room.Version), rec.PDU)
}

// redactedPDU is the redacted form of a stored PDU (the PDU itself if it
// cannot be parsed, which a stored one always can).
func redactedPDU(ver id.RoomVersion, raw json.RawMessage) json.RawMessage {
	p, err := fsm.ParsePDU(raw)
	if err != nil {
		return raw
	}
	out, err := jsonv2.Marshal(p.Redact(ver))
	if err != nil {
		return raw
	}
	return out
}
