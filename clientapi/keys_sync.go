package clientapi

import (
	"sort"

	"github.com/tidwall/gjson"

	"github.com/ganglion/ganglion/fsm"
)

// The end-to-end encryption parts of /sync (device_lists,
// device_one_time_keys_count, device_unused_fallback_key_types), and the
// device list delta /keys/changes shares with it.

// maxMemberChain bounds the walk back through a member's earlier
// membership events.
const maxMemberChain = 1000

// e2eeSync fills the e2ee fields of a /sync response inside its read
// transaction (since is -1 for an initial sync); device_lists only for an
// incremental sync, as the spec says. A non-empty device_lists ends a
// long-poll.
func e2eeSync(_ *API, rt *fsm.ReadTx, c *Caller, since int64, resp *syncResponse) {
	resp.OTKCounts = otkCounts(rt, c.UserID, c.DeviceID)
	resp.FallbackKeyTypes = rt.UnusedFallbackKeyTypes(c.UserID, c.DeviceID)
	if since < 0 {
		return
	}
	resp.DeviceLists.Changed, resp.DeviceLists.Left = deviceListDelta(rt, c.UserID, rt.UserRooms(c.UserID), since)
}

// deviceListDelta lists, sorted, the users whose device lists user should
// refetch since the position (changed: their keys changed, or they newly
// share a room with user) and those who no longer share any room (left).
// Sharing means both are joined.
func deviceListDelta(rt *fsm.ReadTx, user string, myRooms map[string]fsm.MembershipRecord, since int64) (changed, left []string) {
	shared := map[string]bool{}
	sharesNow := func(u string) bool {
		if u == user {
			return true
		}
		if v, ok := shared[u]; ok {
			return v
		}
		res := false
		for roomID, m := range rt.UserRooms(u) {
			if mine, ok := myRooms[roomID]; ok && m.Membership == "join" && mine.Membership == "join" {
				res = true
				break
			}
		}
		shared[u] = res
		return res
	}
	changedSet, maybeLeft := map[string]bool{}, map[string]bool{}
	for _, u := range rt.DeviceListChangesSince(since) {
		if sharesNow(u) {
			changedSet[u] = true
		}
	}
	for roomID, mine := range myRooms {
		switch mine.Membership {
		case "join":
			if mine.Pos > since && !joinedAt(rt, mine.EventID, since) {
				// A room we newly joined: everyone in it may be new to us.
				for u, m := range rt.RoomMembers(roomID) {
					if m == "join" && u != user {
						changedSet[u] = true
					}
				}
				continue
			}
			seen := map[string]bool{}
			rt.StateChangesFrom(roomID, since+1, func(_ int64, sc fsm.StateChange) bool {
				u := sc.StateKey
				if sc.Type != "m.room.member" || u == user || seen[u] {
					return true
				}
				seen[u] = true
				m := rt.Membership(u, roomID)
				switch {
				case m != nil && m.Membership == "join":
					if !joinedAt(rt, m.EventID, since) {
						changedSet[u] = true
					}
				default:
					maybeLeft[u] = true
				}
				return true
			})
		case "leave", "ban":
			if mine.Pos > since && joinedAt(rt, mine.EventID, since) {
				for u, m := range rt.RoomMembers(roomID) {
					if m == "join" {
						maybeLeft[u] = true
					}
				}
			}
		}
	}
	changed, left = []string{}, []string{}
	for u := range changedSet {
		if sharesNow(u) {
			changed = append(changed, u)
		}
	}
	for u := range maybeLeft {
		if !sharesNow(u) {
			left = append(left, u)
		}
	}
	sort.Strings(changed)
	sort.Strings(left)
	return changed, left
}

// joinedAt reports whether the membership that eventID ended was "join" at
// the position: it walks back through the earlier member events.
func joinedAt(rt *fsm.ReadTx, eventID string, pos int64) bool {
	for i := 0; eventID != "" && i < maxMemberChain; i++ {
		ev, err := rt.Event(eventID)
		if err != nil {
			return false
		}
		if ev.Pos <= pos {
			return gjson.GetBytes(ev.PDU, "content.membership").Str == "join"
		}
		eventID = ev.PrevState
	}
	return false
}
