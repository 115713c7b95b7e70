package federation

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"time"

	"github.com/ganglion/ganglion/fsm"
)

// outTxn is one transaction ready to put: durable ones are recorded in the
// FSM (fed.txn_start), ephemeral-only ones are not.
type outTxn struct {
	id      string
	durable bool
	body    []byte
}

// txnBody is the transaction as sent (server-server API, "Transactions").
type txnBody struct {
	Origin         string            `json:"origin"`
	OriginServerTS int64             `json:"origin_server_ts"`
	PDUs           []json.RawMessage `json:"pdus"`
	EDUs           []json.RawMessage `json:"edus,omitempty"`
}

// proposalPause is how long a worker waits after a failed proposal (no
// quorum, leadership moving) before trying again.
const proposalPause = time.Second

// runDest sends dest's queue one transaction at a time until it is empty
// or the term ends.
func (s *Sender) runDest(ctx context.Context, w *destWorker) {
	defer s.workerExit(w)
	s.loadBackoff(w)
	for ctx.Err() == nil {
		if !w.retryAt.IsZero() && !s.sleepUntil(ctx, w, w.retryAt) {
			return
		}
		txn, err := s.nextTxn(ctx, w)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("preparing a transaction", "destination", w.dest, "error", err)
				s.sleepUntil(ctx, w, time.Now().Add(proposalPause))
			}
			continue
		}
		if txn == nil {
			return
		}
		err = s.send.SendTransaction(ctx, w.dest, txn.id, txn.body)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			s.failed(ctx, w, txn, err)
			continue
		}
		s.succeeded(ctx, w, txn)
	}
}

// loadBackoff picks up the retry state an earlier leader recorded.
func (s *Sender) loadBackoff(w *destWorker) {
	_ = s.node.Store().View(func(r *fsm.ReadTx) error {
		if st := r.FedDest(w.dest); st != nil {
			w.failures, w.recovering = st.Failures, true
			w.retryAt = time.UnixMilli(st.NextRetryTS)
			w.backingOff.Store(true)
		}
		return nil
	})
}

// sleepUntil waits until t, DestinationOnline or the end of the term; it
// reports whether the worker should go on.
func (s *Sender) sleepUntil(ctx context.Context, w *destWorker, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return true
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-w.wake:
		w.retryAt = time.Time{}
	case <-timer.C:
	}
	return true
}

// nextTxn resumes the transaction in flight (same ID, same body) or starts
// the next one from the oldest queued rows; nil when there is nothing to
// send.
func (s *Sender) nextTxn(ctx context.Context, w *destWorker) (*outTxn, error) {
	for attempt := 0; attempt < 3; attempt++ {
		var inflight *fsm.InFlightTxn
		var rows []fsm.OutboxEntry
		var backlog int
		_ = s.node.Store().View(func(r *fsm.ReadTx) error {
			if inflight = r.InFlightTxn(w.dest); inflight == nil {
				rows = r.Outbox(w.dest, 0, fsm.FedMaxTxnPDUs+fsm.FedMaxTxnEDUs)
				if w.recovering {
					backlog = r.OutboxLen(w.dest, s.CatchUpThreshold+1)
				}
			}
			return nil
		})
		if inflight != nil {
			return s.resume(w, inflight, nil)
		}
		if len(rows) == 0 {
			return s.ephemeralOnly(w), nil
		}
		if w.recovering {
			w.recovering = false
			if backlog > s.CatchUpThreshold {
				if err := s.catchUp(ctx, w); err != nil {
					return nil, err
				}
				continue
			}
		}
		id := rand.Text()
		_, err := s.propose(ctx, fsm.OpFedTxnStart, fsm.FedTxnStartCmd{Dest: w.dest, TxnID: id, UptoPos: uptoFor(rows)})
		var fe *fsm.Error
		if errors.As(err, &fe) && fe.Status == http.StatusConflict {
			continue // another transaction got recorded meanwhile: resume that one
		}
		if err != nil {
			return nil, err
		}
		var started *fsm.InFlightTxn
		_ = s.node.Store().View(func(r *fsm.ReadTx) error { started = r.InFlightTxn(w.dest); return nil })
		if started == nil || started.TxnID != id {
			continue
		}
		return s.resume(w, started, s.takeEphemeral(w.dest, fsm.FedMaxTxnEDUs-started.EDUs))
	}
	return nil, fmt.Errorf("the transaction to %s kept changing", w.dest)
}

// uptoFor is the position of the last row that fits in one transaction.
func uptoFor(rows []fsm.OutboxEntry) int64 {
	var pdus, edus int
	var upto int64
	for _, r := range rows {
		if r.Kind == fsm.OutboxPDU {
			if pdus == fsm.FedMaxTxnPDUs {
				break
			}
			pdus++
		} else {
			if edus == fsm.FedMaxTxnEDUs {
				break
			}
			edus++
		}
		upto = r.Pos
	}
	return upto
}

// resume returns the body of the transaction in flight: the one this worker
// built (ephemeral EDUs included) or one rebuilt from the rows it covers.
func (s *Sender) resume(w *destWorker, t *fsm.InFlightTxn, extra []json.RawMessage) (*outTxn, error) {
	if w.cacheID == t.TxnID && len(extra) == 0 {
		return &outTxn{id: t.TxnID, durable: true, body: w.cacheBody}, nil
	}
	body, err := s.buildBody(w.dest, t, extra)
	if err != nil {
		return nil, err
	}
	w.cacheID, w.cacheBody = t.TxnID, body
	return &outTxn{id: t.TxnID, durable: true, body: body}, nil
}

// buildBody reads the rows at or below t.UptoPos: the same rows give the
// same bytes on every node (stored PDUs are canonical JSON).
func (s *Sender) buildBody(dest string, t *fsm.InFlightTxn, extra []json.RawMessage) ([]byte, error) {
	b := txnBody{Origin: s.serverName, OriginServerTS: t.CreatedTS, PDUs: []json.RawMessage{}}
	err := s.node.Store().View(func(r *fsm.ReadTx) error {
		for _, row := range r.Outbox(dest, 0, fsm.FedMaxTxnPDUs+fsm.FedMaxTxnEDUs+1) {
			if row.Pos > t.UptoPos {
				break
			}
			if row.Kind == fsm.OutboxEDU {
				b.EDUs = append(b.EDUs, row.EDU)
				continue
			}
			ev, err := r.Event(row.EventID)
			if err != nil {
				s.log.Error("queued event is missing", "destination", dest, "event_id", row.EventID)
				continue
			}
			b.PDUs = append(b.PDUs, ev.PDU)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	b.EDUs = append(b.EDUs, extra...)
	return encodeTxn(b)
}

// encodeTxn marshals without HTML escaping, so the PDUs go out as the very
// bytes stored (and so the same on every node).
func encodeTxn(b txnBody) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(b); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// ephemeralOnly builds a transaction of ephemeral EDUs alone, or nil. Its
// ID is random and never recorded: nothing durable rides in it.
func (s *Sender) ephemeralOnly(w *destWorker) *outTxn {
	edus := s.takeEphemeral(w.dest, fsm.FedMaxTxnEDUs)
	if len(edus) == 0 {
		return nil
	}
	body, err := encodeTxn(txnBody{Origin: s.serverName, OriginServerTS: time.Now().UnixMilli(),
		PDUs: []json.RawMessage{}, EDUs: edus})
	if err != nil {
		return nil
	}
	return &outTxn{id: rand.Text(), body: body}
}

// catchUp thins the backlog of a destination that comes back after an
// outage to the newest PDUs of each room; it fetches the rest with
// get_missing_events.
func (s *Sender) catchUp(ctx context.Context, w *destWorker) error {
	var last int64
	_ = s.node.Store().View(func(r *fsm.ReadTx) error { last = r.OutboxLast(w.dest); return nil })
	v, err := s.propose(ctx, fsm.OpFedCatchUp, fsm.FedCatchUpCmd{Dest: w.dest, UptoPos: last, KeepPerRoom: s.CatchUpKeepPerRoom})
	if err != nil {
		return err
	}
	if res, ok := v.(*fsm.FedCatchUpResult); ok {
		s.log.Info("destination back: sending the newest events of each room", "destination", w.dest, "dropped", res.Dropped)
	}
	return nil
}

func (s *Sender) succeeded(ctx context.Context, w *destWorker, txn *outTxn) {
	if w.failures > 0 {
		s.log.Info("destination reachable again", "destination", w.dest, "failures", w.failures)
		w.recovering = true
	}
	if txn.durable {
		if _, err := s.propose(ctx, fsm.OpFedTxnDone, fsm.FedTxnDoneCmd{Dest: w.dest, TxnID: txn.id}); err != nil {
			// Still in flight: the same transaction goes again, the remote
			// deduplicates it by ID.
			s.log.Warn("recording a sent transaction", "destination", w.dest, "txn_id", txn.id, "error", err)
			w.retryAt = time.Now().Add(proposalPause)
			return
		}
	} else if w.failures > 0 {
		if _, err := s.propose(ctx, fsm.OpFedDestBackoff, fsm.FedDestBackoffCmd{Dest: w.dest}); err != nil {
			s.log.Warn("clearing backoff", "destination", w.dest, "error", err)
		}
	}
	w.cacheID, w.cacheBody = "", nil
	w.failures, w.retryAt = 0, time.Time{}
	w.backingOff.Store(false)
}

func (s *Sender) failed(ctx context.Context, w *destWorker, txn *outTxn, sendErr error) {
	w.failures++
	delay := s.backoff(w.failures)
	w.retryAt = time.Now().Add(delay)
	w.backingOff.Store(true)
	s.dropEphemeral(w.dest)
	if !txn.durable {
		w.cacheID, w.cacheBody = "", nil
	}
	log := s.log.Debug
	if w.failures == 1 {
		log = s.log.Warn
	}
	log("transaction failed; backing off", "destination", w.dest, "txn_id", txn.id, "failures", w.failures, "retry_in", delay, "error", sendErr)
	_, err := s.propose(ctx, fsm.OpFedDestBackoff, fsm.FedDestBackoffCmd{Dest: w.dest, Failures: w.failures, NextRetryTS: w.retryAt.UnixMilli()})
	if err != nil && ctx.Err() == nil {
		s.log.Warn("recording backoff", "destination", w.dest, "error", err)
	}
}

// backoff doubles from MinBackoff up to MaxBackoff; the jitter (up to a
// quarter, downwards) keeps destinations that failed together apart.
func (s *Sender) backoff(failures int) time.Duration {
	d := s.MinBackoff
	for i := 1; i < failures && d < s.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, s.MaxBackoff)
	return d - time.Duration(mrand.Int64N(int64(d)/4+1))
}

// propose commits a command on this node only: a deposed leader's worker
// must not have its writes forwarded to the next leader.
func (s *Sender) propose(ctx context.Context, op string, payload any) (any, error) {
	f, err := s.node.ProposeAsync(op, payload)
	if err != nil {
		return nil, err
	}
	v, _, err := f.Wait(ctx)
	return v, err
}
