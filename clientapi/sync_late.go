package clientapi

import (
	"cmp"
	"math"
	"slices"

	"github.com/ganglion/ganglion/fsm"
)

// Late messages: a federated message older (by depth) than what clients
// have already seen is stored out of the live timeline, in the room's late
// stream (fsm: ReadTx.LateEvents), at the position it arrived. Clients get
// none unless their RoomEventFilter opts in with
// "org.ganglion.late_events": true; then /sync's timeline (after the
// normal events) and /messages include the late messages of the range
// they cover, each with unsigned["org.ganglion.after"] naming the event it
// comes after, so a client that keeps scrollback can put it in place.

const (
	lateEventsField = "org.ganglion.late_events"
	lateAfterKey    = "org.ganglion.after"
	// maxLateEvents bounds the late messages of one room in one answer
	// (the newest are kept); maxLateScan the entries examined.
	maxLateEvents = 100
	maxLateScan   = 1000
)

// lateEvents lists a room's late messages with positions in (after, upto]
// that pass ok, oldest first.
func lateEvents(rt *fsm.ReadTx, roomID string, after, upto int64, ok func(*fsm.EventRecord) bool) []*fsm.EventRecord {
	var out []*fsm.EventRecord
	scanned := 0
	rt.LateEvents(roomID, after, upto, func(e *fsm.EventRecord) bool {
		if scanned++; scanned > maxLateScan {
			return false
		}
		if !e.Rejected && ok(e) {
			out = append(out, e)
		}
		return true
	})
	if len(out) > maxLateEvents {
		out = out[len(out)-maxLateEvents:]
	}
	return out
}

// annotateLate marks the late events of a formatted chunk (parallel to
// recs) with the event each comes after.
func annotateLate(chunk []*ClientEvent, recs []*fsm.EventRecord) []*ClientEvent {
	for i, rec := range recs {
		if rec.Late && i < len(chunk) {
			chunk[i].Unsigned[lateAfterKey] = rec.After
		}
	}
	return chunk
}

// lateSince reports, for an opted-in incremental sync, a late message that
// arrived in the room since the token: the room then counts as changed
// even though its timeline did not move.
func (s *syncer) lateSince(roomID string) bool {
	if !s.f.Room.Timeline.LateEvents || s.since < 0 {
		return false
	}
	found := false
	s.rt.LateEvents(roomID, s.since, s.upto, func(*fsm.EventRecord) bool {
		found = true
		return false
	})
	return found
}

// lateTimeline renders, for an opted-in sync, the late messages of a
// joined room that arrived in the sync's range: since the token, or, for a
// room synced afresh, within the span of its timeline.
func (s *syncer) lateTimeline(roomID string, from int64, tl roomTimeline) []any {
	tf := &s.f.Room.Timeline
	if !tf.LateEvents {
		return nil
	}
	after := from
	if from < 0 {
		after = tl.start - 1
	}
	vis := s.visibility(roomID)
	recs := lateEvents(s.rt, roomID, after, s.upto, func(e *fsm.EventRecord) bool {
		return tf.allowsEvent(e) && vis.canSee(e) && !hiddenByIgnore(s.ignored, e)
	})
	out := make([]any, 0, len(recs))
	for _, rec := range recs {
		out = append(out, s.f.renderEvent(s.rt, rec, s.p.caller, true, vis.membershipAt(rec.Pos),
			func(ev *ClientEvent) { ev.Unsigned[lateAfterKey] = rec.After }))
	}
	return out
}

// addLate merges into an opted-in /messages page the late messages that
// arrived within the range the page covers, in position order, keeping
// the page within its limit (and its end token just past what it serves).
func (res *messagesResult) addLate(rr *roomReader, q *messagesQuery) {
	if q.limit == 0 {
		return
	}
	lo, hi := res.from, int64(math.MaxInt64) // the page covers lo <= pos < hi
	if q.forward {
		switch {
		case res.hasEnd:
			hi = res.end
		case q.hasTo:
			hi = q.to
		}
	} else {
		lo, hi = 0, res.from
		if !q.hasFrom {
			hi = math.MaxInt64 // late messages may follow the newest event
		}
		switch {
		case res.hasEnd:
			lo = res.end
		case q.hasTo:
			lo = q.to
		}
	}
	lo = max(lo, 1) // late messages have timeline positions
	if hi <= lo {
		return
	}
	late := lateEvents(rr.rt, rr.room.RoomID, lo-1, hi-1, func(e *fsm.EventRecord) bool {
		return q.filter.allowsEvent(e) && rr.canSee(e) && !hiddenByIgnore(rr.ignored, e)
	})
	if len(late) == 0 {
		return
	}
	merged := append(slices.Clone(res.events), late...)
	slices.SortStableFunc(merged, func(x, y *fsm.EventRecord) int {
		if q.forward {
			return cmp.Compare(x.Pos, y.Pos)
		}
		return cmp.Compare(y.Pos, x.Pos)
	})
	if len(merged) > q.limit {
		merged = merged[:q.limit]
		res.end, res.hasEnd = merged[len(merged)-1].Pos, true
		if q.forward {
			res.end++
		}
	}
	res.events = merged
}
