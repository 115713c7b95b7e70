package fsm

import (
	"encoding/json"
	"net/http"
	"reflect"
	"testing"
)

type receiptsJSON map[string]map[string]map[string]receiptContent

func decodeReceipts(t *testing.T, raw json.RawMessage) receiptsJSON {
	t.Helper()
	if raw == nil {
		return nil
	}
	var out receiptsJSON
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("receipts %s: %v", raw, err)
	}
	return out
}

func TestReceiptsSinceAndPrivacy(t *testing.T) {
	u := newUDFSM(t)
	u.world()
	start := u.maxPos()
	u.mustApply(OpReceiptPut, ReceiptPut{RoomID: "!r:t", UserID: "@alice:t", Receipts: []ReceiptMark{
		{Type: ReceiptRead, EventID: "$e1"}, {Type: ReceiptReadPrivate, EventID: "$e2"}}})
	ts1 := int64(1700000000000 + u.index)
	mid := u.maxPos()
	u.mustApply(OpReceiptPut, ReceiptPut{RoomID: "!r:t", UserID: "@bob:t", Receipts: []ReceiptMark{
		{Type: ReceiptRead, EventID: "$e2", ThreadID: "main"}}})
	ts2 := int64(1700000000000 + u.index)

	u.view(func(r *ReadTx) {
		got := decodeReceipts(t, r.ReceiptsSince("!r:t", "@bob:t", 0))
		want := receiptsJSON{
			"$e1": {ReceiptRead: {"@alice:t": {TS: ts1}}},
			"$e2": {ReceiptRead: {"@bob:t": {TS: ts2, ThreadID: "main"}}},
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("bob sees %+v, want %+v", got, want)
		}
		got = decodeReceipts(t, r.ReceiptsSince("!r:t", "@alice:t", start))
		if _, ok := got["$e2"][ReceiptReadPrivate]["@alice:t"]; !ok {
			t.Fatalf("alice does not see her private receipt: %+v", got)
		}
		got = decodeReceipts(t, r.ReceiptsSince("!r:t", "@alice:t", mid))
		if len(got) != 1 || len(got["$e2"]) != 1 || got["$e2"][ReceiptRead]["@bob:t"].ThreadID != "main" {
			t.Fatalf("since mid: %+v", got)
		}
		if raw := r.ReceiptsSince("!r:t", "@alice:t", u.maxPos()); raw != nil {
			t.Fatalf("since now: %s", raw)
		}
		if rec, ok := r.UserReceipt("!r:t", "@bob:t", ReceiptRead, "main"); !ok || rec.EventID != "$e2" {
			t.Fatalf("UserReceipt = %+v %v", rec, ok)
		}
	})
}

func TestReceiptsNeverGoBack(t *testing.T) {
	u := newUDFSM(t)
	u.world()
	u.mustApply(OpReceiptPut, ReceiptPut{RoomID: "!r:t", UserID: "@alice:t", Receipts: []ReceiptMark{{Type: ReceiptRead, EventID: "$e3"}}})
	after := u.maxPos()
	u.mustApply(OpReceiptPut, ReceiptPut{RoomID: "!r:t", UserID: "@alice:t", Receipts: []ReceiptMark{{Type: ReceiptRead, EventID: "$e1"}}})
	u.mustApply(OpReceiptPut, ReceiptPut{RoomID: "!r:t", UserID: "@alice:t", Receipts: []ReceiptMark{{Type: ReceiptRead, EventID: "$e3"}}})
	u.view(func(r *ReadTx) {
		if raw := r.ReceiptsSince("!r:t", "@bob:t", after); raw != nil {
			t.Fatalf("older or repeated receipt was stored: %s", raw)
		}
		got := decodeReceipts(t, r.ReceiptsSince("!r:t", "@bob:t", 0))
		if len(got) != 1 || got["$e3"] == nil {
			t.Fatalf("receipts = %+v", got)
		}
	})
	// A thread is a separate receipt, so an older event there is fine.
	u.mustApply(OpReceiptPut, ReceiptPut{RoomID: "!r:t", UserID: "@alice:t", Receipts: []ReceiptMark{{Type: ReceiptRead, EventID: "$e1", ThreadID: "$e1"}}})
	u.view(func(r *ReadTx) {
		if raw := r.ReceiptsSince("!r:t", "@bob:t", after); raw == nil {
			t.Fatal("threaded receipt missing")
		}
	})
}

func TestFullyReadMarker(t *testing.T) {
	u := newUDFSM(t)
	u.world()
	u.mustApply(OpReceiptPut, ReceiptPut{RoomID: "!r:t", UserID: "@alice:t", FullyRead: "$e2"})
	u.mustApply(OpReceiptPut, ReceiptPut{RoomID: "!r:t", UserID: "@alice:t", FullyRead: "$e1"})
	u.view(func(r *ReadTx) {
		rec, err := r.AccountData("@alice:t", "!r:t", ReceiptFullyRead)
		if err != nil || string(rec.Content) != `{"event_id":"$e2"}` {
			t.Fatalf("m.fully_read = %+v, %v", rec, err)
		}
		if raw := r.ReceiptsSince("!r:t", "@alice:t", 0); raw != nil {
			t.Fatalf("m.fully_read leaked into m.receipt: %s", raw)
		}
	})
}

func TestReceiptRefusals(t *testing.T) {
	u := newUDFSM(t)
	u.world()
	mark := []ReceiptMark{{Type: ReceiptRead, EventID: "$e1"}}
	u.wantRefusal(OpReceiptPut, ReceiptPut{RoomID: "!nope:t", UserID: "@alice:t", Receipts: mark}, http.StatusNotFound, "M_NOT_FOUND")
	u.wantRefusal(OpReceiptPut, ReceiptPut{RoomID: "!r:t", UserID: "@carol:t", Receipts: mark}, http.StatusForbidden, "M_FORBIDDEN")
	u.wantRefusal(OpReceiptPut, ReceiptPut{RoomID: "!r:t", UserID: "@alice:t", Receipts: []ReceiptMark{{Type: ReceiptRead, EventID: "$nope"}}}, http.StatusNotFound, "M_NOT_FOUND")
	u.wantRefusal(OpReceiptPut, ReceiptPut{RoomID: "!r:t", UserID: "@alice:t", Receipts: []ReceiptMark{{Type: "m.bogus", EventID: "$e1"}}}, http.StatusBadRequest, "M_INVALID_PARAM")
	u.wantRefusal(OpReceiptPut, ReceiptPut{RoomID: "!r:t", UserID: "@alice:t", FullyRead: "$nope", Receipts: mark}, http.StatusNotFound, "M_NOT_FOUND")
	u.view(func(r *ReadTx) {
		if raw := r.ReceiptsSince("!r:t", "@alice:t", 0); raw != nil {
			t.Fatalf("a refused command wrote: %s", raw)
		}
	})
}

func TestReceiptTouches(t *testing.T) {
	u := newUDFSM(t)
	u.world()
	data, _ := Encode(OpReceiptPut, 1, ReceiptPut{RoomID: "!r:t", UserID: "@alice:t", Receipts: []ReceiptMark{{Type: ReceiptReadPrivate, EventID: "$e1"}}})
	touched := u.seed(func(w *WriteTx) error { _, err := u.f.applyOne(w, data); return err })
	if !touched.Users["@alice:t"] || len(touched.Rooms) != 0 {
		t.Fatalf("private receipt touched %+v", touched)
	}
	data, _ = Encode(OpReceiptPut, 1, ReceiptPut{RoomID: "!r:t", UserID: "@alice:t", Receipts: []ReceiptMark{{Type: ReceiptRead, EventID: "$e1"}}})
	touched = u.seed(func(w *WriteTx) error { _, err := u.f.applyOne(w, data); return err })
	if !touched.Rooms["!r:t"] {
		t.Fatalf("public receipt touched %+v", touched)
	}
}
