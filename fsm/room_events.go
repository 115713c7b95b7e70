package fsm

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	jsonv2 "encoding/json/v2"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/tidwall/gjson"
	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/id"
)

// OpRoomEvents appends built, signed events to a room (or creates it).
const OpRoomEvents = "room.events"

// RoomEventsCmd carries events the leader built. Apply re-checks that each
// still fits (invariant 5) and rejects, never alters, what does not.
type RoomEventsCmd struct {
	RoomID string            `json:"room_id"`
	Create *RoomCreate       `json:"create,omitempty"`
	Events []json.RawMessage `json:"events"`
	Txn    *TxnKey           `json:"txn,omitempty"`
}

// RoomCreate is set when the command creates the room.
type RoomCreate struct {
	Version   string   `json:"version"`
	Creator   string   `json:"creator"`
	Aliases   []string `json:"aliases,omitempty"`
	Published bool     `json:"published,omitempty"`
}

// PrevEventUnknown starts the refusal of an event built on an event the
// store does not have; the builder retries such an event once.
const PrevEventUnknown = "prev event is not known in this room"

// RoomEventsResult lists the stored event IDs in order.
type RoomEventsResult struct {
	EventIDs []string `json:"event_ids"`
	Deduped  bool     `json:"deduped,omitempty"`
}

func init() { register(OpRoomEvents, applyRoomEvents) }

func applyRoomEvents(w *WriteTx, cmd *Command) (any, error) {
	c, err := decode[RoomEventsCmd](cmd)
	if err != nil {
		return nil, err
	}
	if c.Txn != nil {
		if prev := w.TxnResult(c.Txn); prev != nil {
			var res RoomEventsResult
			if json.Unmarshal(prev, &res) == nil {
				res.Deduped = true
				return &res, nil
			}
		}
	}
	var room *RoomRecord
	if c.Create != nil {
		if _, err := w.Room(c.RoomID); err == nil {
			return nil, Errorf(http.StatusBadRequest, "M_ROOM_IN_USE", "room %s already exists", c.RoomID)
		}
		for _, a := range c.Create.Aliases {
			if err := checkAlias(a); err != nil {
				return nil, err
			}
			if _, _, taken := w.AliasRoom(a); taken {
				return nil, Errorf(http.StatusBadRequest, "M_ROOM_IN_USE", "alias %s is already in use", a)
			}
		}
		room = &RoomRecord{RoomID: c.RoomID, Version: c.Create.Version, Creator: c.Create.Creator,
			Published: c.Create.Published}
	} else {
		room, err = w.Room(c.RoomID)
		if err != nil {
			return nil, errNotFound("unknown room %s", c.RoomID)
		}
	}
	if len(c.Events) == 0 {
		return nil, errBadRequest("no events")
	}
	if len(c.Events) > maxSubPos {
		// Each event takes a stream position of this index.
		return nil, errTooLarge("%d events in one command; at most %d", len(c.Events), maxSubPos)
	}
	res := &RoomEventsResult{}
	for i, raw := range c.Events {
		rec, p, err := w.acceptEvent(room, raw, i == 0 && c.Create != nil)
		if err != nil {
			return nil, err
		}
		if c.Txn != nil && i == len(c.Events)-1 {
			rec.TxnID, rec.TxnDevice = c.Txn.TxnID, c.Txn.DeviceID
		}
		if err := w.storeEvent(room, rec, p); err != nil {
			return nil, err
		}
		// Built here: the other servers in the room get it.
		if err := w.EnqueueFederationPDU(room.RoomID, rec); err != nil {
			return nil, err
		}
		res.EventIDs = append(res.EventIDs, rec.EventID)
	}
	if c.Create != nil {
		room.CreatedPos = w.index2pos(0)
		for _, a := range c.Create.Aliases {
			if err := w.putJSON(bAliases, []byte(a), aliasRecord{RoomID: c.RoomID, Creator: c.Create.Creator}); err != nil {
				return nil, err
			}
		}
	}
	if err := w.putJSON(bRooms, []byte(c.RoomID), room); err != nil {
		return nil, err
	}
	if c.Txn != nil {
		if err := w.putJSON(bTxns, c.Txn.key(), res); err != nil {
			return nil, err
		}
	}
	w.touchRoom(c.RoomID)
	return res, nil
}

func (w *WriteTx) index2pos(sub uint64) int64 { return int64(w.index<<posShift | sub) }

// ParsePDU decodes a PDU with mautrix's types.
func ParsePDU(raw []byte) (*pdu.PDU, error) {
	var p pdu.PDU
	if err := jsonv2.Unmarshal(raw, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// acceptEvent checks one event against the room as stored: its ID, its prev
// events, the auth rules against its auth events and against current state.
func (w *WriteTx) acceptEvent(room *RoomRecord, raw json.RawMessage, isCreate bool) (*EventRecord, *pdu.PDU, error) {
	p, err := ParsePDU(raw)
	if err != nil {
		return nil, nil, errBadRequest("bad PDU: %v", err)
	}
	ver := id.RoomVersion(room.Version)
	evID, err := p.GetEventID(ver)
	if err != nil {
		return nil, nil, errBadRequest("cannot compute event ID: %v", err)
	}
	if _, err := w.Event(string(evID)); err == nil {
		return nil, nil, errBadRequest("event %s already stored", evID)
	}
	if isCreate != (p.Type == "m.room.create" && p.StateKey != nil && *p.StateKey == "") {
		return nil, nil, errBadRequest("a new room starts with its m.room.create event, and only then")
	}
	for _, prev := range p.PrevEvents {
		pe, err := w.Event(string(prev))
		if err != nil || pe.Rejected || pe.RoomID != room.RoomID {
			return nil, nil, errForbidden("%s: %s", PrevEventUnknown, prev)
		}
	}
	// A local event extends the whole DAG; one built before a federated
	// event landed is rebuilt by the leader rather than forking the room.
	if !isCreate && !sameEvents(p.PrevEvents, room.Extremities) {
		return nil, nil, errForbidden("%s: the room's forward extremities moved", PrevEventUnknown)
	}
	if !isCreate && p.RoomID.String() != room.RoomID {
		return nil, nil, errBadRequest("event room_id %s does not match %s", p.RoomID, room.RoomID)
	}
	if isCreate && createRoomID(p, evID, ver) != room.RoomID {
		// Every later event would fail auth against a create event of
		// another room: the room would be stored but unusable.
		return nil, nil, errBadRequest("create event is for room %s, not %s", createRoomID(p, evID, ver), room.RoomID)
	}
	getEvents := func(ids []id.EventID) ([]*pdu.PDU, error) { return w.pdus(ids) }
	noKeys := w.ownKeyOnly
	if err := authorize(ver, p, nil, getEvents, noKeys); err != nil {
		return nil, nil, errForbidden("event not allowed by its auth events: %v", err)
	}
	if !isCreate && !w.authEventsAreCurrent(room, p, ver) {
		current, err := w.currentAuthEvents(room, p, ver)
		if err != nil {
			return nil, nil, err
		}
		if err := authorize(ver, p, current, getEvents, noKeys); err != nil {
			return nil, nil, errForbidden("event not allowed by current room state: %v", err)
		}
	}
	if p.Type == "m.room.redaction" {
		if err := w.checkRedaction(room, p, ver); err != nil {
			return nil, nil, err
		}
	}
	rec := &EventRecord{EventID: string(evID), RoomID: room.RoomID, Type: p.Type, StateKey: p.StateKey,
		Sender: p.Sender.String(), TS: p.OriginServerTS, Depth: p.Depth, PDU: raw}
	if isCreate {
		rec.RoomID = room.RoomID
	}
	return rec, p, nil
}

// createRoomID is the room a create event creates: its room_id, or for
// room versions without one (v12) the room ID derived from its event ID.
func createRoomID(p *pdu.PDU, evID id.EventID, ver id.RoomVersion) string {
	if ver.RoomIDIsCreateEventID() {
		return "!" + strings.TrimPrefix(string(evID), "$")
	}
	return p.RoomID.String()
}

// pdus loads events by ID for the auth checks; a missing one is nil.
func (w *WriteTx) pdus(ids []id.EventID) ([]*pdu.PDU, error) {
	out := make([]*pdu.PDU, len(ids))
	for i, eid := range ids {
		if w.cache != nil {
			if p := w.cache.get(eid); p != nil {
				out[i] = p
				continue
			}
		}
		rec, err := w.Event(string(eid))
		if err != nil {
			continue
		}
		p, err := ParsePDU(rec.PDU)
		if err != nil {
			return nil, err
		}
		p.InternalMeta.EventID = eid
		p.InternalMeta.Rejected = rec.Rejected
		if w.cache != nil && rec.StateKey != nil {
			w.cache.put(eid, p)
		}
		out[i] = p
	}
	return out, nil
}

// authEventsAreCurrent reports whether the event's auth events are exactly
// the current state for its auth selection: then the check against current
// state would repeat the one just done.
func (w *WriteTx) authEventsAreCurrent(room *RoomRecord, p *pdu.PDU, ver id.RoomVersion) bool {
	n := 0
	for _, k := range p.AuthEventSelection(ver) {
		eid := w.StateEventID(room.RoomID, k.Type, k.StateKey)
		if eid == "" {
			continue
		}
		if !slices.Contains(p.AuthEvents, id.EventID(eid)) {
			return false
		}
		n++
	}
	return n == len(p.AuthEvents)
}

func (w *WriteTx) currentAuthEvents(room *RoomRecord, p *pdu.PDU, ver id.RoomVersion) ([]*pdu.PDU, error) {
	var ids []id.EventID
	for _, k := range p.AuthEventSelection(ver) {
		if eid := w.StateEventID(room.RoomID, k.Type, k.StateKey); eid != "" {
			ids = append(ids, id.EventID(eid))
		}
	}
	return w.pdus(ids)
}

// checkRedaction allows a redaction by the original sender or by someone
// with the redact power level; the target must be in the same room.
func (w *WriteTx) checkRedaction(room *RoomRecord, p *pdu.PDU, ver id.RoomVersion) error {
	target := redactsOf(p, ver)
	if target == "" {
		return errBadRequest("redaction without a target")
	}
	te, err := w.Event(target)
	if err != nil || te.RoomID != room.RoomID {
		return nil // redacting an unknown event is allowed; nothing to apply
	}
	if te.Sender == p.Sender.String() {
		return nil
	}
	if senderPower(w, room, p.Sender.String()) >= redactLevel(w, room) {
		return nil
	}
	return errForbidden("you may not redact other users' events")
}

func redactsOf(p *pdu.PDU, ver id.RoomVersion) string {
	if p.Redacts != nil && *p.Redacts != "" {
		return string(*p.Redacts)
	}
	return gjson.GetBytes(p.Content, "redacts").Str
}

func redactLevel(w *WriteTx, room *RoomRecord) int64 {
	pl, err := w.StateEvent(room.RoomID, "m.room.power_levels", "")
	if err != nil {
		return 50
	}
	v := gjson.GetBytes(pl.PDU, "content.redact")
	if !v.Exists() {
		return 50
	}
	return v.Int()
}

// senderPower is the user's power level (creators of v12 rooms are above all).
func senderPower(w *WriteTx, room *RoomRecord, user string) int64 {
	if id.RoomVersion(room.Version).PrivilegedRoomCreators() {
		if user == room.Creator {
			return 1 << 53
		}
		if c, err := w.StateEvent(room.RoomID, "m.room.create", ""); err == nil {
			for _, ac := range gjson.GetBytes(c.PDU, "content.additional_creators").Array() {
				if ac.Str == user {
					return 1 << 53
				}
			}
		}
	}
	pl, err := w.StateEvent(room.RoomID, "m.room.power_levels", "")
	if err != nil {
		if user == room.Creator {
			return 100
		}
		return 0
	}
	c := gjson.GetBytes(pl.PDU, "content")
	if v := c.Get("users." + gjsonEscape(user)); v.Exists() {
		return v.Int()
	}
	return c.Get("users_default").Int()
}

func gjsonEscape(s string) string {
	out := make([]byte, 0, len(s)+4)
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '.', '*', '?', '|', '#', '@', '\\', '!', '=', '<', '>', '%':
			out = append(out, '\\')
		}
		out = append(out, s[i])
	}
	return string(out)
}

// ownKeyOnly is the key lookup of Apply: only the cluster's own signing key,
// read from the store, is known there (a restricted-room join this server
// authorised is signed with it); any other key is refused.
func (w *WriteTx) ownKeyOnly(_ string, keyID id.KeyID, minValidUntil time.Time) (id.SigningKey, time.Time, error) {
	if k, ok := w.SigningKey(); ok && id.KeyID(k.KeyID) == keyID && len(k.Seed) == ed25519.SeedSize {
		pub := ed25519.NewKeyFromSeed(k.Seed).Public().(ed25519.PublicKey)
		return id.SigningKey(base64.RawStdEncoding.EncodeToString(pub)), minValidUntil, nil
	}
	return "", time.Time{}, errors.New("no key lookup inside Apply")
}
