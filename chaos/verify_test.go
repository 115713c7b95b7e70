package chaos

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ganglion/ganglion/internal/proctest"
)

// landed is where a test message ended up in the agreed timeline.
type landed struct {
	pos     int
	eventID string
}

// verify is the end-of-test check every scenario shares: the nodes
// converge; every room's timeline and state are identical on all of them;
// no message appears twice; every acknowledged send is there with the event
// ID it was acknowledged with; and porcupine accepts the history.
func (w *workload) verify() {
	t := w.t
	t.Helper()
	idx := w.c.waitConverged(60 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	reader := w.sessions[0].u
	final := map[string]map[string]landed{} // room -> body -> where
	order := map[string][]string{}          // room -> bodies in timeline order
	for _, room := range w.rooms {
		var ref []proctest.ClientEvent
		var refState []string
		for i, p := range w.c.nodes {
			tl, err := fullTimeline(ctx, p.URL, reader, room)
			if err != nil {
				t.Fatalf("timeline of %s on %s: %v", room, p.ID, err)
			}
			st, err := roomState(ctx, p.URL, reader, room)
			if err != nil {
				t.Fatalf("state of %s on %s: %v", room, p.ID, err)
			}
			slices.Sort(st)
			if i == 0 {
				ref, refState = tl, st
				continue
			}
			if d := firstDifference(eventIDs(ref), eventIDs(tl)); d != "" {
				t.Errorf("timeline of %s differs between %s and %s: %s", room, w.c.nodes[0].ID, p.ID, d)
			}
			if d := firstDifference(refState, st); d != "" {
				t.Errorf("state of %s differs between %s and %s: %s", room, w.c.nodes[0].ID, p.ID, d)
			}
		}
		final[room], order[room] = w.landedBodies(room, ref)
	}
	w.checkSends(final)
	w.checkReads(order)
	w.mu.Lock()
	for _, v := range w.violations {
		t.Error(v)
	}
	w.mu.Unlock()
	w.hist.check(t)
	if n := w.c.net.UnknownSources(); n > 0 {
		t.Errorf("%d node-to-node connections came from no node's IP: a cut would not stop them", n)
	}
	t.Logf("converged at index %d; %d sends (%d acknowledged, %d attempts)", idx, len(w.sends), w.acked.Load(), w.attempts.Load())
}

// landedBodies indexes the room's test messages, in timeline order, and
// reports duplicates.
func (w *workload) landedBodies(room string, timeline []proctest.ClientEvent) (map[string]landed, []string) {
	out := map[string]landed{}
	var order []string
	pos := 0
	for _, e := range timeline {
		b := e.Body()
		if e.Type != "m.room.message" || !strings.HasPrefix(b, w.prefix) {
			continue
		}
		if prev, dup := out[b]; dup {
			w.t.Errorf("%q is in %s twice: %s and %s", b, room, prev.eventID, e.EventID)
			continue
		}
		out[b] = landed{pos: pos, eventID: e.EventID}
		order = append(order, b)
		pos++
	}
	return out, order
}

// checkReads reports, plainly, reads whose view is not a prefix of the
// final timeline (an event out of order, or one that was later lost):
// porcupine rejects those too, but says less.
func (w *workload) checkReads(order map[string][]string) {
	w.hist.mu.Lock()
	defer w.hist.mu.Unlock()
	reported := 0
	for _, op := range w.hist.ops {
		in, out := op.Input.(logInput), op.Output.(logOutput)
		if !in.Read || reported >= 5 {
			continue
		}
		final := order[in.Room]
		n := min(len(out.View), len(final))
		if d := firstDifference(out.View, final[:n]); d != "" || len(out.View) > len(final) {
			w.t.Errorf("a sync by %s on %s saw a view of %s that is not a prefix of the final timeline: %s (%d events seen, %d final)",
				w.sessions[in.Client].u.id, w.c.nodes[in.Node].ID, in.Room, d, len(out.View), len(final))
			reported++
		}
	}
}

// checkSends matches every send against the final timeline and adds it to
// the porcupine history.
func (w *workload) checkSends(final map[string]map[string]landed) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var unknownLanded, unknownLost int
	for _, op := range w.sends {
		where, ok := final[op.room][op.body]
		acked := op.eventID != ""
		switch {
		case op.refused != nil:
			w.t.Errorf("send %s of %s was refused: %v", op.txn, w.sessions[op.client].u.id, op.refused)
		case acked && !ok:
			w.t.Errorf("acknowledged send %s of %s (%s, via %s) is missing", op.txn, w.sessions[op.client].u.id,
				op.eventID, w.c.nodes[op.ackNode].ID)
		case acked && where.eventID != op.eventID:
			w.t.Errorf("send %s of %s was acknowledged as %s but the timeline has %s",
				op.txn, w.sessions[op.client].u.id, op.eventID, where.eventID)
		case !acked && ok:
			unknownLanded++
		case !acked:
			unknownLost++
		}
		out := logOutput{Acked: acked, Pos: -1}
		if ok {
			out.Pos = where.pos
		}
		in := logInput{Room: op.room, Client: op.client, Body: op.body}
		w.hist.add(op.client, in, out, op.call, op.ret)
	}
	if unknownLanded+unknownLost > 0 {
		w.t.Logf("%d sends never acknowledged: %d landed once, %d not at all", unknownLanded+unknownLost, unknownLanded, unknownLost)
	}
}

// unacknowledged lists the sends that gave up without an answer.
func (w *workload) unacknowledged() []*sendOp {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []*sendOp
	for _, op := range w.sends {
		if op.eventID == "" && op.refused == nil {
			out = append(out, op)
		}
	}
	return out
}

func eventIDs(events []proctest.ClientEvent) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = e.EventID
	}
	return out
}

// firstDifference describes where two sequences part, or "" if equal.
func firstDifference(a, b []string) string {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return fmt.Sprintf("item %d: %s vs %s", i, a[i], b[i])
		}
	}
	if len(a) != len(b) {
		return fmt.Sprintf("lengths %d vs %d", len(a), len(b))
	}
	return ""
}
