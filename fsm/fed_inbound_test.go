package fsm

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
)

func TestFedInboundTxnFirstAnswerWins(t *testing.T) {
	a := newAcctFSM(t)
	first := json.RawMessage(`{"pdus": {"$a": {}}}`)
	got := a.mustApply(OpFedInboundTxn, FedInboundTxnCmd{Origin: "remote.example", TxnID: "t1", Response: first})
	if string(got.(json.RawMessage)) != `{"pdus":{"$a":{}}}` {
		t.Fatalf("stored %s", got)
	}
	again := a.mustApply(OpFedInboundTxn, FedInboundTxnCmd{Origin: "remote.example", TxnID: "t1",
		Response: json.RawMessage(`{"pdus":{"$b":{"error":"x"}}}`)})
	if string(again.(json.RawMessage)) != `{"pdus":{"$a":{}}}` {
		t.Fatalf("a second answer replaced the first: %s", again)
	}
	a.view(func(r *ReadTx) {
		if r.InboundTxnResult("other.example", "t1") != nil {
			t.Error("transaction IDs are per origin")
		}
	})
	for _, bad := range []FedInboundTxnCmd{{TxnID: "t"}, {Origin: "o"}, {Origin: "o", TxnID: "t", Response: json.RawMessage(`[]`)},
		{Origin: "o\x00", TxnID: "t", Response: json.RawMessage(`{}`)}} {
		_, err := a.apply(OpFedInboundTxn, bad)
		wantFedErr(t, err, http.StatusBadRequest)
	}
}

func TestFedInboundTxnKeepsTheLatestPerOrigin(t *testing.T) {
	a := newAcctFSM(t)
	n := FedInboundTxnKeep + 5
	for i := range n {
		a.mustApply(OpFedInboundTxn, FedInboundTxnCmd{Origin: "remote.example", TxnID: fmt.Sprint("t", i), Response: json.RawMessage(`{"pdus":{}}`)})
	}
	a.view(func(r *ReadTx) {
		for i := range n {
			kept := r.InboundTxnResult("remote.example", fmt.Sprint("t", i)) != nil
			if want := i >= n-FedInboundTxnKeep; kept != want {
				t.Errorf("txn %d kept=%v, want %v", i, kept, want)
			}
		}
	})
}
