package fsm

import "slices"

// JoinedServers lists, sorted, the servers other than except with a user
// joined to the room: where the room's events and EDUs go. It scans the
// member keys of current state and reads memberships only for users of
// other servers, so a room of local users costs no decoding (this runs in
// Apply for every local event).
func (r *ReadTx) JoinedServers(roomID, except string) []string {
	pfx := prefix(roomID, "m.room.member")
	var out []string
	r.scan(bRoomState, pfx, func(k, _ []byte) bool {
		user := string(k[len(pfx):])
		server := ServerOfUser(user)
		if server == "" || server == except || slices.Contains(out, server) {
			return true
		}
		if m := r.Membership(user, roomID); m != nil && m.Membership == "join" {
			out = append(out, server)
		}
		return true
	})
	slices.Sort(out)
	return out
}

// HasJoinedMemberOf reports whether a user of server is joined to the room,
// reading memberships of that server's users only, until the first join.
func (r *ReadTx) HasJoinedMemberOf(roomID, server string) bool {
	pfx := prefix(roomID, "m.room.member")
	found := false
	r.scan(bRoomState, pfx, func(k, _ []byte) bool {
		user := string(k[len(pfx):])
		if ServerOfUser(user) != server {
			return true
		}
		if m := r.Membership(user, roomID); m != nil && m.Membership == "join" {
			found = true
			return false
		}
		return true
	})
	return found
}
