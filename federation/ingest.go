package federation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/tidwall/gjson"
	"maunium.net/go/mautrix/id"

	"github.com/ganglion/ganglion/fsm"
)

// The ingestion pipeline: every PDU another server pushes (a /send
// transaction; the join flows reuse it) is verified here before it is
// proposed (invariant 7): format, size, signatures and content hash
// (ingest_verify.go), the room's server ACL, then what it depends on is
// fetched from its origin (ingest_fetch.go): missing auth events, missing
// prev events with get_missing_events, and the state at a gap that remains.
// Apply (fsm.OpRoomRemote) runs the auth rules and state resolution.

const (
	// ingestTimeout bounds one Ingest call, fetches included.
	ingestTimeout = 90 * time.Second
	// fetchTimeout bounds each request to the origin.
	fetchTimeout = 20 * time.Second
)

// errUnknownRoom: the PDU's room is not one this server is in.
var errUnknownRoom = errors.New("unknown room")

// ingestRun is one Ingest call: the room, what was received, and what was
// fetched to go with it.
type ingestRun struct {
	a      *API
	ctx    context.Context
	log    hclog.Logger
	origin string
	roomID string
	ver    id.RoomVersion
	room   *fsm.RoomRecord

	results  map[string]error        // per received event ID
	received []string                // received event IDs to propose, in order received
	events   map[string]*VerifiedPDU // timeline events to propose (received and fetched)
	outliers map[string]*VerifiedPDU // auth chain and state events to store outside the timeline
	states   map[string][]string     // state before a gap event
	fetched  int                     // events fetched so far (bounded by maxFetchedEvents)
}

// Ingest verifies PDUs of one room sent by origin, fetches what they need
// from origin, and proposes them (fsm.OpRoomRemote, parents first). The
// answer maps each received event ID to nil (accepted or soft-failed) or
// the reason it was refused; a PDU whose ID cannot be computed is left out.
// The error is for failures of the whole batch that a retry may cure (the
// cluster unavailable, the context done).
func (a *API) Ingest(ctx context.Context, origin, roomID string, pdus []json.RawMessage) (map[string]error, error) {
	ctx, cancel := context.WithTimeout(ctx, ingestTimeout)
	defer cancel()
	unlock, err := a.inbound.lockRoom(ctx, roomID)
	if err != nil {
		return nil, err
	}
	defer unlock()
	r := &ingestRun{a: a, ctx: ctx, log: a.log.Named("ingest"), origin: origin, roomID: roomID,
		results: map[string]error{}, events: map[string]*VerifiedPDU{},
		outliers: map[string]*VerifiedPDU{}, states: map[string][]string{}}
	var acl serverACL
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		if room, err := rt.Room(roomID); err == nil && len(room.Extremities) > 0 {
			r.room = room
			acl = roomACL(rt, roomID)
		}
		return nil
	})
	if r.room == nil {
		r.failAll(pdus, errUnknownRoom)
		return r.results, nil
	}
	r.ver = id.RoomVersion(r.room.Version)
	if !acl.allows(origin) {
		r.failAll(pdus, fmt.Errorf("server %s is denied by the room's server ACL", origin))
		return r.results, nil
	}
	for _, raw := range pdus {
		r.receive(raw, acl)
	}
	r.dropKnown()
	if len(r.received) == 0 {
		return r.results, nil
	}
	r.fetchMissingPrevs()
	r.fillGaps()
	r.fetchMissingAuth()
	if err := r.propose(); err != nil {
		return nil, err
	}
	return r.results, nil
}

// failAll reports err for every PDU whose event ID can be computed (with
// the room's version, or v11 rules for an unknown room).
func (r *ingestRun) failAll(pdus []json.RawMessage, err error) {
	ver := r.ver
	if ver == "" {
		ver = id.RoomV11
	}
	for _, raw := range pdus {
		if p, perr := fsm.ParsePDU(raw); perr == nil {
			if evID, ierr := p.GetEventID(ver); ierr == nil {
				r.results[string(evID)] = err
			}
		}
	}
}

// receive verifies one received PDU; the sender's server must pass the
// room's ACL too.
func (r *ingestRun) receive(raw json.RawMessage, acl serverACL) {
	v, err := r.a.VerifyPDU(r.ctx, r.ver, r.roomID, raw)
	if err == nil && !acl.allows(v.PDU.Sender.Homeserver()) {
		err = fmt.Errorf("server %s is denied by the room's server ACL", v.PDU.Sender.Homeserver())
	}
	if v == nil {
		r.log.Debug("dropping a PDU without an event ID", "origin", r.origin, "error", err)
		return
	}
	if _, dup := r.results[v.EventID]; dup {
		return
	}
	r.results[v.EventID] = err
	if err != nil {
		r.log.Debug("PDU refused", "origin", r.origin, "event_id", v.EventID, "error", err)
		return
	}
	r.received = append(r.received, v.EventID)
	r.events[v.EventID] = v
}

// dropKnown answers for received events already stored: nothing to do,
// unless they were rejected.
func (r *ingestRun) dropKnown() {
	_ = r.a.store.View(func(rt *fsm.ReadTx) error {
		keep := r.received[:0]
		for _, evID := range r.received {
			rec, err := rt.Event(evID)
			switch {
			case err != nil:
				keep = append(keep, evID)
				continue
			case rec.Rejected:
				r.results[evID] = errors.New("event was rejected by the auth rules")
			}
			delete(r.events, evID)
		}
		r.received = keep
		return nil
	})
}

// stored tells which of ids are stored, and which of those are usable as
// prev events (accepted timeline events with known state).
func (r *ingestRun) stored(ids []string) (known, timeline map[string]bool) {
	known, timeline = map[string]bool{}, map[string]bool{}
	_ = r.a.store.View(func(rt *fsm.ReadTx) error {
		for _, evID := range ids {
			rec, err := rt.Event(evID)
			if err != nil {
				continue
			}
			known[evID] = true
			if !rec.Rejected && !rec.Outlier {
				timeline[evID] = true
			}
		}
		return nil
	})
	return known, timeline
}

// missingPrevs lists, per timeline event of the run, the prev events that
// are neither stored in the timeline nor part of the run.
func (r *ingestRun) missingPrevs() map[string][]string {
	var all []string
	for _, v := range r.events {
		for _, pe := range v.PDU.PrevEvents {
			all = append(all, string(pe))
		}
	}
	_, timeline := r.stored(all)
	out := map[string][]string{}
	for evID, v := range r.events {
		for _, pe := range v.PDU.PrevEvents {
			if r.events[string(pe)] == nil && !timeline[string(pe)] {
				out[evID] = append(out[evID], string(pe))
			}
		}
	}
	return out
}

// missingAuth lists the auth events named by the run's events and
// outliers that are neither stored nor part of the run.
func (r *ingestRun) missingAuth() []string {
	var all []string
	for _, set := range []map[string]*VerifiedPDU{r.events, r.outliers} {
		for _, v := range set {
			for _, ae := range v.PDU.AuthEvents {
				all = append(all, string(ae))
			}
		}
	}
	known, _ := r.stored(all)
	seen := map[string]bool{}
	var out []string
	for _, evID := range all {
		if !known[evID] && r.events[evID] == nil && r.outliers[evID] == nil && !seen[evID] {
			seen[evID] = true
			out = append(out, evID)
		}
	}
	return out
}

// roomIDOf is the room a PDU names (empty for a v12 create event, which
// names none).
func roomIDOf(raw json.RawMessage) string { return gjson.GetBytes(raw, "room_id").Str }
