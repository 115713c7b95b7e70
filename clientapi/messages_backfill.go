package clientapi

import (
	"context"
	"errors"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tidwall/gjson"

	"github.com/ganglion/ganglion/fsm"
)

// History older than a room's stored timeline. A room joined over
// federation starts here with the join; what came before is fetched from
// other servers (backfill) into the room's backfill stream, where the k-th
// event has the virtual position -k (older as k grows). /messages walks the
// timeline, then that stream, then asks the Backfiller for more, and omits
// `end` only when the room's m.room.create is reached or no server has more.

// Backfiller fetches older history of a room over federation and stores it
// in the room's backfill stream; more reports whether it stored anything.
// The federation package's API implements it.
type Backfiller interface {
	Backfill(ctx context.Context, roomID string, limit int) (more bool, err error)
}

const (
	// backfillRounds bounds the Backfiller calls of one /messages request.
	backfillRounds = 2
	// backfillMin and backfillMax bound the events asked for per call.
	backfillMin, backfillMax = 20, 100
	backfillTimeout          = 30 * time.Second
	// backfillCooldown: after a failure, a room is not backfilled again for
	// this long, so a client paging at the wall does not hammer servers.
	backfillCooldown = 30 * time.Second
)

var errBackfillCooling = errors.New("backfill failed recently")

// backfillHook is the Backfiller of one API and its recent failures.
type backfillHook struct {
	b      Backfiller
	mu     sync.Mutex
	failed map[string]time.Time // room -> last failure
}

// SetBackfiller installs the federation backfill used when /messages runs
// out of stored history (nil removes it). Call it before serving.
func (a *API) SetBackfiller(b Backfiller) {
	if b == nil {
		a.backfill = nil
		return
	}
	a.backfill = &backfillHook{b: b, failed: map[string]time.Time{}}
}

// backfillHistory asks the Backfiller for about n more events of the room:
// more false with no error means no server has older history.
func (a *API) backfillHistory(ctx context.Context, roomID string, n int) (bool, error) {
	h := a.backfill
	if h == nil {
		return false, nil
	}
	h.mu.Lock()
	cooling := time.Since(h.failed[roomID]) < backfillCooldown
	h.mu.Unlock()
	if cooling {
		return false, errBackfillCooling
	}
	bctx, cancel := context.WithTimeout(ctx, backfillTimeout)
	defer cancel()
	more, err := h.b.Backfill(bctx, roomID, min(max(n, backfillMin), backfillMax))
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case err == nil:
		delete(h.failed, roomID)
	case ctx.Err() == nil: // a client that went away is no failure
		a.log.Debug("backfill failed", "room_id", roomID, "error", err)
		h.failed[roomID] = time.Now()
	}
	return more, err
}

// parseHistoryToken is parsePageToken that also reads "b<k>", the
// boundary -k in the backfill stream.
func parseHistoryToken(s string) (int64, bool) {
	if rest, ok := strings.CutPrefix(s, "b"); ok {
		k, err := strconv.ParseInt(rest, 10, 64)
		return -k, err == nil && k >= 0
	}
	return parsePageToken(s)
}

// messagesQuery is one parsed /messages request.
type messagesQuery struct {
	roomID         string
	viewer         *Caller
	forward        bool
	limit          int
	filter         *roomEventFilter
	from, to       int64
	hasFrom, hasTo bool
}

// messagesResult is a /messages page before formatting.
type messagesResult struct {
	events []*fsm.EventRecord
	from   int64 // the start boundary: 'from' or its default
	end    int64
	hasEnd bool
}

// messagesPage scans the history, backfilling (a bounded number of times)
// when a backward scan runs out of it before the room's creation.
func (a *API) messagesPage(ctx context.Context, q *messagesQuery) (*messagesResult, *fsm.Error) {
	res := &messagesResult{from: q.from}
	var stop func(int64) bool
	switch {
	case q.hasTo && q.forward:
		stop = func(pos int64) bool { return pos >= q.to }
	case q.hasTo:
		stop = func(pos int64) bool { return pos < q.to }
	}
	resume := q.from
	for round := 0; ; round++ {
		var pg *page
		var ferr *fsm.Error
		_ = a.store.View(func(rt *fsm.ReadTx) error {
			rr, e := timelineAccess(rt, q.roomID, q.viewer.UserID)
			if e != nil {
				ferr = e
				return nil
			}
			if round == 0 && !q.hasFrom {
				res.from = rr.room.LastPos + 1
				if q.forward {
					res.from = -rr.room.BackfillSeq // the oldest event held
				}
				resume = res.from
			}
			pg = rr.scan(resume, q.forward, q.limit-len(res.events), q.filter.allowsEvent, stop)
			return nil
		})
		if ferr != nil {
			return nil, ferr
		}
		res.events = append(res.events, pg.events...)
		if pg.examined > 0 {
			resume = pg.lastPos
			if q.forward {
				resume++
			}
		}
		switch {
		case pg.more:
			res.end, res.hasEnd = resume, true
			return res, nil
		case !pg.needHistory:
			return res, nil // the room's start or end, or 'to'
		case len(res.events) >= q.limit || round >= backfillRounds:
			res.end, res.hasEnd = resume, true
			return res, nil
		}
		more, err := a.backfillHistory(ctx, q.roomID, q.limit-len(res.events))
		if err != nil {
			// More may exist; the client may ask again later.
			res.end, res.hasEnd = resume, true
			return res, nil
		}
		if !more {
			return res, nil
		}
	}
}

// historyStart is what a roomReader knows of the start of the stored
// timeline, each part loaded on first use.
type historyStart struct {
	first       *fsm.EventRecord     // the oldest timeline event
	state       map[[2]string]string // the state before it
	hv          string               // history_visibility in that state
	stateLoaded bool
}

func (rr *roomReader) historyStart() *historyStart {
	if rr.start == nil {
		rr.start = &historyStart{}
		rr.rt.RoomEvents(rr.room.RoomID, -1, true, 1, func(e *fsm.EventRecord) bool {
			rr.start.first = e
			return false
		})
	}
	return rr.start
}

// earlyState stands in for the state at a backfilled event: the state
// before the oldest timeline event.
func (rr *roomReader) earlyState() map[[2]string]string {
	hs := rr.historyStart()
	if hs.stateLoaded {
		return hs.state
	}
	hs.stateLoaded, hs.state, hs.hv = true, map[[2]string]string{}, "shared"
	if hs.first != nil {
		if st, err := rr.rt.StateBeforeEvent(hs.first); err == nil {
			hs.state = st
		}
	}
	if id := hs.state[[2]string{"m.room.history_visibility", ""}]; id != "" {
		if ev, err := rr.rt.Event(id); err == nil {
			if v := gjson.GetBytes(ev.PDU, "content.history_visibility").Str; v != "" {
				hs.hv = v
			}
		}
	}
	return hs.state
}

func isCreateEvent(e *fsm.EventRecord) bool {
	return e.Type == "m.room.create" && e.StateKey != nil && *e.StateKey == ""
}

// startsAtCreate reports a timeline that holds the room's whole history.
func (rr *roomReader) startsAtCreate() bool {
	first := rr.historyStart().first
	return first == nil || isCreateEvent(first)
}

// backfillComplete reports a backfill stream that reached the room's
// creation (its oldest event is the create event, or has no parents).
func (rr *roomReader) backfillComplete() bool {
	n := rr.room.BackfillSeq
	if n == 0 {
		return false
	}
	done := false
	rr.rt.BackfilledEvents(rr.room.RoomID, n-1, 1, func(e *fsm.EventRecord) bool {
		done = isCreateEvent(e) || len(gjson.GetBytes(e.PDU, "prev_events").Array()) == 0
		return false
	})
	return done
}

// stateAt is the state as of a position, the early state for backfill.
func (rr *roomReader) stateAt(pos int64) map[[2]string]string {
	if pos < 0 {
		return rr.earlyState()
	}
	return rr.rt.StateAt(rr.room.RoomID, pos)
}

// canSee is history visibility for any event the reader serves.
func (rr *roomReader) canSee(rec *fsm.EventRecord) bool {
	if rec.Pos >= 0 {
		return rr.view.canSee(rec)
	}
	return rr.canSeeBackfilled(rec)
}

// canSeeBackfilled applies history visibility to backfilled history. No
// local user was joined then (the server was not in the room), so the
// membership at it is "leave"; the history_visibility is the one in force
// when the stored timeline starts (the state at each backfilled event is
// not known here), and, for such an event itself, its own value.
func (rr *roomReader) canSeeBackfilled(rec *fsm.EventRecord) bool {
	if rec.Type == "m.room.member" && rec.StateKey != nil && *rec.StateKey == rr.view.user {
		return true
	}
	rr.earlyState()
	hvs := []string{rr.historyStart().hv}
	if rec.Type == "m.room.history_visibility" && rec.StateKey != nil && *rec.StateKey == "" {
		hvs = append(hvs, gjson.GetBytes(rec.PDU, "content.history_visibility").Str)
	}
	for _, hv := range hvs {
		switch {
		case hv == "world_readable":
			return true
		case hv != "invited" && hv != "joined" && rr.view.joinedFrom(math.MinInt64):
			return true // "shared": the viewer joined later
		}
	}
	return false
}

// backfilledOlder visits backfilled events with sequence > after, newest
// first.
func (rr *roomReader) backfilledOlder(after int64, visit func(*fsm.EventRecord) bool) {
	rr.rt.BackfilledEvents(rr.room.RoomID, after, 0, visit)
}

// backfilledNewer visits backfilled events with sequence <= upto, oldest
// first, reading the stream (which runs older) in windows.
func (rr *roomReader) backfilledNewer(upto int64, visit func(*fsm.EventRecord) bool) {
	const window = 128
	for hi := min(upto, rr.room.BackfillSeq); hi > 0; {
		lo := max(hi-window, 0)
		var recs []*fsm.EventRecord
		rr.rt.BackfilledEvents(rr.room.RoomID, lo, int(hi-lo), func(e *fsm.EventRecord) bool {
			if -e.Pos > hi {
				return false
			}
			recs = append(recs, e)
			return true
		})
		for i := len(recs) - 1; i >= 0; i-- {
			if !visit(recs[i]) {
				return
			}
		}
		hi = lo
	}
}
