package fsm

import (
	"bytes"
	"encoding/json"
	"sort"
	"strings"
)

// Account data: per-user key/value JSON, global or per room. Each entry
// carries the stream position of its last change, indexed in bUserStream
// (user \x00 pos -> "account_data" \x00 room \x00 type) so /sync finds the
// changes after its token without scanning every entry.

// OpAccountDataPut stores one account-data entry.
const OpAccountDataPut = "account_data.put"

// AccountDataRecord is one account-data entry of a user, global or per room.
type AccountDataRecord struct {
	Type    string          `json:"type"`
	Content json.RawMessage `json:"content"`
	Pos     int64           `json:"pos"`
}

// AccountDataPut sets one entry; RoomID "" is the global scope. Server-managed
// types (m.fully_read, m.push_rules) are refused by the HTTP handler, not
// here, so that the server's own commands can write them through this op.
type AccountDataPut struct {
	UserID  string          `json:"user_id"`
	RoomID  string          `json:"room_id,omitempty"`
	Type    string          `json:"type"`
	Content json.RawMessage `json:"content"`
}

const userStreamAccountData = "account_data"

func init() {
	register(OpAccountDataPut, func(w *WriteTx, cmd *Command) (any, error) {
		c, err := decode[AccountDataPut](cmd)
		if err != nil {
			return nil, err
		}
		if c.Type == "" {
			return nil, errBadRequest("account data type is empty")
		}
		if !isJSONObject(c.Content) {
			return nil, errBadRequest("account data content must be a JSON object")
		}
		if _, err := w.User(c.UserID); err != nil {
			return nil, errNotFound("unknown user %s", c.UserID)
		}
		if c.RoomID != "" {
			if err := w.checkRoomForUser(c.RoomID, c.UserID, false); err != nil {
				return nil, err
			}
		}
		return nil, w.putAccountData(c.UserID, c.RoomID, c.Type, c.Content)
	})
}

// checkRoomForUser refuses unknown rooms (404) and users with no membership
// in them (403); joinedOnly demands a current join.
func (w *WriteTx) checkRoomForUser(roomID, userID string, joinedOnly bool) error {
	if _, err := w.Room(roomID); err != nil {
		return errNotFound("unknown room %s", roomID)
	}
	m := w.Membership(userID, roomID)
	if m == nil || (joinedOnly && m.Membership != "join") {
		return errForbidden("%s is not in room %s", userID, roomID)
	}
	return nil
}

// putAccountData writes the entry at a new position and moves its index.
func (w *WriteTx) putAccountData(userID, roomID, evType string, content json.RawMessage) error {
	if old, err := w.AccountData(userID, roomID, evType); err == nil {
		if err := w.del(bUserStream, userStreamKey(userID, old.Pos)); err != nil {
			return err
		}
	}
	rec := AccountDataRecord{Type: evType, Content: compactJSON(content), Pos: w.NextPos()}
	if err := w.putJSON(bAccountData, key(userID, roomID, evType), rec); err != nil {
		return err
	}
	w.touchUser(userID)
	return w.put(bUserStream, userStreamKey(userID, rec.Pos), key(userStreamAccountData, roomID, evType))
}

func userStreamKey(userID string, pos int64) []byte {
	return append(prefix(userID), u64(uint64(pos))...)
}

// AccountData reads one entry; roomID "" is the global scope.
func (r *ReadTx) AccountData(userID, roomID, evType string) (*AccountDataRecord, error) {
	var rec AccountDataRecord
	if err := r.getJSON(bAccountData, key(userID, roomID, evType), &rec); err != nil {
		return nil, err
	}
	return &rec, nil
}

// AccountDataSince lists the entries changed after since (all of them when
// since <= 0), each scope sorted by type.
func (r *ReadTx) AccountDataSince(userID string, since int64) (global []AccountDataRecord, rooms map[string][]AccountDataRecord) {
	add := func(roomID string, rec AccountDataRecord) {
		if roomID == "" {
			global = append(global, rec)
			return
		}
		if rooms == nil {
			rooms = map[string][]AccountDataRecord{}
		}
		rooms[roomID] = append(rooms[roomID], rec)
	}
	pfx := prefix(userID)
	if since <= 0 {
		r.scan(bAccountData, pfx, func(k, v []byte) bool {
			roomID, _, ok := strings.Cut(string(k[len(pfx):]), "\x00")
			var rec AccountDataRecord
			if ok && json.Unmarshal(v, &rec) == nil {
				add(roomID, rec)
			}
			return true
		})
		return global, rooms // key order is already type order
	}
	r.scanFrom(bUserStream, pfx, userStreamKey(userID, since+1), func(_, v []byte) bool {
		parts := strings.SplitN(string(v), "\x00", 3)
		if len(parts) != 3 || parts[0] != userStreamAccountData {
			return true
		}
		if rec, err := r.AccountData(userID, parts[1], parts[2]); err == nil {
			add(parts[1], *rec)
		}
		return true
	})
	byType := func(s []AccountDataRecord) {
		sort.Slice(s, func(i, j int) bool { return s[i].Type < s[j].Type })
	}
	byType(global)
	for _, s := range rooms {
		byType(s)
	}
	return global, rooms
}

func isJSONObject(raw json.RawMessage) bool {
	var obj map[string]json.RawMessage
	return json.Unmarshal(raw, &obj) == nil && obj != nil
}

// compactJSON drops insignificant whitespace so stored bytes do not depend
// on how the client formatted its body.
func compactJSON(raw json.RawMessage) json.RawMessage {
	var buf bytes.Buffer
	if json.Compact(&buf, raw) != nil {
		return raw
	}
	return buf.Bytes()
}
