package fsm

import "encoding/json"

// Scans for the user directory: every account and every room, in key order.

// Users calls fn for each account (user ID order) until fn returns false.
func (r *ReadTx) Users(fn func(*UserRecord) bool) {
	r.scan(bUsers, nil, func(_, v []byte) bool {
		var u UserRecord
		if json.Unmarshal(v, &u) != nil {
			return true
		}
		return fn(&u)
	})
}

// RoomIDs calls fn for each room this server knows (room ID order) until fn
// returns false.
func (r *ReadTx) RoomIDs(fn func(roomID string) bool) {
	r.scan(bRooms, nil, func(k, _ []byte) bool { return fn(string(k)) })
}
