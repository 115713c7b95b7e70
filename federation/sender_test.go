package federation

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ganglion/ganglion/fsm"
)

var errDown = errors.New("connection refused")

// delivered walks the successful puts to dest (each transaction ID once)
// and returns the event IDs of their PDUs and their EDUs, in order.
func delivered(t *testing.T, f *fakeRemote, dest string, pdus map[string]string) (events []string, edus []string) {
	t.Helper()
	seen := map[string]bool{}
	for _, c := range f.callsTo(dest) {
		b := parseTxn(t, c.body)
		if !c.ok || seen[c.txnID] {
			continue
		}
		seen[c.txnID] = true
		for _, p := range b.PDUs {
			id, ok := pdus[string(p)]
			if !ok {
				t.Fatalf("transaction %s carries an unknown or altered PDU: %s", c.txnID, p)
			}
			events = append(events, id)
		}
		for _, e := range b.EDUs {
			edus = append(edus, string(e))
		}
	}
	return events, edus
}

func TestSenderBacksOffThenDeliversEveryPDUOnce(t *testing.T) {
	node, rs := senderNode(t)
	ids := roomWithMessages(t, rs, 120)
	const dest = "down.example"
	var edus []json.RawMessage
	var wantEDUs []string
	for i := range 150 {
		e := fmt.Sprintf(`{"content":{"n":%d},"edu_type":"m.test"}`, i)
		edus, wantEDUs = append(edus, json.RawMessage(e)), append(wantEDUs, e)
	}
	enqueue(t, node, fsm.FedEnqueueCmd{Destinations: []string{dest}, EventIDs: ids[:60]})
	enqueue(t, node, fsm.FedEnqueueCmd{Destinations: []string{dest}, EDUs: edus})
	enqueue(t, node, fsm.FedEnqueueCmd{Destinations: []string{dest}, EventIDs: ids[60:]})

	remote := &fakeRemote{fail: func(_ string, n int) error {
		if n < 3 {
			return errDown
		}
		return nil
	}}
	newTestSender(t, node, remote)
	waitFor(t, "the queue to drain", func() bool { return drained(node, dest) })

	calls := remote.callsTo(dest)
	if len(calls) < 4 {
		t.Fatalf("%d puts", len(calls))
	}
	// The failed transaction is retried as it was, after growing delays.
	for i := 1; i <= 3; i++ {
		if calls[i].txnID != calls[0].txnID || !bytes.Equal(calls[i].body, calls[0].body) {
			t.Fatalf("retry %d changed the transaction: %s vs %s", i, calls[i].txnID, calls[0].txnID)
		}
	}
	if gap1, gap2 := calls[1].at.Sub(calls[0].at), calls[2].at.Sub(calls[1].at); gap1 < 15*time.Millisecond || gap2 < 30*time.Millisecond {
		t.Fatalf("retries after %v and %v: no backoff", gap1, gap2)
	}
	gotEvents, gotEDUs := delivered(t, remote, dest, storedPDUs(t, node, ids))
	if !slices.Equal(gotEvents, ids) {
		t.Fatalf("delivered %d events (in order, once each: %v), want %d", len(gotEvents), slices.Equal(slices.Compact(slices.Clone(gotEvents)), gotEvents), len(ids))
	}
	if !slices.Equal(gotEDUs, wantEDUs) {
		t.Fatalf("delivered %d EDUs, want the %d queued, once each, in order", len(gotEDUs), len(wantEDUs))
	}
	_ = node.Store().View(func(r *fsm.ReadTx) error {
		if st := r.FedDest(dest); st != nil {
			t.Fatalf("backoff left after success: %+v", st)
		}
		return nil
	})
}

func TestSenderResumesTheSameTxnAfterLeaderChange(t *testing.T) {
	node, rs := senderNode(t)
	ids := roomWithMessages(t, rs, 70)
	const dest = "far.example"
	enqueue(t, node, fsm.FedEnqueueCmd{Destinations: []string{dest}, EventIDs: ids})

	down := &fakeRemote{fail: func(string, int) error { return errDown }}
	first := NewSender(node, senderOrigin, down, senderLog())
	first.MinBackoff, first.MaxBackoff = 20*time.Millisecond, 100*time.Millisecond
	first.Start(t.Context())
	waitFor(t, "a first attempt", func() bool { return len(down.callsTo(dest)) > 0 })
	first.Stop() // the old leader dies with the transaction in flight
	sent := down.callsTo(dest)[0]

	var inflight *fsm.InFlightTxn
	_ = node.Store().View(func(r *fsm.ReadTx) error { inflight = r.InFlightTxn(dest); return nil })
	if inflight == nil || inflight.TxnID != sent.txnID || inflight.PDUs != fsm.FedMaxTxnPDUs {
		t.Fatalf("in flight %+v, sent %s", inflight, sent.txnID)
	}

	up := &fakeRemote{}
	newTestSender(t, node, up)
	waitFor(t, "the queue to drain", func() bool { return drained(node, dest) })
	resent := up.callsTo(dest)[0]
	if resent.txnID != sent.txnID || !bytes.Equal(resent.body, sent.body) {
		t.Fatalf("the new sender put %s (%d bytes), want %s again with the same %d bytes", resent.txnID, len(resent.body), sent.txnID, len(sent.body))
	}
	gotEvents, _ := delivered(t, up, dest, storedPDUs(t, node, ids))
	if !slices.Equal(gotEvents, ids) {
		t.Fatalf("delivered %d events, want %d once each in order", len(gotEvents), len(ids))
	}
}

func TestSenderCatchUpSendsTheNewestOfEachRoom(t *testing.T) {
	node, rs := senderNode(t)
	roomA, roomB := roomWithMessages(t, rs, 40), roomWithMessages(t, rs, 40)
	const dest = "back.example"
	enqueue(t, node, fsm.FedEnqueueCmd{Destinations: []string{dest}, EventIDs: append(slices.Clone(roomA), roomB...)})

	remote := &fakeRemote{fail: func(_ string, n int) error {
		if n == 0 {
			return errDown
		}
		return nil
	}}
	s := NewSender(node, senderOrigin, remote, senderLog())
	s.MinBackoff, s.CatchUpThreshold, s.CatchUpKeepPerRoom = 20*time.Millisecond, 10, 1
	s.Start(t.Context())
	t.Cleanup(s.Stop)
	waitFor(t, "the queue to drain", func() bool { return drained(node, dest) })

	gotEvents, _ := delivered(t, remote, dest, storedPDUs(t, node, append(slices.Clone(roomA), roomB...)))
	// The transaction in flight during the outage goes as it was (50
	// PDUs); of the 30 rows left, only room B's newest event.
	want := append(append(slices.Clone(roomA), roomB[:10]...), roomB[39])
	if !slices.Equal(gotEvents, want) {
		t.Fatalf("delivered %d events ending %v, want %d ending %v", len(gotEvents), gotEvents[len(gotEvents)-1:], len(want), want[len(want)-1:])
	}
}

func TestSenderEphemeralEDUsRideAlong(t *testing.T) {
	node, rs := senderNode(t)
	ids := roomWithMessages(t, rs, 2)
	const alone, mixed = "eph.example", "mix.example"
	release := make(chan struct{})
	remote := &fakeRemote{block: func(dest string, n int) <-chan struct{} {
		if dest == mixed && n == 0 {
			return release
		}
		return nil
	}}
	s := newTestSender(t, node, remote)
	waitFor(t, "leadership", func() bool { s.mu.Lock(); defer s.mu.Unlock(); return s.leading })

	typing := json.RawMessage(`{"content":{"room_id":"!r:origin.test","typing":true,"user_id":"@alice:origin.test"},"edu_type":"m.typing"}`)
	s.QueueEphemeralEDU(alone, typing)
	waitFor(t, "an ephemeral transaction", func() bool { return len(remote.callsTo(alone)) == 1 })
	if b := parseTxn(t, remote.callsTo(alone)[0].body); len(b.PDUs) != 0 || len(b.EDUs) != 1 || string(b.EDUs[0]) != string(typing) {
		t.Fatalf("ephemeral transaction %s", remote.callsTo(alone)[0].body)
	}

	// While the first transaction to mixed is in flight, a typing EDU and
	// a second event queue up: they go together next.
	enqueue(t, node, fsm.FedEnqueueCmd{Destinations: []string{mixed}, EventIDs: ids[:1]})
	waitFor(t, "the first transaction", func() bool { return len(remote.callsTo(mixed)) == 1 })
	s.QueueEphemeralEDU(mixed, typing)
	enqueue(t, node, fsm.FedEnqueueCmd{Destinations: []string{mixed}, EventIDs: ids[1:]})
	close(release)
	waitFor(t, "the queue to drain", func() bool { return drained(node, mixed) })
	calls := remote.callsTo(mixed)
	if len(calls) != 2 {
		t.Fatalf("%d puts to %s", len(calls), mixed)
	}
	if b := parseTxn(t, calls[1].body); len(b.PDUs) != 1 || len(b.EDUs) != 1 || string(b.EDUs[0]) != string(typing) {
		t.Fatalf("second transaction %s", calls[1].body)
	}
	var dests []string
	_ = node.Store().View(func(r *fsm.ReadTx) error { dests = r.OutboxDestinations(); return nil })
	if slices.Contains(dests, alone) {
		t.Fatal("an ephemeral EDU reached the FSM")
	}
}
