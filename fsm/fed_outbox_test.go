package fsm

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"testing"
)

// opTestRoomEventsFed is room.events followed by what the lead's hook in
// storeEvent does for local events: queue each stored event for federation.
const opTestRoomEventsFed = "test.room_events_fed"

func init() {
	register(opTestRoomEventsFed, func(w *WriteTx, cmd *Command) (any, error) {
		v, err := applyRoomEvents(w, cmd)
		if err != nil {
			return nil, err
		}
		c, _ := decode[RoomEventsCmd](cmd)
		for _, id := range v.(*RoomEventsResult).EventIDs {
			rec, err := w.Event(id)
			if err != nil {
				return nil, err
			}
			if err := w.EnqueueFederationPDU(c.RoomID, rec); err != nil {
				return nil, err
			}
			if err := w.EnqueueFederationEDU("edu.example", json.RawMessage(`{"edu_type":"m.test","content":{}}`)); err != nil {
				return nil, err
			}
		}
		return v, nil
	})
}

func outboxOf(a *acctFSM, dest string) []OutboxEntry {
	var out []OutboxEntry
	a.view(func(r *ReadTx) { out = r.Outbox(dest, 0, 0) })
	return out
}

func wantFedErr(t *testing.T, err error, status int) {
	t.Helper()
	var fe *Error
	if !errors.As(err, &fe) || fe.Status != status {
		t.Fatalf("err = %v, want a refusal with status %d", err, status)
	}
}

func eduN(i int) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"edu_type":"m.test","content":{"n":%d}}`, i))
}

func TestFedEnqueuePDUGoesToJoinedServersAndTheTarget(t *testing.T) {
	a, d := remoteRoom(t) // dave and eve of remote.example joined
	msg := d.on("m", []string{"eve"}, 0, "m.room.message", nil, wAlice, map[string]any{"body": "hi"}, "create", "pl", "alice")
	a.mustApply(opTestRoomEventsFed, RoomEventsCmd{RoomID: wRoom, Events: raws(msg)})
	invite := d.on("inv", []string{"m"}, 0, "m.room.member", sk("@zed:third.example"), wAlice,
		map[string]any{"membership": "invite"}, "create", "pl", "alice")
	a.mustApply(opTestRoomEventsFed, RoomEventsCmd{RoomID: wRoom, Events: raws(invite)})

	var dests []string
	a.view(func(r *ReadTx) { dests = r.OutboxDestinations() })
	if !slices.Equal(dests, []string{"edu.example", "remote.example", "third.example"}) {
		t.Fatalf("destinations %v", dests)
	}
	rows := outboxOf(a, "remote.example")
	if len(rows) != 2 || rows[0].EventID != d.id("m") || rows[1].EventID != d.id("inv") || rows[0].RoomID != wRoom {
		t.Fatalf("remote.example rows %+v", rows)
	}
	var msgPos int64
	a.view(func(r *ReadTx) { ev, _ := r.Event(d.id("m")); msgPos = ev.Pos })
	if rows[0].Pos != msgPos {
		t.Fatalf("row at %d, want the event's position %d", rows[0].Pos, msgPos)
	}
	if rows := outboxOf(a, "third.example"); len(rows) != 1 || rows[0].EventID != d.id("inv") {
		t.Fatalf("the invitee's server gets only the invite: %+v", rows)
	}
	if rows := outboxOf(a, wServer); len(rows) != 0 {
		t.Fatalf("our own server is queued: %+v", rows)
	}
	if rows := outboxOf(a, "edu.example"); len(rows) != 2 || rows[0].Kind != OutboxEDU || rows[0].Pos <= msgPos {
		t.Fatalf("EDU rows %+v", rows)
	}
}

func TestFedTxnLifecycle(t *testing.T) {
	a := newAcctFSM(t)
	const dest = "remote.example"
	var edus []json.RawMessage
	for i := range 120 {
		edus = append(edus, eduN(i))
	}
	a.mustApply(OpFedEnqueue, FedEnqueueCmd{Destinations: []string{dest, "other.example"}, EDUs: edus})
	rows := outboxOf(a, dest)
	if len(rows) != 120 {
		t.Fatalf("%d rows", len(rows))
	}
	_, err := a.apply(OpFedTxnStart, FedTxnStartCmd{Dest: dest, TxnID: "t1", UptoPos: rows[100].Pos})
	wantFedErr(t, err, http.StatusRequestEntityTooLarge) // 101 EDUs
	_, err = a.apply(OpFedTxnStart, FedTxnStartCmd{Dest: "empty.example", TxnID: "t1", UptoPos: rows[5].Pos})
	wantFedErr(t, err, http.StatusNotFound)

	upto := rows[99].Pos
	v := a.mustApply(OpFedTxnStart, FedTxnStartCmd{Dest: dest, TxnID: "t1", UptoPos: upto}).(*InFlightTxn)
	if v.TxnID != "t1" || v.UptoPos != upto || v.EDUs != 100 || v.CreatedTS == 0 {
		t.Fatalf("in flight %+v", v)
	}
	// A retried proposal gets the same record; another ID is refused.
	if again := a.mustApply(OpFedTxnStart, FedTxnStartCmd{Dest: dest, TxnID: "t1", UptoPos: rows[3].Pos}).(*InFlightTxn); *again != *v {
		t.Fatalf("retried start %+v, want %+v", again, v)
	}
	_, err = a.apply(OpFedTxnStart, FedTxnStartCmd{Dest: dest, TxnID: "t2", UptoPos: upto})
	wantFedErr(t, err, http.StatusConflict)
	_, err = a.apply(OpFedCatchUp, FedCatchUpCmd{Dest: dest, UptoPos: upto, KeepPerRoom: 1})
	wantFedErr(t, err, http.StatusConflict)
	_, err = a.apply(OpFedTxnDone, FedTxnDoneCmd{Dest: dest, TxnID: "t0"})
	wantFedErr(t, err, http.StatusConflict)

	a.mustApply(OpFedDestBackoff, FedDestBackoffCmd{Dest: dest, Failures: 3, NextRetryTS: 42})
	a.view(func(r *ReadTx) {
		if s := r.FedDest(dest); s == nil || s.Failures != 3 || s.NextRetryTS != 42 || s.LastFailureTS == 0 {
			t.Fatalf("backoff %+v", s)
		}
	})
	if res := a.mustApply(OpFedTxnDone, FedTxnDoneCmd{Dest: dest, TxnID: "t1"}).(*FedTxnDoneResult); res.Removed != 100 {
		t.Fatalf("done removed %d rows", res.Removed)
	}
	if res := a.mustApply(OpFedTxnDone, FedTxnDoneCmd{Dest: dest, TxnID: "t1"}).(*FedTxnDoneResult); res.Removed != 0 {
		t.Fatalf("a retried done removed %d rows", res.Removed)
	}
	left := outboxOf(a, dest)
	if len(left) != 20 || left[0].Pos != rows[100].Pos {
		t.Fatalf("left %d rows from %d", len(left), left[0].Pos)
	}
	a.view(func(r *ReadTx) {
		if r.InFlightTxn(dest) != nil || r.FedDest(dest) != nil || r.OutboxLen("other.example", 0) != 120 {
			t.Fatal("done must clear the in-flight record and the backoff, and touch no other destination")
		}
	})
}

func TestFedCatchUpKeepsTheNewestPerRoom(t *testing.T) {
	a, d := remoteRoom(t)
	prev := "eve"
	var ids []string
	for i := range 6 {
		name := fmt.Sprintf("m%d", i)
		a.local(d.on(name, []string{prev}, 0, "m.room.message", nil, wAlice, map[string]any{"body": name}, "create", "pl", "alice"))
		ids, prev = append(ids, d.id(name)), name
	}
	const dest = "back.example"
	a.mustApply(OpFedEnqueue, FedEnqueueCmd{Destinations: []string{dest}, EventIDs: ids[:3], EDUs: raws(eduN(1))})
	a.mustApply(OpFedEnqueue, FedEnqueueCmd{Destinations: []string{dest}, EventIDs: ids[3:]})
	rows := outboxOf(a, dest)
	res := a.mustApply(OpFedCatchUp, FedCatchUpCmd{Dest: dest, UptoPos: rows[5].Pos, KeepPerRoom: 2}).(*FedCatchUpResult)
	if res.Dropped != 3 {
		t.Fatalf("dropped %d", res.Dropped)
	}
	var got []string
	for _, r := range outboxOf(a, dest) {
		got = append(got, r.Kind+r.EventID)
	}
	want := []string{"edu", "pdu" + ids[3], "pdu" + ids[4], "pdu" + ids[5]}
	if !slices.Equal(got, want) {
		t.Fatalf("after catch-up %v, want %v", got, want)
	}
}

// TestFedOpsRefuseBadInput: every refusal is an *Error and writes nothing.
func TestFedOpsRefuseBadInput(t *testing.T) {
	a := newAcctFSM(t)
	a.mustApply(OpFedEnqueue, FedEnqueueCmd{Destinations: []string{"ok.example"}, EDUs: raws(eduN(0))})
	cases := []struct {
		op      string
		payload any
	}{
		{OpFedEnqueue, FedEnqueueCmd{Destinations: []string{"x.example"}}},
		{OpFedEnqueue, FedEnqueueCmd{EDUs: raws(eduN(0))}},
		{OpFedEnqueue, FedEnqueueCmd{Destinations: []string{"a.example", "bad\x00dest"}, EDUs: raws(eduN(0))}},
		{OpFedEnqueue, FedEnqueueCmd{Destinations: []string{"x.example"}, EDUs: raws(json.RawMessage(`{"content":{}}`))}},
		{OpFedEnqueue, FedEnqueueCmd{Destinations: []string{"x.example"}, EDUs: raws(json.RawMessage(`[1]`))}},
		{OpFedEnqueue, FedEnqueueCmd{Destinations: []string{"x.example"}, EDUs: raws(eduN(1)), EventIDs: []string{"$nope"}}},
		{OpFedTxnStart, FedTxnStartCmd{Dest: "ok.example", UptoPos: 1 << 40}},
		{OpFedTxnStart, FedTxnStartCmd{Dest: "ok.example", TxnID: "t", UptoPos: -1}},
		{OpFedTxnStart, FedTxnStartCmd{Dest: "", TxnID: "t", UptoPos: 1 << 40}},
		{OpFedTxnDone, FedTxnDoneCmd{Dest: "a/b", TxnID: "t"}},
		{OpFedDestBackoff, FedDestBackoffCmd{Dest: "ok.example", Failures: -1}},
		{OpFedCatchUp, FedCatchUpCmd{Dest: "ok.example", UptoPos: 1 << 40}},
		{OpFedCatchUp, FedCatchUpCmd{Dest: "ok.example", KeepPerRoom: 1}},
	}
	for i, c := range cases {
		_, err := a.apply(c.op, c.payload)
		var fe *Error
		if !errors.As(err, &fe) {
			t.Fatalf("case %d (%s): err = %v, want an *fsm.Error", i, c.op, err)
		}
	}
	// Refused entries still advance the applied index: compare the
	// outbox buckets only.
	a.view(func(r *ReadTx) {
		if d := r.OutboxDestinations(); !slices.Equal(d, []string{"ok.example"}) || r.InFlightTxn("ok.example") != nil {
			t.Fatalf("a refusal wrote: destinations %v", d)
		}
	})
}
