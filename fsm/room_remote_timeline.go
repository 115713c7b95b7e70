package fsm

import (
	"encoding/json"
	"errors"
	"slices"

	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/id"
)

var (
	bBackfill   = []byte("backfill")    // room \x00 seq(8) -> event_id, older as seq grows
	bLateStream = []byte("late_stream") // room \x00 pos(8) -> event_id of a late message
)

// event stores one federated timeline event (see OpRoomRemote). Only a
// store failure is returned; refusals are recorded in the result.
func (in *ingest) event(raw json.RawMessage) error {
	p, evID, ok := in.parse(raw)
	if !ok {
		return nil
	}
	if old, err := in.w.Event(evID); err == nil {
		switch {
		case in.cmd.Backfill && old.Outlier && !old.Rejected && old.Pos == 0:
			// Known from the join's state or an auth chain: it also
			// belongs to the history being backfilled.
			return in.backfill(old)
		case old.Rejected:
			in.reject(evID, "rejected earlier")
			return nil
		case old.Outlier && old.Pos == 0 && !in.cmd.Backfill:
			// Known from an auth chain or state: it now joins the
			// timeline, checked like any new event.
		default:
			in.res.Accepted = append(in.res.Accepted, evID)
			return nil
		}
	}
	rec := in.record(p, evID, raw)
	missing, err := in.authAgainstAuthEvents(p)
	if missing {
		in.missing(evID, err.Error())
		return nil
	}
	if err != nil {
		return in.storeRejected(rec, "not allowed by its auth events: "+err.Error())
	}
	if in.cmd.Backfill {
		return in.backfill(rec)
	}
	before, err := in.stateBefore(p, evID)
	if err != nil {
		in.missing(evID, err.Error())
		return nil
	}
	if err := in.authAgainstState(p, before); err != nil {
		return in.storeRejected(rec, "not allowed by the state before it: "+err.Error())
	}
	linear := in.cmd.States[evID] == nil && len(in.room.Extremities) > 0 && sameEvents(p.PrevEvents, in.room.Extremities)
	if !linear && len(in.room.Extremities) > 0 {
		if err := in.authAgainstState(p, in.w.CurrentState(in.room.RoomID)); err != nil {
			// Soft failure: part of the DAG, never shown, never built on.
			rec.SoftFailed = true
			in.res.SoftFailed = append(in.res.SoftFailed, evID)
			if err := in.w.putStateBefore(evID, before); err != nil {
				return err
			}
			return in.w.putJSON(bEvents, []byte(evID), rec)
		}
	}
	if in.redactionRefused(p) {
		rec.skipRedaction = true
	}
	in.res.Accepted = append(in.res.Accepted, evID)
	if linear {
		return in.w.storeEvent(in.room, rec, p)
	}
	return in.fork(rec, p, before)
}

func (in *ingest) storeRejected(rec *EventRecord, why string) error {
	rec.Rejected, rec.Outlier = true, true
	in.reject(rec.EventID, why)
	return in.w.putJSON(bEvents, []byte(rec.EventID), rec)
}

// redactionRefused reports a redaction whose sender may not redact its
// target: it is kept as an event but redacts nothing.
func (in *ingest) redactionRefused(p *pdu.PDU) bool {
	return p.Type == "m.room.redaction" && in.w.checkRedaction(in.room, p, in.version()) != nil
}

// stateBefore is the state an event is checked against: given by the
// command for a gap or a join, else the resolution of the states after its
// prev events, which must all be stored.
func (in *ingest) stateBefore(p *pdu.PDU, evID string) (map[[2]string]string, error) {
	if ids, ok := in.cmd.States[evID]; ok {
		state := make(map[[2]string]string, len(ids))
		for _, sid := range ids {
			rec, err := in.w.Event(sid)
			if err != nil || rec.Rejected || rec.StateKey == nil || rec.RoomID != in.room.RoomID {
				return nil, errors.New("state event " + sid + " is unknown or not usable")
			}
			state[[2]string{rec.Type, *rec.StateKey}] = sid
		}
		return state, nil
	}
	if len(p.PrevEvents) == 0 {
		return nil, errors.New("an event without prev events needs its state given")
	}
	prevs := make([]string, 0, len(p.PrevEvents))
	for _, pe := range p.PrevEvents {
		rec, err := in.w.Event(string(pe))
		if err != nil || rec.Rejected {
			return nil, errors.New("prev event " + string(pe) + " is unknown")
		}
		prevs = append(prevs, string(pe))
	}
	states, err := in.w.stateOfEvents(prevs)
	if err != nil {
		return nil, err
	}
	return in.w.resolveStates(in.room, states, in.getKey)
}

// fork stores an event that is not built on exactly the room's forward
// extremities: the current state becomes the resolution of the states after
// the new extremities. A state event resolution does not keep, and a
// message older than what clients have seen, stay out of the live timeline.
func (in *ingest) fork(rec *EventRecord, p *pdu.PDU, before map[[2]string]string) error {
	w, room := in.w, in.room
	after := make(map[[2]string]string, len(before)+1)
	for k, v := range before {
		after[k] = v
	}
	if rec.StateKey != nil {
		after[[2]string{rec.Type, *rec.StateKey}] = rec.EventID
	}
	ext := make([]string, 0, len(room.Extremities)+1)
	for _, e := range room.Extremities {
		if !slices.Contains(p.PrevEvents, id.EventID(e)) {
			ext = append(ext, e)
		}
	}
	states, err := w.stateOfEvents(ext)
	var next map[[2]string]string
	if err == nil {
		p.InternalMeta.EventID = id.EventID(rec.EventID)
		next, err = w.resolveStates(room, append(states, after), in.getKey, p)
	}
	if err != nil {
		// Nothing is written for the event: it may come again once what
		// resolution needs is here.
		in.res.Accepted = slices.DeleteFunc(in.res.Accepted, func(s string) bool { return s == rec.EventID })
		in.missing(rec.EventID, "cannot resolve the room's state: "+err.Error())
		return nil
	}
	if err := w.putStateBefore(rec.EventID, before); err != nil {
		return err
	}
	if rec.StateKey != nil {
		rec.PrevState = w.StateEventID(room.RoomID, rec.Type, *rec.StateKey)
	}
	if err := w.replaceCurrentState(room, next, rec); err != nil {
		return err
	}
	room.Extremities = append(ext, rec.EventID)
	late := isLate(room, rec, p)
	superseded := rec.StateKey != nil && next[[2]string{rec.Type, *rec.StateKey}] != rec.EventID
	if p.Depth > room.Depth {
		room.Depth = p.Depth
	}
	switch {
	case superseded:
		rec.Superseded = true
		return w.putJSON(bEvents, []byte(rec.EventID), rec)
	case late:
		rec.Late, rec.After = true, latestPrev(w, p)
		rec.Pos = w.NextPos()
		if err := w.putJSON(bEvents, []byte(rec.EventID), rec); err != nil {
			return err
		}
		return w.put(bLateStream, append(prefix(room.RoomID), u64(uint64(rec.Pos))...), []byte(rec.EventID))
	}
	return w.appendToTimeline(room, rec, p)
}

// lateAfter is how much older than the newest message of the room a
// message built on older events must be to count as late. Messages sent
// concurrently on two servers (or while one was briefly away) arrive a
// little after newer ones and belong in the live timeline; a message from
// a server that was cut off for minutes does not. A constant, not a
// setting: every node must decide alike.
const lateAfter = 2 * 60 * 1000 // ms

// isLate reports a message that forks off older history and is clearly
// older than what the room's clients have seen: it stays out of the live
// timeline (clients may opt in to it).
func isLate(room *RoomRecord, rec *EventRecord, p *pdu.PDU) bool {
	return rec.StateKey == nil && room.Depth > 0 && p.Depth < room.Depth &&
		room.LatestTS > 0 && p.OriginServerTS < room.LatestTS-lateAfter
}

// latestPrev is the prev event a late event follows: the deepest (ties by
// event ID).
func latestPrev(w *WriteTx, p *pdu.PDU) string {
	best, bestDepth := "", int64(-1)
	for _, pe := range p.PrevEvents {
		rec, err := w.Event(string(pe))
		if err != nil {
			continue
		}
		if rec.Depth > bestDepth || (rec.Depth == bestDepth && string(pe) < best) {
			best, bestDepth = string(pe), rec.Depth
		}
	}
	return best
}

// backfill stores history older than the room's first stored event in the
// backfill stream; it has no state here and changes none.
func (in *ingest) backfill(rec *EventRecord) error {
	in.room.BackfillSeq++
	seq := in.room.BackfillSeq
	rec.Pos = -seq
	in.res.Accepted = append(in.res.Accepted, rec.EventID)
	if err := in.w.putJSON(bEvents, []byte(rec.EventID), rec); err != nil {
		return err
	}
	return in.w.put(bBackfill, append(prefix(in.room.RoomID), u64(uint64(seq))...), []byte(rec.EventID))
}

// BackfilledEvents walks a room's backfilled history from sequence after
// (exclusive), older first as seq grows, up to limit events.
func (r *ReadTx) BackfilledEvents(roomID string, after int64, limit int, fn func(*EventRecord) bool) {
	pfx := prefix(roomID)
	start := append(append([]byte{}, pfx...), u64(uint64(after+1))...)
	n := 0
	r.scanFrom(bBackfill, pfx, start, func(_, v []byte) bool {
		if limit > 0 && n >= limit {
			return false
		}
		e, err := r.Event(string(v))
		if err != nil {
			return true
		}
		n++
		return fn(e)
	})
}

// LateEvents walks a room's late messages with positions in (from, to].
func (r *ReadTx) LateEvents(roomID string, from, to int64, fn func(*EventRecord) bool) {
	pfx := prefix(roomID)
	start := append(append([]byte{}, pfx...), u64(uint64(from+1))...)
	r.scanFrom(bLateStream, pfx, start, func(k, v []byte) bool {
		if int64(getU64(k[len(pfx):])) > to {
			return false
		}
		e, err := r.Event(string(v))
		if err != nil {
			return true
		}
		return fn(e)
	})
}
