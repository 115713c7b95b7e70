package fsm

import (
	"encoding/json"
	"net/http"
	"strings"
)

// Receipts live in bReceipts under room \x00 type \x00 user \x00 thread
// ("" = unthreaded). A secondary index in the same bucket,
// \x00 "pos" \x00 room \x00 pos(8) -> primary key, lets /sync read the
// receipts changed after its token; room IDs start with '!', so the two key
// spaces never overlap.

// OpReceiptPut sets read receipts and/or the fully-read marker of a user in
// one room (POST /receipt and POST /read_markers).
const OpReceiptPut = "receipt.put"

// Receipt types.
const (
	ReceiptRead        = "m.read"
	ReceiptReadPrivate = "m.read.private"
	ReceiptFullyRead   = "m.fully_read"
)

// MaxReceiptsPerCommand bounds one OpReceiptPut (each receipt takes a
// stream position); the client API sends at most two.
const MaxReceiptsPerCommand = 16

// ReceiptPut is the payload of OpReceiptPut. The receipts' ts is the
// command's TS (the proposer's clock).
type ReceiptPut struct {
	RoomID    string        `json:"room_id"`
	UserID    string        `json:"user_id"`
	FullyRead string        `json:"fully_read,omitempty"` // event ID for m.fully_read
	Receipts  []ReceiptMark `json:"receipts,omitempty"`
	// Remote marks a receipt another server sent: it is not sent on.
	Remote bool `json:"remote,omitempty"`
}

// ReceiptMark is one receipt: m.read or m.read.private, optionally threaded.
type ReceiptMark struct {
	Type     string `json:"type"`
	EventID  string `json:"event_id"`
	ThreadID string `json:"thread_id,omitempty"`
}

// ReceiptRecord is a stored receipt.
type ReceiptRecord struct {
	EventID  string `json:"event_id"`
	EventPos int64  `json:"event_pos"` // the event's stream position, to refuse going back
	TS       int64  `json:"ts"`
	ThreadID string `json:"thread_id,omitempty"`
	Pos      int64  `json:"pos"`
}

func init() {
	register(OpReceiptPut, func(w *WriteTx, cmd *Command) (any, error) {
		c, err := decode[ReceiptPut](cmd)
		if err != nil {
			return nil, err
		}
		if len(c.Receipts) > MaxReceiptsPerCommand {
			return nil, errTooLarge("%d receipts in one command; at most %d", len(c.Receipts), MaxReceiptsPerCommand)
		}
		if err := w.checkRoomForUser(c.RoomID, c.UserID, true); err != nil {
			return nil, err
		}
		events := map[string]*EventRecord{}
		check := func(eventID string) error {
			ev, err := w.Event(eventID)
			if err != nil || ev.RoomID != c.RoomID {
				return errNotFound("unknown event %s in room %s", eventID, c.RoomID)
			}
			events[eventID] = ev
			return nil
		}
		for _, m := range c.Receipts {
			if m.Type != ReceiptRead && m.Type != ReceiptReadPrivate {
				return nil, Errorf(http.StatusBadRequest, "M_INVALID_PARAM", "unknown receipt type %q", m.Type)
			}
			if err := check(m.EventID); err != nil {
				return nil, err
			}
		}
		if c.FullyRead != "" {
			if err := check(c.FullyRead); err != nil {
				return nil, err
			}
		}
		for _, m := range c.Receipts {
			if err := w.putReceipt(c.RoomID, c.UserID, m, events[m.EventID].Pos, cmd.TS); err != nil {
				return nil, err
			}
			if err := w.federateReceipt(c, m, cmd.TS); err != nil {
				return nil, err
			}
		}
		if c.FullyRead != "" {
			return nil, w.putFullyRead(c.RoomID, c.UserID, c.FullyRead, events[c.FullyRead].Pos)
		}
		return nil, nil
	})
}

func receiptKey(roomID, rType, userID, threadID string) []byte {
	return key(roomID, rType, userID, threadID)
}

func receiptIndexPrefix(roomID string) []byte { return prefix("", "pos", roomID) }

func receiptIndexKey(roomID string, pos int64) []byte {
	return append(receiptIndexPrefix(roomID), u64(uint64(pos))...)
}

// putReceipt stores a receipt unless it would move back to an older event.
func (w *WriteTx) putReceipt(roomID, userID string, m ReceiptMark, eventPos, ts int64) error {
	k := receiptKey(roomID, m.Type, userID, m.ThreadID)
	var old ReceiptRecord
	if w.getJSON(bReceipts, k, &old) == nil {
		if old.EventPos > eventPos || (old.EventID == m.EventID && old.ThreadID == m.ThreadID) {
			return nil // never backwards; a repeat changes nothing
		}
		if err := w.del(bReceipts, receiptIndexKey(roomID, old.Pos)); err != nil {
			return err
		}
	}
	rec := ReceiptRecord{EventID: m.EventID, EventPos: eventPos, TS: ts, ThreadID: m.ThreadID, Pos: w.NextPos()}
	if err := w.putJSON(bReceipts, k, rec); err != nil {
		return err
	}
	if err := w.put(bReceipts, receiptIndexKey(roomID, rec.Pos), k); err != nil {
		return err
	}
	if m.Type == ReceiptReadPrivate {
		w.touchUser(userID) // nobody else sees it
	} else {
		w.touchRoom(roomID)
	}
	return nil
}

// putFullyRead moves the m.fully_read room account data forward.
func (w *WriteTx) putFullyRead(roomID, userID, eventID string, eventPos int64) error {
	if old, err := w.AccountData(userID, roomID, ReceiptFullyRead); err == nil {
		var prev struct {
			EventID string `json:"event_id"`
		}
		if json.Unmarshal(old.Content, &prev) == nil {
			if prev.EventID == eventID {
				return nil
			}
			if ev, err := w.Event(prev.EventID); err == nil && ev.Pos > eventPos {
				return nil
			}
		}
	}
	content, _ := json.Marshal(map[string]string{"event_id": eventID})
	return w.putAccountData(userID, roomID, ReceiptFullyRead, content)
}

// UserReceipt is a user's receipt of one type and thread ("" = unthreaded).
func (r *ReadTx) UserReceipt(roomID, userID, receiptType, threadID string) (*ReceiptRecord, bool) {
	var rec ReceiptRecord
	if r.getJSON(bReceipts, receiptKey(roomID, receiptType, userID, threadID), &rec) != nil {
		return nil, false
	}
	return &rec, true
}

type receiptContent struct {
	TS       int64  `json:"ts"`
	ThreadID string `json:"thread_id,omitempty"`
}

// ReceiptsSince is the m.receipt content of the room's receipts changed
// after since (all current ones when since <= 0), or nil when none.
// m.read.private receipts appear only for their owner, viewer.
func (r *ReadTx) ReceiptsSince(roomID, viewer string, since int64) json.RawMessage {
	out := map[string]map[string]map[string]receiptContent{}
	pfx := receiptIndexPrefix(roomID)
	start := pfx
	if since >= 0 {
		start = receiptIndexKey(roomID, since+1)
	}
	r.scanFrom(bReceipts, pfx, start, func(_, primary []byte) bool {
		parts := strings.SplitN(string(primary), "\x00", 4)
		if len(parts) != 4 {
			return true
		}
		rType, userID := parts[1], parts[2]
		if rType == ReceiptReadPrivate && userID != viewer {
			return true
		}
		var rec ReceiptRecord
		if r.getJSON(bReceipts, primary, &rec) != nil {
			return true
		}
		byType := out[rec.EventID]
		if byType == nil {
			byType = map[string]map[string]receiptContent{}
			out[rec.EventID] = byType
		}
		if byType[rType] == nil {
			byType[rType] = map[string]receiptContent{}
		}
		byType[rType][userID] = receiptContent{TS: rec.TS, ThreadID: rec.ThreadID}
		return true
	})
	if len(out) == 0 {
		return nil
	}
	raw, err := json.Marshal(out)
	if err != nil {
		return nil
	}
	return raw
}
