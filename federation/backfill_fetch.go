package federation

import (
	"context"
	"errors"
	"slices"

	mfed "maunium.net/go/mautrix/federation"
	"maunium.net/go/mautrix/id"

	"github.com/ganglion/ganglion/fsm"
)

// One /backfill request and what follows it: every PDU of the answer is
// verified (VerifyPDU: size, format, signatures, content hash), the auth
// events the store lacks are fetched from the same server (the ingestion
// pipeline's fetchMissingAuth), then the auth events are proposed as
// outliers and the history, newest first, as backfill.

// backfillAnswerBytes bounds one /backfill answer (100 PDUs of 64 KiB
// each, with room to spare).
const backfillAnswerBytes = 16 << 20

// backfillFrom asks server for history before plan.edge and stores what
// passes; got reports whether the backfill stream grew.
func (a *API) backfillFrom(ctx context.Context, plan *backfillPlan, server string, limit int) (got bool, err error) {
	roomID := plan.room.RoomID
	fed, err := a.fetchClient(backfillAnswerBytes)
	if err != nil {
		return false, err
	}
	edge := make([]id.EventID, 0, len(plan.edge))
	for _, e := range plan.edge {
		edge = append(edge, id.EventID(e))
	}
	rctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	resp, err := fed.Backfill(rctx, &mfed.ReqBackfill{ServerName: server, RoomID: id.RoomID(roomID), Limit: limit, BackfillFrom: edge})
	cancel()
	if err != nil {
		return false, err
	}
	run := &ingestRun{a: a, ctx: ctx, log: a.log.Named("backfill"), origin: server, roomID: roomID,
		ver: plan.ver, room: plan.room, results: map[string]error{}, events: map[string]*VerifiedPDU{},
		outliers: map[string]*VerifiedPDU{}, states: map[string][]string{}}
	for _, raw := range resp.PDUs[:min(len(resp.PDUs), limit)] {
		v, err := a.VerifyPDU(ctx, plan.ver, roomID, raw)
		if err != nil {
			run.log.Debug("backfilled PDU refused", "server", server, "room_id", roomID, "error", err)
			continue
		}
		if run.events[v.EventID] == nil {
			run.events[v.EventID] = v
			run.received = append(run.received, v.EventID)
		}
	}
	if a.dropHeld(run) == 0 {
		return false, nil
	}
	run.fetchMissingAuth()
	// Apply stores backfill newest first, so an event of the batch that
	// another one names as an auth event goes in as an outlier first.
	for _, v := range run.events {
		for _, ae := range v.PDU.AuthEvents {
			if dep := run.events[string(ae)]; dep != nil {
				run.outliers[dep.EventID] = dep
			}
		}
	}
	return a.proposeBackfill(run)
}

// dropHeld leaves out events the timeline or the backfill stream already
// holds, or that were rejected; it returns how many remain. Stored
// outliers stay: as history they belong in the backfill stream.
func (a *API) dropHeld(run *ingestRun) int {
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		for evID := range run.events {
			if rec, err := rt.Event(evID); err == nil && (rec.Rejected || rec.Pos != 0) {
				delete(run.events, evID)
			}
		}
		return nil
	})
	run.received = slices.DeleteFunc(run.received, func(evID string) bool { return run.events[evID] == nil })
	return len(run.events)
}

// proposeBackfill stores the run's outliers (parents first) and its events
// as backfill, newest first across commands too (each command's events go
// below the previous one's); the outliers ride in the first command when
// everything fits in one. It reports whether the room's backfill stream
// grew.
func (a *API) proposeBackfill(run *ingestRun) (bool, error) {
	keys := map[string]map[string]string{}
	for _, set := range []map[string]*VerifiedPDU{run.outliers, run.events} {
		for _, evID := range sortedKeys(set) {
			a.keysFor(run.ctx, set[evID].PDU, keys)
		}
	}
	outliers := topoOrder(run.outliers, false)
	events := topoOrder(run.events, true)
	slices.Reverse(events) // children before parents: newest first
	type command struct {
		cmd fsm.RemoteEventsCmd
		ids []string
	}
	var cmds []command
	add := func(outs, evs []*VerifiedPDU) {
		cmds = append(cmds, command{fsm.RemoteEventsCmd{RoomID: run.roomID, Outliers: raws(outs), Events: raws(evs),
			Backfill: len(evs) > 0, Keys: keys}, append(eventIDs(outs), eventIDs(evs)...)})
	}
	if len(chunked(append(slices.Clone(outliers), events...))) == 1 {
		add(outliers, events)
	} else {
		for _, chunk := range chunked(outliers) {
			add(chunk, nil)
		}
		for _, chunk := range chunked(events) {
			add(nil, chunk)
		}
	}
	before := a.backfillSeq(run.roomID)
	for _, c := range cmds {
		res, err := a.proposeRemote(run.ctx, c.cmd, c.ids)
		var fe *fsm.Error
		switch {
		case errors.As(err, &fe):
			run.log.Warn("backfill refused", "room_id", run.roomID, "error", err)
		case err != nil:
			return false, err
		case len(res.Rejected)+len(res.Missing) > 0:
			run.log.Debug("backfilled events not stored", "room_id", run.roomID,
				"rejected", len(res.Rejected), "missing", len(res.Missing))
		}
	}
	return a.backfillSeq(run.roomID) > before, nil
}

// backfillSeq is the room's backfill stream length as applied here.
func (a *API) backfillSeq(roomID string) int64 {
	var n int64
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		if room, err := rt.Room(roomID); err == nil {
			n = room.BackfillSeq
		}
		return nil
	})
	return n
}
