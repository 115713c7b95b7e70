package federation

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/ganglion/ganglion/cluster"
	"github.com/ganglion/ganglion/fsm"
)

// PUT /_matrix/federation/v1/send/{txnId} (transactions.yaml). The answer
// to each (origin, txnId) is stored through the Raft log
// (fsm.OpFedInboundTxn), so a retry, to any node, gets the same answer and
// nothing is processed twice; PDUs are idempotent in the FSM anyway.

const (
	maxTxnPDUs = 50
	maxTxnEDUs = 100
	// txnTimeout bounds the processing of one transaction; rooms not
	// reached by then get an error for their PDUs.
	txnTimeout = 3 * time.Minute
)

// inboundTxn is a received transaction body.
type inboundTxn struct {
	Origin         string            `json:"origin"`
	OriginServerTS int64             `json:"origin_server_ts"`
	PDUs           []json.RawMessage `json:"pdus"`
	EDUs           []json.RawMessage `json:"edus"`
}

// pduResult is one entry of the answer's pdus map.
type pduResult struct {
	Error string `json:"error,omitempty"`
}

type txnResponse struct {
	PDUs map[string]pduResult `json:"pdus"`
}

func (a *API) sendTransaction(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	if a.node == nil {
		writeError(w, http.StatusNotFound, "M_UNRECOGNIZED", "this server takes no transactions")
		return
	}
	origin, txnID := Origin(r), p.ByName("txnId")
	if txnID == "" {
		writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "empty transaction ID")
		return
	}
	if resp := a.storedTxn(origin, txnID); resp != nil {
		writeRaw(w, http.StatusOK, resp)
		return
	}
	var body inboundTxn
	if !a.readJSON(w, r, &body) {
		return
	}
	if len(body.PDUs) > maxTxnPDUs || len(body.EDUs) > maxTxnEDUs {
		writeError(w, http.StatusBadRequest, "M_BAD_JSON", "a transaction holds at most 50 PDUs and 100 EDUs")
		return
	}
	// The work goes on if the sender hangs up: its retry then finds the
	// stored answer.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), txnTimeout)
	defer cancel()
	resp, err := a.inbound.once(r.Context(), origin+"\x00"+txnID, func() (json.RawMessage, error) {
		if resp := a.storedTxn(origin, txnID); resp != nil {
			return resp, nil
		}
		return a.processTxn(ctx, origin, txnID, &body)
	})
	if err != nil {
		a.log.Warn("transaction failed", "origin", origin, "txn_id", txnID, "error", err)
		writeErr(w, err)
		return
	}
	writeRaw(w, http.StatusOK, resp)
}

// processTxn ingests the PDUs room by room, handles the EDUs, and stores
// the answer.
func (a *API) processTxn(ctx context.Context, origin, txnID string, body *inboundTxn) (json.RawMessage, error) {
	var order []string
	byRoom := map[string][]json.RawMessage{}
	for _, raw := range body.PDUs {
		roomID := roomIDOf(raw)
		if roomID == "" {
			a.log.Debug("dropping a PDU without a room ID", "origin", origin)
			continue
		}
		if byRoom[roomID] == nil {
			order = append(order, roomID)
		}
		byRoom[roomID] = append(byRoom[roomID], raw)
	}
	out := txnResponse{PDUs: map[string]pduResult{}}
	for _, roomID := range order {
		res, err := a.Ingest(ctx, origin, roomID, byRoom[roomID])
		switch {
		case err != nil && ctx.Err() != nil:
			// Out of time: an answer, not a failure, so the sender does not
			// retry the same work forever.
			r := &ingestRun{results: map[string]error{}}
			r.failAll(byRoom[roomID], errors.New("processing timed out"))
			res = r.results
		case err != nil:
			return nil, err
		}
		for evID, e := range res {
			if e != nil {
				out.PDUs[evID] = pduResult{Error: e.Error()}
			} else {
				out.PDUs[evID] = pduResult{}
			}
		}
	}
	a.processEDUs(ctx, origin, body.EDUs)
	raw, err := json.Marshal(out)
	if err != nil {
		return nil, err
	}
	return a.storeTxn(ctx, origin, txnID, raw)
}

// storedTxn is the answer already given to origin's txnID, nil if none.
func (a *API) storedTxn(origin, txnID string) json.RawMessage {
	var resp json.RawMessage
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		resp = rt.InboundTxnResult(origin, txnID)
		return nil
	})
	return resp
}

// storeTxn records the answer; the first one recorded wins, and is what
// every node gives from then on.
func (a *API) storeTxn(ctx context.Context, origin, txnID string, resp json.RawMessage) (json.RawMessage, error) {
	v, idx, err := a.node.Propose(ctx, fsm.OpFedInboundTxn, fsm.FedInboundTxnCmd{Origin: origin, TxnID: txnID, Response: resp})
	if err != nil {
		return nil, err
	}
	if stored, ok := v.(json.RawMessage); ok {
		return stored, nil
	}
	if !a.node.Notifier().WaitApplied(ctx, idx) {
		return nil, cluster.ErrUnavailable
	}
	if stored := a.storedTxn(origin, txnID); stored != nil {
		return stored, nil
	}
	return resp, nil
}
