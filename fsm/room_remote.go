package fsm

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"sort"
	"strings"
	"time"

	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/id"
)

// OpRoomRemote stores events other servers sent (federation ingress). The
// proposer has checked format, size, content hash and signatures (which need
// keys and the network); Apply does everything that depends on the room:
// the auth rules against the auth events, against the state before the
// event (resolving forks) and against current state (soft failure).
const OpRoomRemote = "room.remote"

// maxRemotePDU is the spec's limit on one PDU.
const maxRemotePDU = 65536

// RemoteEventsCmd carries federated events of one room.
type RemoteEventsCmd struct {
	RoomID string `json:"room_id"`
	// Join is set when this server joins a remote room: the room is created
	// here, and the join event's state before comes from States.
	Join *RemoteJoin `json:"join,omitempty"`
	// Outliers (auth chains, state) are stored without entering the
	// timeline, checked against their own auth events; parents first.
	Outliers []json.RawMessage `json:"outliers,omitempty"`
	// Events are timeline events, parents before children.
	Events []json.RawMessage `json:"events,omitempty"`
	// States gives the state before an event whose prev events are missing
	// (a gap, the join): event ID -> state event IDs.
	States map[string][]string `json:"states,omitempty"`
	// Backfill marks Events as history older than anything stored: they
	// take stream positions below the room's first.
	Backfill bool `json:"backfill,omitempty"`
	// Keys the proposer verified signatures with (server -> key ID ->
	// unpadded base64), for the auth rules that check signatures.
	Keys map[string]map[string]string `json:"keys,omitempty"`
}

// RemoteJoin creates the local record of a room joined over federation.
type RemoteJoin struct {
	Version string `json:"version"`
}

// RemoteEventsResult says what became of each event.
type RemoteEventsResult struct {
	Accepted   []string          `json:"accepted,omitempty"`
	SoftFailed []string          `json:"soft_failed,omitempty"`
	Rejected   map[string]string `json:"rejected,omitempty"` // event ID -> reason
	// Missing lists events that could not be stored yet because events they
	// depend on are unknown (they were not stored, and may be sent again).
	Missing map[string]string `json:"missing,omitempty"`
}

func init() { register(OpRoomRemote, applyRoomRemote) }

func applyRoomRemote(w *WriteTx, cmd *Command) (any, error) {
	c, err := decode[RemoteEventsCmd](cmd)
	if err != nil {
		return nil, err
	}
	if len(c.Outliers)+len(c.Events) == 0 {
		return nil, errBadRequest("no events")
	}
	if len(c.Outliers)+len(c.Events) > maxSubPos/2 {
		return nil, errTooLarge("too many events in one command")
	}
	room, err := w.Room(c.RoomID)
	var keptExtremities []string
	switch {
	case c.Join != nil && err == nil:
		// Known here before (we left, or a retried join). A join not stored
		// yet starts again from the state it brings: what we kept of the
		// room stopped at our leave.
		if !w.anyStored(room, c.Events) {
			keptExtremities, room.Extremities = room.Extremities, nil
		}
	case c.Join != nil:
		if !id.RoomVersion(c.Join.Version).IsKnown() {
			return nil, errBadRequest("unknown room version %q", c.Join.Version)
		}
		room = &RoomRecord{RoomID: c.RoomID, Version: c.Join.Version}
	case err != nil:
		return nil, errNotFound("unknown room %s", c.RoomID)
	}
	in := &ingest{w: w, room: room, cmd: c, res: &RemoteEventsResult{}}
	for _, raw := range c.Outliers {
		in.outlier(raw)
	}
	events := c.Events
	if c.Backfill {
		events = newestFirst(events)
	}
	for _, raw := range events {
		if err := in.event(raw); err != nil {
			return nil, err
		}
	}
	if c.Join != nil && len(room.Extremities) == 0 {
		// The join did not go in: no room record (or the old one as it was).
		if keptExtremities != nil {
			room.Extremities = keptExtremities
			return in.res, w.putJSON(bRooms, []byte(room.RoomID), room)
		}
		return in.res, nil
	}
	if room.Creator == "" {
		if ce, err := w.StateEvent(room.RoomID, "m.room.create", ""); err == nil {
			room.Creator = ce.Sender
		}
	}
	if err := w.putJSON(bRooms, []byte(room.RoomID), room); err != nil {
		return nil, err
	}
	w.touchRoom(room.RoomID)
	return in.res, nil
}

// anyStored reports whether any of the events is stored already.
func (w *WriteTx) anyStored(room *RoomRecord, events []json.RawMessage) bool {
	for _, raw := range events {
		p, err := ParsePDU(raw)
		if err != nil {
			continue
		}
		if evID, err := p.GetEventID(id.RoomVersion(room.Version)); err == nil {
			if _, err := w.Event(string(evID)); err == nil {
				return true
			}
		}
	}
	return false
}

// ingest is one room.remote command being applied.
type ingest struct {
	w    *WriteTx
	room *RoomRecord
	cmd  *RemoteEventsCmd
	res  *RemoteEventsResult
}

func (in *ingest) version() id.RoomVersion { return id.RoomVersion(in.room.Version) }

func (in *ingest) reject(evID, why string) {
	if in.res.Rejected == nil {
		in.res.Rejected = map[string]string{}
	}
	in.res.Rejected[evID] = why
}

func (in *ingest) missing(evID, why string) {
	if in.res.Missing == nil {
		in.res.Missing = map[string]string{}
	}
	in.res.Missing[evID] = why
}

// parse checks what does not depend on the room's state: size, format,
// room, event ID; ok false means the event was refused (and recorded).
func (in *ingest) parse(raw json.RawMessage) (*pdu.PDU, string, bool) {
	if len(raw) > maxRemotePDU {
		in.reject("", "PDU larger than 65536 bytes")
		return nil, "", false
	}
	p, err := ParsePDU(raw)
	if err != nil {
		in.reject("", "bad PDU: "+err.Error())
		return nil, "", false
	}
	evID, err := p.GetEventID(in.version())
	if err != nil {
		in.reject("", "cannot compute event ID: "+err.Error())
		return nil, "", false
	}
	isCreate := p.Type == "m.room.create" && p.StateKey != nil && *p.StateKey == ""
	roomID := p.RoomID.String()
	if isCreate {
		roomID = createRoomID(p, evID, in.version())
	}
	if roomID != in.room.RoomID {
		in.reject(string(evID), "event is for another room")
		return nil, "", false
	}
	return p, string(evID), true
}

func (in *ingest) record(p *pdu.PDU, evID string, raw json.RawMessage) *EventRecord {
	return &EventRecord{EventID: evID, RoomID: in.room.RoomID, Type: p.Type, StateKey: p.StateKey,
		Sender: p.Sender.String(), TS: p.OriginServerTS, Depth: p.Depth, PDU: raw}
}

// getKey serves the keys the proposer verified with.
func (in *ingest) getKey(server string, keyID id.KeyID, minValidUntil time.Time) (id.SigningKey, time.Time, error) {
	if k, ok := in.cmd.Keys[server][string(keyID)]; ok {
		if _, err := base64.RawStdEncoding.DecodeString(k); err == nil {
			return id.SigningKey(k), minValidUntil, nil
		}
	}
	return in.w.ownKeyOnly(server, keyID, minValidUntil)
}

func (in *ingest) getEvents(ids []id.EventID) ([]*pdu.PDU, error) { return in.w.pdus(ids) }

// authAgainstAuthEvents checks the event against its own auth events, all
// of which must be stored.
func (in *ingest) authAgainstAuthEvents(p *pdu.PDU) (missing bool, err error) {
	if in.version().RoomIDIsCreateEventID() && p.Type != "m.room.create" {
		// The create event is named by the room ID, not the auth events.
		create := "$" + strings.TrimPrefix(in.room.RoomID, "!")
		if _, err := in.w.Event(create); err != nil {
			return true, errors.New("create event " + create + " is unknown")
		}
	}
	for _, a := range p.AuthEvents {
		if _, err := in.w.Event(string(a)); err != nil {
			return true, errors.New("auth event " + string(a) + " is unknown")
		}
	}
	return false, authorize(in.version(), p, nil, in.getEvents, in.getKey)
}

// authAgainstState checks the event against the auth events the state
// selects for it.
func (in *ingest) authAgainstState(p *pdu.PDU, state map[[2]string]string) error {
	var ids []id.EventID
	for _, k := range p.AuthEventSelection(in.version()) {
		if eid := state[[2]string{k.Type, k.StateKey}]; eid != "" {
			ids = append(ids, id.EventID(eid))
		}
	}
	authEvents, err := in.w.pdus(ids)
	if err != nil {
		return err
	}
	selected := make([]*pdu.PDU, 0, len(authEvents))
	for _, ae := range authEvents {
		if ae != nil {
			selected = append(selected, ae)
		}
	}
	return authorize(in.version(), p, selected, in.getEvents, in.getKey)
}

// outlier stores an auth-chain or state event outside the timeline.
func (in *ingest) outlier(raw json.RawMessage) {
	p, evID, ok := in.parse(raw)
	if !ok {
		return
	}
	if old, err := in.w.Event(evID); err == nil {
		if old.Rejected {
			in.reject(evID, "rejected earlier")
		} else {
			in.res.Accepted = append(in.res.Accepted, evID)
		}
		return
	}
	rec := in.record(p, evID, raw)
	rec.Outlier = true
	if missing, err := in.authAgainstAuthEvents(p); err != nil {
		if missing {
			in.missing(evID, err.Error())
			return
		}
		rec.Rejected = true
		in.reject(evID, "not allowed by its auth events: "+err.Error())
	} else {
		in.res.Accepted = append(in.res.Accepted, evID)
	}
	if err := in.w.putJSON(bEvents, []byte(evID), rec); err != nil {
		in.reject(evID, err.Error())
	}
}

// newestFirst orders backfilled events by depth, newest first (ties by
// event ID), so each takes the next lower stream position.
func newestFirst(events []json.RawMessage) []json.RawMessage {
	type item struct {
		raw   json.RawMessage
		depth int64
		key   string
	}
	items := make([]item, 0, len(events))
	for _, raw := range events {
		p, err := ParsePDU(raw)
		if err != nil {
			items = append(items, item{raw: raw})
			continue
		}
		items = append(items, item{raw: raw, depth: p.Depth, key: string(raw)})
	}
	sort.SliceStable(items, func(i, j int) bool {
		if items[i].depth != items[j].depth {
			return items[i].depth > items[j].depth
		}
		return items[i].key < items[j].key
	})
	out := make([]json.RawMessage, len(items))
	for i, it := range items {
		out[i] = it.raw
	}
	return out
}
