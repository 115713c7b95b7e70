package fsm

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"github.com/tidwall/gjson"
)

// The federation outbox (invariant 8): what the leader still has to send to
// each remote server, and the one transaction in flight per server. A new
// leader rebuilds the in-flight transaction from the rows it covers, so it
// resends the same transaction ID with the same PDUs and EDUs.
var (
	bFedOutbox = []byte("fed_outbox") // dest \x00 pos(8) -> OutboxItem
	bFedTxn    = []byte("fed_txn")    // dest -> InFlightTxn
	bFedDest   = []byte("fed_dest")   // dest -> FedDestState (retry backoff)
)

// Limits of one transaction (server-server API, "Transactions").
const (
	FedMaxTxnPDUs = 50
	FedMaxTxnEDUs = 100
)

// Outbox item kinds.
const (
	OutboxPDU = "pdu"
	OutboxEDU = "edu"
)

// maxFedEDU bounds one queued EDU; a whole transaction must stay well under
// what remote servers accept.
const maxFedEDU = 65536

// OutboxItem is one queued row: a stored event (sent as its PDU, read when
// the transaction is built) or an EDU as sent.
type OutboxItem struct {
	Kind    string          `json:"kind"`
	RoomID  string          `json:"room_id,omitempty"`
	EventID string          `json:"event_id,omitempty"`
	EDU     json.RawMessage `json:"edu,omitempty"`
}

// OutboxEntry is an OutboxItem with its queue position.
type OutboxEntry struct {
	Pos int64 `json:"pos"`
	OutboxItem
}

// InFlightTxn is the transaction being sent to a destination: every row at
// or below UptoPos. CreatedTS (the starting command's TS) is its
// origin_server_ts, so a rebuilt body is byte-identical.
type InFlightTxn struct {
	TxnID     string `json:"txn_id"`
	UptoPos   int64  `json:"upto_pos"`
	CreatedTS int64  `json:"created_ts"`
	PDUs      int    `json:"pdus"`
	EDUs      int    `json:"edus"`
}

// FedDestState is a destination's retry state; absent means healthy.
type FedDestState struct {
	Failures      int   `json:"failures"`
	NextRetryTS   int64 `json:"next_retry_ts"`
	LastFailureTS int64 `json:"last_failure_ts"`
}

func outboxKey(dest string, pos int64) []byte {
	return append(prefix(dest), u64(uint64(pos))...)
}

// ServerOfUser is the server name part of a user ID ("" if it has none).
func ServerOfUser(userID string) string {
	if i := strings.IndexByte(userID, ':'); i >= 0 {
		return userID[i+1:]
	}
	return ""
}

// validDestination refuses what cannot be a server name or would break the
// key layout.
func validDestination(dest string) error {
	if dest == "" || len(dest) > 255 || strings.ContainsAny(dest, "\x00/ ") {
		return errBadRequest("bad destination %q", dest)
	}
	return nil
}

// validEDU checks the EDU envelope: an object with an edu_type and a
// content object.
func validEDU(edu json.RawMessage) error {
	if len(edu) > maxFedEDU {
		return errTooLarge("EDU of %d bytes; at most %d", len(edu), maxFedEDU)
	}
	if !json.Valid(edu) {
		return errBadRequest("EDU is not JSON")
	}
	r := gjson.ParseBytes(edu)
	if !r.IsObject() || r.Get("edu_type").Type != gjson.String || !r.Get("content").IsObject() {
		return errBadRequest("an EDU needs edu_type and a content object")
	}
	return nil
}

// EnqueueFederationPDU queues a local event (its sender is one of our
// users, so its server is ours) for every other server with a joined member
// in the room, plus the target's server of a membership event (an invite,
// kick or ban reaches the user's server). Call it once the event is stored
// and its state applied.
func (w *WriteTx) EnqueueFederationPDU(roomID string, rec *EventRecord) error {
	return w.EnqueueFederationPDUFrom(ServerOfUser(rec.Sender), roomID, rec)
}

// EnqueueFederationPDUFrom is EnqueueFederationPDU for an event of another
// server that we relay (send_join, send_leave, send_knock): neither our
// server nor the event's origin receives it.
func (w *WriteTx) EnqueueFederationPDUFrom(ourServer, roomID string, rec *EventRecord) error {
	if rec.Rejected || rec.Outlier || rec.SoftFailed {
		return nil
	}
	skip := map[string]bool{ourServer: true, ServerOfUser(rec.Sender): true, "": true}
	var dests []string
	add := func(server string) {
		if !skip[server] && validDestination(server) == nil {
			skip[server] = true
			dests = append(dests, server)
		}
	}
	for _, server := range w.JoinedServers(roomID, ourServer) {
		add(server)
	}
	if rec.Type == "m.room.member" && rec.StateKey != nil {
		add(ServerOfUser(*rec.StateKey))
	}
	if len(dests) == 0 {
		return nil
	}
	slices.Sort(dests)
	pos := rec.Pos
	if pos <= 0 || IndexOfPos(pos) != w.index {
		// Not a position of this command: a row must sort after every
		// row an in-flight transaction covers.
		pos = w.NextPos()
	}
	item := OutboxItem{Kind: OutboxPDU, RoomID: roomID, EventID: rec.EventID}
	for _, d := range dests {
		if err := w.putJSON(bFedOutbox, outboxKey(d, pos), item); err != nil {
			return err
		}
	}
	return nil
}

// EnqueueFederationEDU queues a durable EDU (to-device, receipt, device
// list update) for dest at this command's next position.
func (w *WriteTx) EnqueueFederationEDU(dest string, edu json.RawMessage) error {
	if err := validDestination(dest); err != nil {
		return err
	}
	if err := validEDU(edu); err != nil {
		return err
	}
	return w.putJSON(bFedOutbox, outboxKey(dest, w.NextPos()), OutboxItem{Kind: OutboxEDU, EDU: edu})
}

// OutboxDestinations lists the servers with queued rows, sorted.
func (r *ReadTx) OutboxDestinations() []string {
	var out []string
	c := r.tx.Bucket(bFedOutbox).Cursor()
	for k, _ := c.First(); k != nil; {
		i := slices.Index(k, 0)
		if i < 0 {
			k, _ = c.Next()
			continue
		}
		dest := string(k[:i])
		out = append(out, dest)
		// Skip the rest of this destination's rows.
		k, _ = c.Seek(append(prefix(dest), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff))
	}
	return out
}

// Outbox lists up to limit rows for dest with pos > afterPos, oldest first
// (limit <= 0: all).
func (r *ReadTx) Outbox(dest string, afterPos int64, limit int) []OutboxEntry {
	var out []OutboxEntry
	pfx := prefix(dest)
	start := outboxKey(dest, max(afterPos+1, 0))
	r.scanFrom(bFedOutbox, pfx, start, func(k, v []byte) bool {
		if limit > 0 && len(out) >= limit {
			return false
		}
		var e OutboxEntry
		if json.Unmarshal(v, &e.OutboxItem) == nil {
			e.Pos = int64(getU64(k[len(pfx):]))
			out = append(out, e)
		}
		return true
	})
	return out
}

// OutboxLen counts dest's queued rows, stopping at limit (limit <= 0: all).
func (r *ReadTx) OutboxLen(dest string, limit int) int {
	n := 0
	r.scan(bFedOutbox, prefix(dest), func(_, _ []byte) bool {
		n++
		return limit <= 0 || n < limit
	})
	return n
}

// OutboxLast is the position of dest's newest row (0 if none).
func (r *ReadTx) OutboxLast(dest string) int64 {
	var last int64
	pfx := prefix(dest)
	r.scanBack(bFedOutbox, pfx, nil, func(k, _ []byte) bool {
		last = int64(getU64(k[len(pfx):]))
		return false
	})
	return last
}

// InFlightTxn is dest's transaction in flight, or nil.
func (r *ReadTx) InFlightTxn(dest string) *InFlightTxn {
	var t InFlightTxn
	if r.getJSON(bFedTxn, []byte(dest), &t) != nil {
		return nil
	}
	return &t
}

// FedDest is dest's retry state, or nil when it is healthy.
func (r *ReadTx) FedDest(dest string) *FedDestState {
	var s FedDestState
	if r.getJSON(bFedDest, []byte(dest), &s) != nil {
		return nil
	}
	return &s
}

// countOutbox counts dest's PDU and EDU rows at or below upto, stopping
// early once either is over its transaction limit.
func (r *ReadTx) countOutbox(dest string, upto int64) (pdus, edus int) {
	pfx := prefix(dest)
	r.scan(bFedOutbox, pfx, func(k, v []byte) bool {
		if int64(getU64(k[len(pfx):])) > upto {
			return false
		}
		if gjson.GetBytes(v, "kind").Str == OutboxPDU {
			pdus++
		} else {
			edus++
		}
		return pdus <= FedMaxTxnPDUs && edus <= FedMaxTxnEDUs
	})
	return pdus, edus
}

// errFedConflict refuses a transaction change that does not match the one
// in flight.
func errFedConflict(format string, args ...any) *Error {
	return Errorf(http.StatusConflict, "M_UNKNOWN", format, args...)
}
