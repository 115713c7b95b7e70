package fsm

import (
	"encoding/json"

	"github.com/tidwall/gjson"
)

// Reads for /sync that walk a room's state log from a stream position, so a
// sync can derive state at a point without replaying the whole log.

// StateChangesFrom calls fn for every state log entry of the room with
// pos >= from, in stream order, until fn returns false.
func (r *ReadTx) StateChangesFrom(roomID string, from int64, fn func(pos int64, sc StateChange) bool) {
	pfx := prefix(roomID)
	if from < 0 {
		from = 0
	}
	start := append(append([]byte{}, pfx...), u64(uint64(from))...)
	r.scanFrom(bStateLog, pfx, start, func(k, v []byte) bool {
		var sc StateChange
		if json.Unmarshal(v, &sc) != nil {
			return true
		}
		return fn(int64(getU64(k[len(pfx):])), sc)
	})
}

// HasStateChangesFrom reports whether the room's state changed at or after
// pos: a single seek.
func (r *ReadTx) HasStateChangesFrom(roomID string, from int64) bool {
	found := false
	pfx := prefix(roomID)
	if from < 0 {
		from = 0
	}
	start := append(append([]byte{}, pfx...), u64(uint64(from))...)
	r.scanFrom(bStateLog, pfx, start, func(k, v []byte) bool {
		found = true
		return false
	})
	return found
}

// RoomStreamHasBetween reports whether the room's timeline has an event
// with from < pos < before, without reading it.
func (r *ReadTx) RoomStreamHasBetween(roomID string, from, before int64) bool {
	if before <= from+1 {
		return false
	}
	pfx := prefix(roomID)
	found := false
	end := append(append([]byte{}, pfx...), u64(uint64(before))...)
	r.scanBack(bRoomStream, pfx, end, func(k, _ []byte) bool {
		found = int64(getU64(k[len(pfx):])) > from
		return false
	})
	return found
}

// RoomLastPos is the position of the room's newest event (0 when the room
// is unknown), read without decoding the whole record: a long-polling sync
// asks it of every room on every wake-up.
func (r *ReadTx) RoomLastPos(roomID string) int64 {
	raw := r.get(bRooms, []byte(roomID))
	if raw == nil {
		return 0
	}
	return gjson.GetBytes(raw, "last_pos").Int()
}

// SyncUserRooms is UserRooms with a lighter decoder, for the same reason.
func (r *ReadTx) SyncUserRooms(userID string) map[string]MembershipRecord {
	out := map[string]MembershipRecord{}
	pfx := prefix(userID)
	r.scan(bMembership, pfx, func(k, v []byte) bool {
		f := gjson.GetManyBytes(v, "membership", "event_id", "pos")
		out[string(k[len(pfx):])] = MembershipRecord{Membership: f[0].Str, EventID: f[1].Str, Pos: f[2].Int()}
		return true
	})
	return out
}
