package fsm

import (
	"encoding/json"
)

// EventRecord is a stored room event: its PDU (redacted in place once a
// redaction applies) and where it sits in the stream.
type EventRecord struct {
	EventID         string          `json:"event_id"`
	RoomID          string          `json:"room_id"`
	Type            string          `json:"type"`
	StateKey        *string         `json:"state_key,omitempty"`
	Sender          string          `json:"sender"`
	TS              int64           `json:"ts"`
	Depth           int64           `json:"depth"`
	Pos             int64           `json:"pos"`
	PDU             json.RawMessage `json:"pdu"`
	Rejected        bool            `json:"rejected,omitempty"`
	RedactedBecause string          `json:"redacted_because,omitempty"`
	// TxnID and TxnDevice say which device sent it with which txnId; only
	// that device sees unsigned.transaction_id.
	TxnID     string `json:"txn_id,omitempty"`
	TxnDevice string `json:"txn_device,omitempty"`
	// PrevState is the state event this one replaced (unsigned.prev_content).
	PrevState string `json:"prev_state,omitempty"`
	// Federated events that are not (or not yet) part of the live timeline:
	// Outlier (auth chain, state, backfill without state), SoftFailed
	// (allowed by its own state, not by the current one), Superseded (state
	// that resolution did not keep), Late (a message older than what
	// clients have seen; After is the event it follows).
	Outlier    bool   `json:"outlier,omitempty"`
	SoftFailed bool   `json:"soft_failed,omitempty"`
	Superseded bool   `json:"superseded,omitempty"`
	Late       bool   `json:"late,omitempty"`
	After      string `json:"after,omitempty"`

	skipRedaction bool // a federated redaction its sender may not carry out
}

// IsState reports whether the event has a state key.
func (e *EventRecord) IsState() bool { return e.StateKey != nil }

// RoomRecord is a room's head: version and forward extremities.
type RoomRecord struct {
	RoomID      string   `json:"room_id"`
	Version     string   `json:"version"`
	Creator     string   `json:"creator"`
	Extremities []string `json:"extremities"`
	Depth       int64    `json:"depth"`
	CreatedPos  int64    `json:"created_pos"`
	LastPos     int64    `json:"last_pos"`
	Published   bool     `json:"published,omitempty"`
	// BackfillSeq counts events backfilled over federation: history older
	// than the first stored event, kept in its own stream (the k-th is at
	// sequence k, older as k grows; its EventRecord.Pos is -k).
	BackfillSeq int64 `json:"backfill_seq,omitempty"`
	// LatestTS is the newest origin_server_ts in the live timeline.
	LatestTS int64 `json:"latest_ts,omitempty"`
}

// MembershipRecord is a user's current membership in one room.
type MembershipRecord struct {
	Membership string `json:"membership"`
	EventID    string `json:"event_id"`
	Pos        int64  `json:"pos"`
}

// StateChange is one entry of a room's state log: at Pos, (Type, StateKey)
// became EventID.
type StateChange struct {
	Type     string `json:"type"`
	StateKey string `json:"state_key"`
	EventID  string `json:"event_id"`
}

// TxnKey scopes a transaction ID to a device and endpoint (invariant 4).
type TxnKey struct {
	UserID   string `json:"user_id"`
	DeviceID string `json:"device_id"`
	Endpoint string `json:"endpoint"`
	TxnID    string `json:"txn_id"`
}

func (k *TxnKey) key() []byte { return key(k.UserID, k.DeviceID, k.Endpoint, k.TxnID) }

// Event reads one event.
func (r *ReadTx) Event(eventID string) (*EventRecord, error) {
	var e EventRecord
	if err := r.getJSON(bEvents, []byte(eventID), &e); err != nil {
		return nil, err
	}
	return &e, nil
}

// Room reads a room's head record.
func (r *ReadTx) Room(roomID string) (*RoomRecord, error) {
	var rr RoomRecord
	if err := r.getJSON(bRooms, []byte(roomID), &rr); err != nil {
		return nil, err
	}
	return &rr, nil
}

// StateEventID is the current state event for (type, state key), or "".
func (r *ReadTx) StateEventID(roomID, evType, stateKey string) string {
	return string(r.get(bRoomState, key(roomID, evType, stateKey)))
}

// StateEvent reads the current state event for (type, state key).
func (r *ReadTx) StateEvent(roomID, evType, stateKey string) (*EventRecord, error) {
	id := r.StateEventID(roomID, evType, stateKey)
	if id == "" {
		return nil, ErrNotFound
	}
	return r.Event(id)
}

// CurrentState lists the room's current state event IDs keyed by
// (type, state key), optionally only of one type.
func (r *ReadTx) CurrentState(roomID string, onlyType ...string) map[[2]string]string {
	out := map[[2]string]string{}
	pfx := prefix(roomID)
	if len(onlyType) == 1 {
		pfx = prefix(roomID, onlyType[0])
	}
	r.scan(bRoomState, pfx, func(k, v []byte) bool {
		rest := string(k[len(prefix(roomID)):])
		for i := 0; i < len(rest); i++ {
			if rest[i] == 0 {
				out[[2]string{rest[:i], rest[i+1:]}] = string(v)
				break
			}
		}
		return true
	})
	return out
}

// StateAt replays the room's state log up to and including pos.
func (r *ReadTx) StateAt(roomID string, pos int64) map[[2]string]string {
	out := map[[2]string]string{}
	pfx := prefix(roomID)
	r.scan(bStateLog, pfx, func(k, v []byte) bool {
		if int64(getU64(k[len(pfx):])) > pos {
			return false
		}
		var sc StateChange
		if json.Unmarshal(v, &sc) == nil {
			if sc.EventID == "" { // resolution dropped the key
				delete(out, [2]string{sc.Type, sc.StateKey})
			} else {
				out[[2]string{sc.Type, sc.StateKey}] = sc.EventID
			}
		}
		return true
	})
	return out
}

// Membership is user's current membership in room (nil if none).
func (r *ReadTx) Membership(userID, roomID string) *MembershipRecord {
	var m MembershipRecord
	if r.getJSON(bMembership, key(userID, roomID), &m) != nil {
		return nil
	}
	return &m
}

// UserRooms lists every room the user has a membership in.
func (r *ReadTx) UserRooms(userID string) map[string]MembershipRecord {
	out := map[string]MembershipRecord{}
	pfx := prefix(userID)
	r.scan(bMembership, pfx, func(k, v []byte) bool {
		var m MembershipRecord
		if json.Unmarshal(v, &m) == nil {
			out[string(k[len(pfx):])] = m
		}
		return true
	})
	return out
}

// RoomMembers maps user ID to membership from current state.
func (r *ReadTx) RoomMembers(roomID string) map[string]string {
	out := map[string]string{}
	for k := range r.CurrentState(roomID, "m.room.member") {
		if m := r.Membership(k[1], roomID); m != nil {
			out[k[1]] = m.Membership
		}
	}
	return out
}

// RoomEvents walks the room's timeline in stream order. Forward (dir 'f')
// yields positions > from; backward ('b') positions < from. It stops after
// limit events or when fn returns false.
func (r *ReadTx) RoomEvents(roomID string, from int64, forward bool, limit int, fn func(*EventRecord) bool) {
	pfx := prefix(roomID)
	n := 0
	visit := func(k, v []byte) bool {
		if limit > 0 && n >= limit {
			return false
		}
		e, err := r.Event(string(v))
		if err != nil {
			return true
		}
		n++
		return fn(e)
	}
	if forward {
		start := append(append([]byte{}, pfx...), u64(uint64(from+1))...)
		if from < 0 {
			start = pfx
		}
		r.scanFrom(bRoomStream, pfx, start, visit)
		return
	}
	end := append(append([]byte{}, pfx...), u64(uint64(from))...)
	r.scanBack(bRoomStream, pfx, end, visit)
}

// TxnResult is the stored answer of an earlier request with this txn key.
func (r *ReadTx) TxnResult(k *TxnKey) json.RawMessage {
	v := r.get(bTxns, k.key())
	if v == nil {
		return nil
	}
	return append(json.RawMessage{}, v...)
}

// AliasRoom resolves an alias to its room ID.
func (r *ReadTx) AliasRoom(alias string) (roomID, creator string, ok bool) {
	var a aliasRecord
	if r.getJSON(bAliases, []byte(alias), &a) != nil {
		return "", "", false
	}
	return a.RoomID, a.Creator, true
}

// RoomAliases lists aliases pointing at the room, sorted.
func (r *ReadTx) RoomAliases(roomID string) []string {
	out := []string{}
	r.scan(bAliases, nil, func(k, v []byte) bool {
		var a aliasRecord
		if json.Unmarshal(v, &a) == nil && a.RoomID == roomID {
			out = append(out, string(k))
		}
		return true
	})
	return out
}

// PublishedRooms lists rooms in the public directory.
func (r *ReadTx) PublishedRooms() []string {
	out := []string{}
	r.scan(bRooms, nil, func(k, v []byte) bool {
		var rr RoomRecord
		if json.Unmarshal(v, &rr) == nil && rr.Published {
			out = append(out, rr.RoomID)
		}
		return true
	})
	return out
}

// Forgotten reports whether user forgot room.
func (r *ReadTx) Forgotten(userID, roomID string) bool {
	return r.get(bForgotten, key(userID, roomID)) != nil
}

type aliasRecord struct {
	RoomID  string `json:"room_id"`
	Creator string `json:"creator"`
}
