package fsm

import (
	"encoding/json"
	"strings"
)

// Inbound federation transactions: the answer given to each
// PUT /_matrix/federation/v1/send/{txnId}, so that a retry of the same
// transaction (same origin and txnId), to any node, gets the same answer
// and is not processed again.

// OpFedInboundTxn records the answer to an inbound transaction. The first
// answer recorded wins: a second one for the same (origin, txn_id) writes
// nothing and the command returns the stored answer.
const OpFedInboundTxn = "fed.inbound_txn"

// FedInboundTxnKeep is how many answers are kept per origin; older ones
// are dropped (a sender must get a 200 before it sends another txnId, so
// only its latest transactions can be retried).
const FedInboundTxnKeep = 100

// maxInboundTxnResponse bounds a stored answer: 50 PDU results with their
// error strings fit many times over.
const maxInboundTxnResponse = 256 << 10

var bFedInTxn = []byte("fed_in_txn") // "t" \x00 origin \x00 txn -> inboundTxnRecord; "s" \x00 origin \x00 seq(8) -> txn; "n" \x00 origin -> seq(8)

// FedInboundTxnCmd is the payload of OpFedInboundTxn.
type FedInboundTxnCmd struct {
	Origin   string          `json:"origin"`
	TxnID    string          `json:"txn_id"`
	Response json.RawMessage `json:"response"`
}

type inboundTxnRecord struct {
	Response json.RawMessage `json:"response"`
	Seq      uint64          `json:"seq"`
	TS       int64           `json:"ts"`
}

func init() { register(OpFedInboundTxn, applyFedInboundTxn) }

// applyFedInboundTxn returns the stored answer (json.RawMessage).
func applyFedInboundTxn(w *WriteTx, cmd *Command) (any, error) {
	c, err := decode[FedInboundTxnCmd](cmd)
	if err != nil {
		return nil, err
	}
	if c.Origin == "" || c.TxnID == "" || strings.ContainsRune(c.Origin+c.TxnID, 0) ||
		len(c.Origin) > 255 || len(c.TxnID) > 1024 {
		return nil, errBadRequest("origin and txn_id are required")
	}
	if len(c.Response) > maxInboundTxnResponse {
		return nil, errTooLarge("transaction answer too large")
	}
	if !isJSONObject(c.Response) {
		return nil, errBadRequest("response must be a JSON object")
	}
	if old := w.InboundTxnResult(c.Origin, c.TxnID); old != nil {
		return old, nil
	}
	seq := getU64(w.get(bFedInTxn, key("n", c.Origin))) + 1
	resp := compactJSON(c.Response)
	if err := w.putJSON(bFedInTxn, key("t", c.Origin, c.TxnID), inboundTxnRecord{Response: resp, Seq: seq, TS: cmd.TS}); err != nil {
		return nil, err
	}
	if err := w.put(bFedInTxn, append(prefix("s", c.Origin), u64(seq)...), []byte(c.TxnID)); err != nil {
		return nil, err
	}
	if err := w.put(bFedInTxn, key("n", c.Origin), u64(seq)); err != nil {
		return nil, err
	}
	if seq > FedInboundTxnKeep {
		if err := w.dropInboundTxn(c.Origin, seq-FedInboundTxnKeep); err != nil {
			return nil, err
		}
	}
	return resp, nil
}

// dropInboundTxn forgets the answer with sequence number seq of origin.
func (w *WriteTx) dropInboundTxn(origin string, seq uint64) error {
	idx := append(prefix("s", origin), u64(seq)...)
	txn := w.get(bFedInTxn, idx)
	if txn == nil {
		return nil
	}
	if err := w.del(bFedInTxn, key("t", origin, string(txn))); err != nil {
		return err
	}
	return w.del(bFedInTxn, idx)
}

// InboundTxnResult is the stored answer to origin's transaction txnID, nil
// when there is none.
func (r *ReadTx) InboundTxnResult(origin, txnID string) json.RawMessage {
	var rec inboundTxnRecord
	if r.getJSON(bFedInTxn, key("t", origin, txnID), &rec) != nil {
		return nil
	}
	return rec.Response
}
