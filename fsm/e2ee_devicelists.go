package fsm

import (
	"sort"
)

// Device list tracking: every change to a user's device keys, cross-signing
// keys or set of devices takes a stream position. Only the latest change of
// each user is kept (bE2EDeviceLists pos -> user, bE2EDeviceListPos user ->
// pos): /sync and /keys/changes ask "who changed after X", and a user who
// changed twice after X is listed once either way.

// markDeviceListChanged records a change of userID's device list at a new
// position and wakes everyone who shares a room with them.
//
// A command that changes the list of the same user several times (logout
// of every device, say) records it once: its positions all fall between
// the same two sync tokens, and each record scans the user's rooms.
func (w *WriteTx) markDeviceListChanged(userID string) error {
	if w.deviceListsMarked[userID] {
		return nil
	}
	if w.deviceListsMarked == nil {
		w.deviceListsMarked = map[string]bool{}
	}
	w.deviceListsMarked[userID] = true
	if old := w.get(bE2EDeviceListPos, []byte(userID)); old != nil {
		if err := w.del(bE2EDeviceLists, old); err != nil {
			return err
		}
	}
	pos := u64(uint64(w.NextPos()))
	if err := w.put(bE2EDeviceLists, pos, []byte(userID)); err != nil {
		return err
	}
	if err := w.put(bE2EDeviceListPos, []byte(userID), pos); err != nil {
		return err
	}
	w.touchUser(userID)
	rooms := w.UserRooms(userID)
	roomIDs := make([]string, 0, len(rooms))
	for roomID, m := range rooms {
		if m.Membership == "join" {
			roomIDs = append(roomIDs, roomID)
		}
	}
	sort.Strings(roomIDs)
	for _, roomID := range roomIDs {
		for member, membership := range w.RoomMembers(roomID) {
			if membership == "join" {
				w.touchUser(member)
			}
		}
	}
	return nil
}

// DeviceListChangesSince lists, sorted, the users whose device list changed
// at a position after since.
func (r *ReadTx) DeviceListChangesSince(since int64) []string {
	var out []string
	start := u64(0)
	if since >= 0 {
		start = u64(uint64(since) + 1)
	}
	r.scanFrom(bE2EDeviceLists, nil, start, func(_, v []byte) bool {
		out = append(out, string(v))
		return true
	})
	sort.Strings(out)
	return out
}

// DeviceListPos is the position of the user's latest device list change
// (0 if none).
func (r *ReadTx) DeviceListPos(userID string) int64 {
	return int64(getU64(r.get(bE2EDeviceListPos, []byte(userID))))
}

// e2eeDeviceAdded records that userID has a new device, so room-mates
// refetch the list. For the account commands (login, register).
func (w *WriteTx) e2eeDeviceAdded(userID string) error {
	return w.markDeviceListChanged(userID)
}

// e2eeDeviceRemoved drops a deleted device's keys and signatures and, if it
// had published keys, records the device list change. For deleteDevice,
// before the device record goes.
func (w *WriteTx) e2eeDeviceRemoved(userID, deviceID string) error {
	if w.get(bE2EDeviceKeys, key(userID, deviceID)) == nil && !w.hasPrefix(bE2EOTK, prefix(userID, deviceID)) &&
		!w.hasPrefix(bE2EFallback, prefix(userID, deviceID)) {
		return nil
	}
	_, rec, fresh := w.e2eeFresh(userID, deviceID)
	if err := w.wipeDeviceE2EE(userID, deviceID); err != nil {
		return err
	}
	if fresh && rec.Keys != nil {
		return w.markDeviceListChanged(userID)
	}
	return nil
}

func (r *ReadTx) hasPrefix(bucket, pfx []byte) bool {
	found := false
	r.scan(bucket, pfx, func(_, _ []byte) bool {
		found = true
		return false
	})
	return found
}
