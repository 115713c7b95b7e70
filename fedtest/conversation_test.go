package fedtest

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ganglion/ganglion/internal/proctest"
)

// federatedRoom has alice (on A) create a public room with shared history,
// send prelude messages, and invite bob (on B), who sees the invite in
// /sync and joins through A. It returns once A shows bob as joined.
func federatedRoom(ctx context.Context, t *testing.T, alice, bob *user, prelude int) (string, []*sent) {
	t.Helper()
	room, err := alice.createRoom(ctx, "fedtest "+t.Name())
	if err != nil {
		t.Fatalf("alice creates a room on A: %v", err)
	}
	pre := sendSeries(ctx, alice, room, "prelude", prelude, 0, 20*time.Second, nil)
	for _, s := range pre {
		if s.err != nil {
			t.Fatalf("alice's prelude message %d: %v", s.idx, s.err)
		}
	}
	if err := alice.invite(ctx, room, bob.id); err != nil {
		t.Fatalf("alice on A invites %s: %v", bob.id, err)
	}
	bobSync := &syncer{u: bob}
	err = bobSync.until(ctx, 30*time.Second, "the invite to "+room, func(r *proctest.SyncResponse) bool {
		_, ok := r.Rooms.Invite[room]
		return ok
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := bob.join(ctx, room, alice.hs.name); err != nil {
		t.Fatalf("bob on B joins %s via %s: %v", room, alice.hs.name, err)
	}
	if err := waitMember(ctx, alice, room, bob.id, "join", 30*time.Second); err != nil {
		t.Fatal(err)
	}
	return room, pre
}

// waitMember polls viewer's /state until target's membership is want.
func waitMember(ctx context.Context, viewer *user, room, target, want string, timeout time.Duration) error {
	var last string
	ok := proctest.Poll(timeout, 100*time.Millisecond, func() bool {
		events, err := viewer.state(ctx, room)
		if err != nil {
			last = err.Error()
			return false
		}
		for _, e := range events {
			if e.Type == "m.room.member" && e.StateKey != nil && *e.StateKey == target {
				last = fmt.Sprint("membership ", e.Content["membership"])
				return e.Content["membership"] == want
			}
		}
		last = "no member event"
		return false
	})
	if !ok {
		return fmt.Errorf("%s: %s's /state never showed %s as %q within %v (last: %s)",
			viewer.hs.label, viewer.id, target, want, timeout, last)
	}
	return nil
}

// sent is one logical message: every attempt reuses its txnId.
type sent struct {
	sender  *user
	series  string
	idx     int
	txn     string
	body    string
	eventID string
	err     error
}

// sendSeries sends n messages from u, one after another, pace apart,
// retrying each with its txnId for up to giveUp. acked counts the
// acknowledged ones as they come.
func sendSeries(ctx context.Context, u *user, room, series string, n int, pace, giveUp time.Duration, acked *atomic.Int64) []*sent {
	out := make([]*sent, n)
	for i := range out {
		s := &sent{sender: u, series: series, idx: i, txn: fmt.Sprintf("%s-%d", series, i)}
		s.body = fmt.Sprintf("%s %s %d", series, u.id, i)
		s.eventID, s.err = u.send(ctx, room, s.txn, s.body, giveUp)
		out[i] = s
		if s.err == nil && acked != nil {
			acked.Add(1)
		}
		if pace > 0 {
			time.Sleep(pace)
		}
	}
	return out
}

// exchange runs each user's series at the same time: the two sides
// interleave as a real conversation does.
func exchange(ctx context.Context, room string, users []*user, series []string, n int, pace, giveUp time.Duration, acked *atomic.Int64) []*sent {
	results := make([][]*sent, len(users))
	var wg sync.WaitGroup
	for i, u := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = sendSeries(ctx, u, room, series[i], n, pace, giveUp, acked)
		}()
	}
	wg.Wait()
	var all []*sent
	for _, r := range results {
		all = append(all, r...)
	}
	return all
}

// sendFailures lists the sends that were never acknowledged.
func sendFailures(all []*sent) []string {
	var out []string
	for _, s := range all {
		if s.err != nil {
			out = append(out, fmt.Sprintf("%s txn %s: %v", s.sender.id, s.txn, s.err))
		}
	}
	return out
}

// historyProblems checks that every expected message is in h exactly once,
// with the event ID its send was acknowledged with (when known), and that
// each sender's messages of a series come in the order they were sent.
func historyProblems(h *roomHistory, expected []*sent) ([]string, []*sent) {
	want := map[string]*sent{}
	series := map[string]bool{}
	for _, s := range expected {
		want[s.body] = s
		series[s.series] = true
	}
	seen := map[string]int{}
	lastIdx := map[string]int{} // sender+series -> last index seen
	var problems []string
	for _, e := range h.events {
		body := e.Body()
		s, ok := want[body]
		if !ok {
			if prefix, _, _ := strings.Cut(body, " "); series[prefix] {
				problems = append(problems, fmt.Sprintf("unexpected message %q (%s)", body, e.EventID))
			}
			continue
		}
		seen[body]++
		if seen[body] > 1 {
			problems = append(problems, fmt.Sprintf("%q appears %d times (%s)", body, seen[body], e.EventID))
			continue
		}
		if s.eventID != "" && e.EventID != s.eventID {
			problems = append(problems, fmt.Sprintf("%q has event ID %s, acknowledged as %s", body, e.EventID, s.eventID))
		}
		if e.Sender != s.sender.id {
			problems = append(problems, fmt.Sprintf("%q has sender %s", body, e.Sender))
		}
		key := s.sender.id + " " + s.series
		if last, ok := lastIdx[key]; ok && s.idx < last {
			problems = append(problems, fmt.Sprintf("%s's message %d comes after its message %d", s.sender.id, s.idx, last))
		}
		lastIdx[key] = s.idx
	}
	var missing []*sent
	var bodies []string
	for _, s := range expected {
		if seen[s.body] == 0 {
			missing = append(missing, s)
			bodies = append(bodies, s.body)
		}
	}
	if len(missing) > 0 {
		sort.Strings(bodies)
		problems = append(problems, fmt.Sprintf("%d of %d messages missing, e.g. %q", len(missing), len(expected), bodies[:min(5, len(bodies))]))
	}
	return problems, missing
}

// waitHistory polls u's full history until it holds exactly the expected
// messages or the deadline passes (but at least 3 s: checks after a failed
// one need not wait long again), and returns the last history and problems,
// with what the server says about a few of the missing events.
func waitHistory(ctx context.Context, u *user, room string, expected []*sent, deadline time.Time) (*roomHistory, []string) {
	var h *roomHistory
	var problems []string
	var missing []*sent
	proctest.Poll(max(time.Until(deadline), 3*time.Second), 500*time.Millisecond, func() bool {
		var err error
		h, err = u.fullHistory(ctx, room, "", 40)
		if err != nil {
			problems = []string{err.Error()}
			return false
		}
		problems, missing = historyProblems(h, expected)
		return len(problems) == 0
	})
	return h, append(problems, explainMissing(ctx, u, room, expected, missing, 3)...)
}

// lateFilter opts in to Ganglion's late messages (federated messages that
// arrived after deeper ones), which no ordinary client asks for.
const lateFilter = `{"org.ganglion.late_events":true}`

// explainMissing asks u's server for up to n missing events by the ID
// their sender's server acknowledged (GET /rooms/{roomId}/event/{eventId}),
// and counts how many of them /messages shows only with lateFilter.
func explainMissing(ctx context.Context, u *user, room string, expected, missing []*sent, n int) []string {
	if len(missing) == 0 {
		return nil
	}
	var out []string
	if h, err := u.fullHistory(ctx, room, lateFilter, 40); err == nil {
		found := 0
		for _, e := range h.events {
			for _, s := range missing {
				if e.EventID == s.eventID && s.eventID != "" {
					found++
				}
			}
		}
		verdict := "every message exactly once, in each sender's order"
		if problems, _ := historyProblems(h, expected); len(problems) > 0 {
			verdict = strings.Join(problems, "; ")
		}
		out = append(out, fmt.Sprintf("%d of the %d missing are in /messages with filter %s (late messages); with it: %s",
			found, len(missing), lateFilter, verdict))
	}
	for _, s := range missing[:min(n, len(missing))] {
		if s.eventID == "" {
			continue
		}
		var ev proctest.ClientEvent
		err := u.do(ctx, http.MethodGet, roomPath(room)+"/event/"+url.PathEscape(s.eventID), nil, &ev)
		if err != nil {
			out = append(out, fmt.Sprintf("missing %q (%s): %v", s.body, s.eventID, err))
		} else {
			out = append(out, fmt.Sprintf("missing %q (%s): GET /event finds it (%s), /messages does not", s.body, s.eventID, ev.Type))
		}
	}
	return out
}

// reportProblems fails the test with at most 10 of problems.
func reportProblems(t *testing.T, what string, problems []string) {
	t.Helper()
	if len(problems) == 0 {
		return
	}
	shown := problems[:min(10, len(problems))]
	t.Errorf("%s: %d problem(s):\n  %s", what, len(problems), strings.Join(shown, "\n  "))
}
