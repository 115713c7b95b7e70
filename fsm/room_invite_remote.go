package fsm

import (
	"encoding/json"

	"github.com/tidwall/gjson"
	"maunium.net/go/mautrix/id"
)

// OpRoomInviteRemote records a local user's membership in a room this
// server is not in: an invite another server sent (invite v2), the
// rejection of such an invite, or a knock and its retraction made through
// a resident server (make_knock/send_knock, make_leave/send_leave). The
// server has none of the room's DAG, so the event is stored as an outlier,
// in no timeline and no room state; the user's membership points at it, so
// /sync lists the room under invite, knock or leave. The stripped state the
// other server sent (invite_room_state, knock_room_state) travels in the
// event's unsigned section, where /sync reads it.
//
// The proposer has checked the event (format, signatures, that state_key is
// a local user) and uses room.remote instead while the server is in the
// room, so the event joins the room's DAG.
const OpRoomInviteRemote = "room.invite_remote"

// bOutOfRoom remembers the version of rooms known only through such
// events (room -> version), for the events that follow (a rejection).
var bOutOfRoom = []byte("out_of_room")

// maxOutOfRoomEvent bounds the stored event: a PDU (at most 65,536 bytes)
// plus the stripped state attached to it.
const maxOutOfRoomEvent = 256 << 10

// RemoteInviteCmd carries one out-of-room membership event of a local user.
type RemoteInviteCmd struct {
	RoomID string `json:"room_id"`
	// Version is the room version (the invite v2 request's room_version,
	// or make_leave/make_knock's); a room stored here keeps its own.
	Version string `json:"version"`
	// Event is the PDU as stored: signed, with unsigned.invite_room_state
	// or unsigned.knock_room_state when the other server gave one.
	Event json.RawMessage `json:"event"`
}

// RemoteInviteResult names the stored event; Stored is false when it was
// already stored (a retried request), which changes nothing.
type RemoteInviteResult struct {
	EventID string `json:"event_id"`
	Stored  bool   `json:"stored"`
}

func init() { register(OpRoomInviteRemote, applyRoomInviteRemote) }

func applyRoomInviteRemote(w *WriteTx, cmd *Command) (any, error) {
	c, err := decode[RemoteInviteCmd](cmd)
	if err != nil {
		return nil, err
	}
	if len(c.Event) == 0 {
		return nil, errBadRequest("no event")
	}
	if len(c.Event) > maxOutOfRoomEvent {
		return nil, errTooLarge("event with its stripped state is larger than %d bytes", maxOutOfRoomEvent)
	}
	ver := id.RoomVersion(c.Version)
	room, err := w.Room(c.RoomID)
	if err == nil {
		if c.Version != "" && c.Version != room.Version {
			return nil, errBadRequest("room %s is version %s, not %s", c.RoomID, room.Version, c.Version)
		}
		ver = id.RoomVersion(room.Version)
	}
	if !ver.IsKnown() {
		return nil, errBadRequest("unknown room version %q", c.Version)
	}
	p, err := ParsePDU(c.Event)
	if err != nil {
		return nil, errBadRequest("bad PDU: %v", err)
	}
	evID, err := p.GetEventID(ver)
	if err != nil {
		return nil, errBadRequest("cannot compute event ID: %v", err)
	}
	if p.RoomID.String() != c.RoomID {
		return nil, errBadRequest("event room_id %s does not match %s", p.RoomID, c.RoomID)
	}
	if p.Type != "m.room.member" || p.StateKey == nil || p.Sender == "" {
		return nil, errBadRequest("not a membership event")
	}
	target := *p.StateKey
	if _, _, err := id.UserID(target).Parse(); err != nil {
		return nil, errBadRequest("state_key %q is not a user ID", target)
	}
	membership := gjson.GetBytes(p.Content, "membership").Str
	switch membership {
	case "invite":
	case "leave", "knock":
		if target != p.Sender.String() {
			return nil, errBadRequest("a %s outside the room is the user's own", membership)
		}
	default:
		return nil, errBadRequest("membership %q cannot be recorded outside the room", membership)
	}
	if _, err := w.Event(string(evID)); err == nil {
		return &RemoteInviteResult{EventID: string(evID)}, nil
	}
	if m := w.Membership(target, c.RoomID); m != nil && m.Membership == "join" {
		return nil, errForbidden("%s is joined to %s: its membership changes through the room", target, c.RoomID)
	}
	rec := &EventRecord{EventID: string(evID), RoomID: c.RoomID, Type: p.Type, StateKey: p.StateKey,
		Sender: p.Sender.String(), TS: p.OriginServerTS, Depth: p.Depth, PDU: c.Event, Outlier: true}
	if err := w.putJSON(bEvents, []byte(rec.EventID), rec); err != nil {
		return nil, err
	}
	if room == nil {
		if err := w.put(bOutOfRoom, []byte(c.RoomID), []byte(ver)); err != nil {
			return nil, err
		}
	}
	if err := w.setMembership(c.RoomID, target, membership, rec.EventID, w.NextPos()); err != nil {
		return nil, err
	}
	return &RemoteInviteResult{EventID: rec.EventID, Stored: true}, nil
}

// RoomVersionOf is the version of a stored room, or of a room known only
// through out-of-room membership events; "" when neither.
func (r *ReadTx) RoomVersionOf(roomID string) string {
	if room, err := r.Room(roomID); err == nil {
		return room.Version
	}
	return string(r.get(bOutOfRoom, []byte(roomID)))
}
