package fsm

import (
	"encoding/json"
	"net/http"
	"testing"
)

func toDeviceTypes(msgs []ToDeviceMessage) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, m.Type+":"+string(m.Content))
	}
	return out
}

func TestToDeviceSendAndAck(t *testing.T) {
	u := newUDFSM(t)
	u.world()
	txn := &TxnKey{UserID: "@bob:t", DeviceID: "B1", Endpoint: ToDeviceEndpoint, TxnID: "t1"}
	send := ToDeviceSend{Sender: "@bob:t", Type: "m.test", Txn: txn, Messages: map[string]map[string]json.RawMessage{
		"@alice:t": {"*": json.RawMessage(`{"n":"all"}`), "A2": json.RawMessage(`{"n":"a2"}`)},
		"@bob:t":   {"B1": json.RawMessage(`{"n":"b1"}`), "NOPE": json.RawMessage(`{}`)},
		"@x:other": {"*": json.RawMessage(`{}`)},
	}}
	u.mustApply(OpToDeviceSend, send)
	first := u.maxPos()
	// A retry of the same transaction delivers nothing twice.
	u.mustApply(OpToDeviceSend, send)
	u.mustApply(OpToDeviceSend, ToDeviceSend{Sender: "@bob:t", Type: "m.second", Messages: map[string]map[string]json.RawMessage{
		"@alice:t": {"A1": json.RawMessage(`{}`)}}})

	u.view(func(r *ReadTx) {
		a1 := toDeviceTypes(r.ToDeviceSince("@alice:t", "A1", 0, 0))
		if len(a1) != 2 || a1[0] != `m.test:{"n":"all"}` || a1[1] != "m.second:{}" {
			t.Fatalf("A1 inbox = %v", a1)
		}
		if a2 := toDeviceTypes(r.ToDeviceSince("@alice:t", "A2", 0, 0)); len(a2) != 1 || a2[0] != `m.test:{"n":"a2"}` {
			t.Fatalf("A2 inbox = %v (explicit device must win over *)", a2)
		}
		if b1 := r.ToDeviceSince("@bob:t", "B1", 0, 0); len(b1) != 1 || b1[0].Sender != "@bob:t" {
			t.Fatalf("B1 inbox = %+v", b1)
		}
		if n := r.ToDeviceSince("@bob:t", "NOPE", 0, 0); len(n) != 0 {
			t.Fatalf("unknown device got %+v", n)
		}
		if got := r.ToDeviceSince("@alice:t", "A1", 0, 1); len(got) != 1 || got[0].Type != "m.test" {
			t.Fatalf("limit 1 = %+v", got)
		}
		if got := r.ToDeviceSince("@alice:t", "A1", first, 0); len(got) != 1 || got[0].Type != "m.second" {
			t.Fatalf("since first = %+v", got)
		}
	})

	u.mustApply(OpToDeviceAck, ToDeviceAck{UserID: "@alice:t", DeviceID: "A1", UpTo: first})
	u.view(func(r *ReadTx) {
		if got := r.ToDeviceSince("@alice:t", "A1", -1, 0); len(got) != 1 || got[0].Type != "m.second" {
			t.Fatalf("after ack A1 = %+v", got)
		}
		if got := r.ToDeviceSince("@alice:t", "A2", -1, 0); len(got) != 1 {
			t.Fatalf("ack of A1 touched A2: %+v", got)
		}
	})
}

func TestToDeviceRefusalsAndTouches(t *testing.T) {
	u := newUDFSM(t)
	u.world()
	u.wantRefusal(OpToDeviceSend, ToDeviceSend{Sender: "@bob:t", Type: "m.x", Messages: map[string]map[string]json.RawMessage{
		"@alice:t": {"A1": json.RawMessage(`[]`)}}}, http.StatusBadRequest, "M_BAD_JSON")
	u.wantRefusal(OpToDeviceSend, ToDeviceSend{Sender: "@bob:t"}, http.StatusBadRequest, "M_BAD_JSON")

	data, _ := Encode(OpToDeviceSend, 1, ToDeviceSend{Sender: "@bob:t", Type: "m.x", Messages: map[string]map[string]json.RawMessage{
		"@alice:t": {"A1": json.RawMessage(`{}`)}, "@carol:t": {"*": json.RawMessage(`{}`)}}})
	touched := u.seed(func(w *WriteTx) error { _, err := u.f.applyOne(w, data); return err })
	if !touched.Users["@alice:t"] || touched.Users["@carol:t"] {
		t.Fatalf("touched = %+v (carol has no devices)", touched)
	}
}

func TestToDeviceDeterministic(t *testing.T) {
	build := func() *udFSM {
		u := newUDFSM(t)
		u.world()
		msgs := map[string]map[string]json.RawMessage{}
		for _, user := range []string{"@alice:t", "@bob:t", "@carol:t"} {
			msgs[user] = map[string]json.RawMessage{"*": json.RawMessage(`{"u":"` + user + `"}`)}
		}
		u.mustApply(OpToDeviceSend, ToDeviceSend{Sender: "@bob:t", Type: "m.x", Messages: msgs})
		return u
	}
	dump := func(u *udFSM) string {
		var out []byte
		u.view(func(r *ReadTx) {
			r.scan(bToDevice, nil, func(k, v []byte) bool {
				out = append(append(append(out, k...), v...), '\n')
				return true
			})
		})
		return string(out)
	}
	a, b := dump(build()), dump(build())
	if a != b || a == "" {
		t.Fatalf("stores differ:\n%q\n%q", a, b)
	}
}
