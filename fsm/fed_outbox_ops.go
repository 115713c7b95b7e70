package fsm

import (
	"encoding/json"
	"slices"
)

// Federation outbox commands, proposed by the leader's sender (and
// fed.enqueue by whatever queues an event or EDU outside a room command).
const (
	OpFedEnqueue     = "fed.enqueue"
	OpFedTxnStart    = "fed.txn_start"
	OpFedTxnDone     = "fed.txn_done"
	OpFedDestBackoff = "fed.dest_backoff"
	OpFedCatchUp     = "fed.catch_up"
)

// FedEnqueueCmd queues stored events (as PDUs) and EDUs, in that order, for
// each destination.
type FedEnqueueCmd struct {
	Destinations []string          `json:"destinations"`
	EventIDs     []string          `json:"event_ids,omitempty"`
	EDUs         []json.RawMessage `json:"edus,omitempty"`
}

// FedTxnStartCmd makes every row of Dest at or below UptoPos the
// transaction TxnID. Starting the transaction already in flight again
// (a retried proposal) is a no-op.
type FedTxnStartCmd struct {
	Dest    string `json:"dest"`
	TxnID   string `json:"txn_id"`
	UptoPos int64  `json:"upto_pos"`
}

// FedTxnDoneCmd records that Dest answered 200 to TxnID: its rows go, and
// so does the destination's backoff.
type FedTxnDoneCmd struct {
	Dest  string `json:"dest"`
	TxnID string `json:"txn_id"`
}

// FedTxnDoneResult says how many rows the transaction covered (0 when a
// retried proposal found it already done).
type FedTxnDoneResult struct {
	Removed int `json:"removed"`
}

// FedDestBackoffCmd records a destination's failures; 0 clears them.
// NextRetryTS is the proposer's choice (clock and jitter stay out of Apply).
type FedDestBackoffCmd struct {
	Dest        string `json:"dest"`
	Failures    int    `json:"failures"`
	NextRetryTS int64  `json:"next_retry_ts"`
}

// FedCatchUpCmd thins the queue of a destination that comes back after an
// outage: of its PDU rows at or below UptoPos only the newest KeepPerRoom of
// each room stay (the remote fetches the rest with get_missing_events).
// EDUs all stay.
type FedCatchUpCmd struct {
	Dest        string `json:"dest"`
	UptoPos     int64  `json:"upto_pos"`
	KeepPerRoom int    `json:"keep_per_room"`
}

// FedCatchUpResult counts the rows dropped.
type FedCatchUpResult struct {
	Dropped int `json:"dropped"`
}

// maxFedEnqueue bounds one fed.enqueue command (rows = items x dests).
const maxFedEnqueue = 10000

func init() {
	register(OpFedEnqueue, applyFedEnqueue)
	register(OpFedTxnStart, applyFedTxnStart)
	register(OpFedTxnDone, applyFedTxnDone)
	register(OpFedDestBackoff, applyFedDestBackoff)
	register(OpFedCatchUp, applyFedCatchUp)
}

func applyFedEnqueue(w *WriteTx, cmd *Command) (any, error) {
	c, err := decode[FedEnqueueCmd](cmd)
	if err != nil {
		return nil, err
	}
	dests := slices.Clone(c.Destinations)
	slices.Sort(dests)
	dests = slices.Compact(dests)
	if len(dests) == 0 || len(c.EventIDs)+len(c.EDUs) == 0 {
		return nil, errBadRequest("destinations and something to send are required")
	}
	if len(dests)*(len(c.EventIDs)+len(c.EDUs)) > maxFedEnqueue {
		return nil, errTooLarge("more than %d outbox rows in one command", maxFedEnqueue)
	}
	for _, d := range dests {
		if err := validDestination(d); err != nil {
			return nil, err
		}
	}
	items := make([]OutboxItem, 0, len(c.EventIDs)+len(c.EDUs))
	for _, id := range c.EventIDs {
		ev, err := w.Event(id)
		if err != nil || ev.Rejected || ev.Outlier || ev.SoftFailed {
			return nil, errNotFound("event %s is not a stored timeline event", id)
		}
		items = append(items, OutboxItem{Kind: OutboxPDU, RoomID: ev.RoomID, EventID: id})
	}
	for _, edu := range c.EDUs {
		if err := validEDU(edu); err != nil {
			return nil, err
		}
		items = append(items, OutboxItem{Kind: OutboxEDU, EDU: edu})
	}
	for _, it := range items {
		pos := w.NextPos()
		for _, d := range dests {
			if err := w.putJSON(bFedOutbox, outboxKey(d, pos), it); err != nil {
				return nil, err
			}
		}
	}
	return nil, nil
}

func applyFedTxnStart(w *WriteTx, cmd *Command) (any, error) {
	c, err := decode[FedTxnStartCmd](cmd)
	if err != nil {
		return nil, err
	}
	if err := validDestination(c.Dest); err != nil {
		return nil, err
	}
	if c.TxnID == "" || len(c.TxnID) > 255 {
		return nil, errBadRequest("bad txn_id")
	}
	if cur := w.InFlightTxn(c.Dest); cur != nil {
		if cur.TxnID == c.TxnID {
			return cur, nil
		}
		return nil, errFedConflict("transaction %s is in flight to %s", cur.TxnID, c.Dest)
	}
	if c.UptoPos <= 0 {
		return nil, errBadRequest("upto_pos must be positive")
	}
	pdus, edus := w.countOutbox(c.Dest, c.UptoPos)
	if pdus+edus == 0 {
		return nil, errNotFound("nothing queued for %s", c.Dest)
	}
	if pdus > FedMaxTxnPDUs || edus > FedMaxTxnEDUs {
		return nil, errTooLarge("a transaction holds at most %d PDUs and %d EDUs", FedMaxTxnPDUs, FedMaxTxnEDUs)
	}
	t := &InFlightTxn{TxnID: c.TxnID, UptoPos: c.UptoPos, CreatedTS: cmd.TS, PDUs: pdus, EDUs: edus}
	return t, w.putJSON(bFedTxn, []byte(c.Dest), t)
}

func applyFedTxnDone(w *WriteTx, cmd *Command) (any, error) {
	c, err := decode[FedTxnDoneCmd](cmd)
	if err != nil {
		return nil, err
	}
	if err := validDestination(c.Dest); err != nil {
		return nil, err
	}
	cur := w.InFlightTxn(c.Dest)
	if cur == nil {
		return &FedTxnDoneResult{}, nil
	}
	if cur.TxnID != c.TxnID {
		return nil, errFedConflict("transaction %s is in flight to %s, not %s", cur.TxnID, c.Dest, c.TxnID)
	}
	var keys [][]byte
	pfx := prefix(c.Dest)
	w.scan(bFedOutbox, pfx, func(k, _ []byte) bool {
		if int64(getU64(k[len(pfx):])) > cur.UptoPos {
			return false
		}
		keys = append(keys, slices.Clone(k))
		return true
	})
	for _, k := range keys {
		if err := w.del(bFedOutbox, k); err != nil {
			return nil, err
		}
	}
	if err := w.del(bFedTxn, []byte(c.Dest)); err != nil {
		return nil, err
	}
	if err := w.del(bFedDest, []byte(c.Dest)); err != nil {
		return nil, err
	}
	return &FedTxnDoneResult{Removed: len(keys)}, nil
}

func applyFedDestBackoff(w *WriteTx, cmd *Command) (any, error) {
	c, err := decode[FedDestBackoffCmd](cmd)
	if err != nil {
		return nil, err
	}
	if err := validDestination(c.Dest); err != nil {
		return nil, err
	}
	if c.Failures < 0 || c.NextRetryTS < 0 {
		return nil, errBadRequest("failures and next_retry_ts must not be negative")
	}
	if c.Failures == 0 {
		return nil, w.del(bFedDest, []byte(c.Dest))
	}
	return nil, w.putJSON(bFedDest, []byte(c.Dest),
		FedDestState{Failures: c.Failures, NextRetryTS: c.NextRetryTS, LastFailureTS: cmd.TS})
}

func applyFedCatchUp(w *WriteTx, cmd *Command) (any, error) {
	c, err := decode[FedCatchUpCmd](cmd)
	if err != nil {
		return nil, err
	}
	if err := validDestination(c.Dest); err != nil {
		return nil, err
	}
	if c.KeepPerRoom < 1 || c.UptoPos <= 0 {
		return nil, errBadRequest("keep_per_room and upto_pos must be positive")
	}
	if cur := w.InFlightTxn(c.Dest); cur != nil {
		// Its rows must stay as they are until it is done.
		return nil, errFedConflict("transaction %s is in flight to %s", cur.TxnID, c.Dest)
	}
	// Newest first: a room's first KeepPerRoom PDU rows stay.
	kept := map[string]int{}
	var drop [][]byte
	pfx := prefix(c.Dest)
	w.scanBack(bFedOutbox, pfx, outboxKey(c.Dest, c.UptoPos+1), func(k, v []byte) bool {
		var it OutboxItem
		if json.Unmarshal(v, &it) != nil || it.Kind != OutboxPDU {
			return true
		}
		if kept[it.RoomID] < c.KeepPerRoom {
			kept[it.RoomID]++
		} else {
			drop = append(drop, slices.Clone(k))
		}
		return true
	})
	for _, k := range drop {
		if err := w.del(bFedOutbox, k); err != nil {
			return nil, err
		}
	}
	return &FedCatchUpResult{Dropped: len(drop)}, nil
}
