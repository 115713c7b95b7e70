package fedtest

import (
	"context"
	"testing"
	"time"

	"github.com/ganglion/ganglion/internal/proctest"
)

// TestTwoServersExchange: two single-node homeservers A and B.
//
// alice (A) creates a public room, sends 20 prelude messages, and invites
// bob (B); bob sees the invite in /sync and joins via A. alice and bob then
// send 250 messages each at the same time (txnIds, retried after unknown
// outcomes).
//
// Pass: every send is acknowledged; A's and B's /messages histories each
// hold all 520 messages exactly once, with the acknowledged event IDs and
// each sender's messages in sending order; typing on A shows in bob's /sync
// on B and typing on B in alice's on A; a read receipt crosses each way;
// carol (B) joins late and pages /messages backwards to the room's
// m.room.create (history B never had: backfill) seeing all 520 messages.
func TestTwoServersExchange(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	a, b := newHomeserver(t, "A", 1), newHomeserver(t, "B", 1)
	a.start()
	b.start()
	alice := mustRegister(ctx, t, a, "alice")
	bob := mustRegister(ctx, t, b, "bob")
	carol := mustRegister(ctx, t, b, "carol")

	begin := time.Now()
	room, prelude := federatedRoom(ctx, t, alice, bob, 20)
	t.Logf("room %s created on A, bob joined from B in %v", room, time.Since(begin).Round(time.Millisecond))

	begin = time.Now()
	const perSide = 250
	msgs := exchange(ctx, room, []*user{alice, bob}, []string{"exA", "exB"}, perSide, 0, 30*time.Second, nil)
	t.Logf("%d messages sent in %v", len(msgs), time.Since(begin).Round(time.Millisecond))
	reportProblems(t, "sends", sendFailures(msgs))
	expected := append(append([]*sent{}, prelude...), msgs...)

	begin = time.Now()
	converge := begin.Add(40 * time.Second)
	for _, u := range []*user{alice, bob} {
		h, problems := waitHistory(ctx, u, room, expected, converge)
		reportProblems(t, u.hs.label+"'s /messages history (as "+u.id+")", problems)
		if h != nil {
			t.Logf("%s: %d events in %d page(s), reached m.room.create: %v (after %v)", u.hs.label,
				len(h.events), h.pages, h.reachedCreate, time.Since(begin).Round(time.Millisecond))
		}
	}

	checkTyping(ctx, t, room, alice, bob)
	checkTyping(ctx, t, room, bob, alice)
	checkReceipt(ctx, t, room, alice, bob, msgs[len(msgs)-1].eventID)
	checkReceipt(ctx, t, room, bob, alice, msgs[0].eventID)

	// carol joins on B, which is already in the room, so the join is local;
	// history before bob's join was never sent to B.
	begin = time.Now()
	if err := carol.join(ctx, room, a.name); err != nil {
		t.Fatalf("carol on B joins %s: %v", room, err)
	}
	h, err := carol.fullHistory(ctx, room, "", 40)
	if err != nil {
		t.Fatalf("carol pages back on B: %v", err)
	}
	t.Logf("carol: %d events in %d page(s) in %v, reached m.room.create: %v",
		len(h.events), h.pages, time.Since(begin).Round(time.Millisecond), h.reachedCreate)
	if !h.reachedCreate {
		oldest := "none"
		if len(h.events) > 0 {
			oldest = h.events[0].Type + " " + h.events[0].EventID
		}
		t.Errorf("carol's /messages dir=b on B stopped before m.room.create (oldest event: %s): no backfill", oldest)
	}
	problems, missing := historyProblems(h, expected)
	reportProblems(t, "carol's history on B", append(problems, explainMissing(ctx, carol, room, expected, missing, 3)...))
}

func mustRegister(ctx context.Context, t *testing.T, hs *homeserver, localpart string) *user {
	t.Helper()
	u, err := register(ctx, hs, localpart)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// checkTyping: from types on its server; to sees it in /sync on the other.
func checkTyping(ctx context.Context, t *testing.T, room string, from, to *user) {
	t.Helper()
	s := &syncer{u: to}
	if _, err := s.next(ctx, 0); err != nil {
		t.Errorf("%s's first /sync: %v", to.id, err)
		return
	}
	if err := from.typing(ctx, room, true); err != nil {
		t.Errorf("%s types on %s: %v", from.id, from.hs.label, err)
		return
	}
	begin := time.Now()
	err := s.until(ctx, 15*time.Second, from.id+" typing", func(r *proctest.SyncResponse) bool {
		return typingIncludes(r, room, from.id)
	})
	if err != nil {
		t.Error(err)
	} else {
		t.Logf("typing %s -> %s seen in %v", from.hs.label, to.hs.label, time.Since(begin).Round(time.Millisecond))
	}
	if err := from.typing(ctx, room, false); err != nil {
		t.Errorf("%s stops typing: %v", from.id, err)
	}
}

// checkReceipt: from marks eventID read; to sees the receipt in /sync.
func checkReceipt(ctx context.Context, t *testing.T, room string, from, to *user, eventID string) {
	t.Helper()
	if eventID == "" {
		t.Errorf("no event for %s's receipt", from.id)
		return
	}
	s := &syncer{u: to}
	if _, err := s.next(ctx, 0); err != nil {
		t.Errorf("%s's first /sync: %v", to.id, err)
		return
	}
	if err := from.receipt(ctx, room, eventID); err != nil {
		t.Errorf("%s posts a read receipt on %s: %v", from.id, from.hs.label, err)
		return
	}
	begin := time.Now()
	err := s.until(ctx, 15*time.Second, from.id+"'s receipt on "+eventID, func(r *proctest.SyncResponse) bool {
		return receiptIncludes(r, room, eventID, from.id)
	})
	if err != nil {
		t.Error(err)
	} else {
		t.Logf("receipt %s -> %s seen in %v", from.hs.label, to.hs.label, time.Since(begin).Round(time.Millisecond))
	}
}
