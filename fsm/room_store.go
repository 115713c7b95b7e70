package fsm

import (
	jsonv2 "encoding/json/v2"
	"slices"

	"github.com/tidwall/gjson"
	"maunium.net/go/mautrix/crypto/canonicaljson"
	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/id"
)

// storeEvent writes an event built on all of the room's forward
// extremities: the record, its place in the room's stream, state and
// membership changes, the new forward extremities, and the redaction it
// carries out.
func (w *WriteTx) storeEvent(room *RoomRecord, rec *EventRecord, p *pdu.PDU) error {
	if rec.StateKey != nil {
		rec.PrevState = w.StateEventID(room.RoomID, rec.Type, *rec.StateKey)
	}
	if err := w.appendToTimeline(room, rec, p); err != nil {
		return err
	}
	if rec.StateKey != nil {
		if err := w.setState(room.RoomID, rec.Type, *rec.StateKey, rec.EventID, rec.Pos); err != nil {
			return err
		}
		if rec.Type == "m.room.member" {
			membership := gjson.GetBytes(p.Content, "membership").Str
			if err := w.setMembership(room.RoomID, *rec.StateKey, membership, rec.EventID, rec.Pos); err != nil {
				return err
			}
		}
	}
	// Forward extremities: drop what this event references, add it.
	ext := make([]string, 0, len(room.Extremities)+1)
	for _, e := range room.Extremities {
		if !slices.Contains(p.PrevEvents, id.EventID(e)) {
			ext = append(ext, e)
		}
	}
	room.Extremities = append(ext, rec.EventID)
	if rec.Depth > room.Depth {
		room.Depth = rec.Depth
	}
	return nil
}

// appendToTimeline gives the event the next stream position and writes it,
// its relations and the redaction it carries out; state is the caller's.
func (w *WriteTx) appendToTimeline(room *RoomRecord, rec *EventRecord, p *pdu.PDU) error {
	rec.Pos = w.NextPos()
	if err := w.putJSON(bEvents, []byte(rec.EventID), rec); err != nil {
		return err
	}
	if err := w.indexRelation(rec, p.Content); err != nil {
		return err
	}
	if err := w.put(bRoomStream, append(prefix(room.RoomID), u64(uint64(rec.Pos))...), []byte(rec.EventID)); err != nil {
		return err
	}
	if rec.Type == "m.room.redaction" && !rec.skipRedaction {
		if err := w.applyRedaction(room, rec.EventID, redactsOf(p, id.RoomVersion(room.Version))); err != nil {
			return err
		}
	}
	room.LastPos = rec.Pos
	room.LatestTS = max(room.LatestTS, rec.TS)
	w.touchRoom(room.RoomID)
	return nil
}

func (w *WriteTx) setState(roomID, evType, stateKey, eventID string, pos int64) error {
	if err := w.put(bRoomState, key(roomID, evType, stateKey), []byte(eventID)); err != nil {
		return err
	}
	return w.putJSON(bStateLog, append(prefix(roomID), u64(uint64(pos))...),
		StateChange{Type: evType, StateKey: stateKey, EventID: eventID})
}

func (w *WriteTx) setMembership(roomID, userID, membership, eventID string, pos int64) error {
	w.touchUser(userID)
	if membership == "join" || membership == "invite" || membership == "knock" {
		// Rejoining un-forgets the room.
		if err := w.del(bForgotten, key(userID, roomID)); err != nil {
			return err
		}
	}
	return w.putJSON(bMembership, key(userID, roomID), MembershipRecord{Membership: membership, EventID: eventID, Pos: pos})
}

// marshalPDU encodes a PDU for the store. encoding/json/v2 writes map
// entries (a PDU's signatures) in random order unless told otherwise, which
// would make nodes store different bytes: canonical JSON (sorted keys, as
// Matrix signs it) is the same on every node and every version; the
// deterministic v2 encoding is the fallback for what canonical JSON refuses.
func marshalPDU(p *pdu.PDU) ([]byte, error) {
	if raw, err := canonicaljson.Marshal(p); err == nil {
		return raw, nil
	}
	return jsonv2.Marshal(p, jsonv2.Deterministic(true))
}

// applyRedaction replaces the target's stored PDU by its redacted form; the
// signatures and hashes stay valid for federation.
func (w *WriteTx) applyRedaction(room *RoomRecord, redactionID, target string) error {
	te, err := w.Event(target)
	if err != nil || te.RoomID != room.RoomID || te.RedactedBecause != "" {
		return nil
	}
	p, err := ParsePDU(te.PDU)
	if err != nil {
		return err
	}
	if err := w.unindexRelation(te, p.Content); err != nil {
		return err
	}
	red := p.Redact(id.RoomVersion(room.Version))
	raw, err := marshalPDU(red)
	if err != nil {
		return err
	}
	te.PDU = raw
	te.RedactedBecause = redactionID
	if w.cache != nil {
		w.cache.forget(id.EventID(te.EventID))
	}
	return w.putJSON(bEvents, []byte(te.EventID), te)
}
