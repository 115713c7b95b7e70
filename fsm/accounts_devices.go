package fsm

import (
	"net/http"
	"strings"
)

// Write helpers shared by the account commands: devices and their tokens
// change together, so bTokens and bDevices never disagree.

// checkUserID is the minimal shape check Apply can make on its own; the
// proposer has already checked the full grammar.
func checkUserID(userID string) error {
	local, domain, ok := strings.Cut(strings.TrimPrefix(userID, "@"), ":")
	if !strings.HasPrefix(userID, "@") || !ok || local == "" || domain == "" || len(userID) > 255 ||
		strings.ContainsRune(userID, 0) {
		return Errorf(http.StatusBadRequest, "M_INVALID_USERNAME", "invalid user ID %q", userID)
	}
	return nil
}

// checkPasswordHash refuses what is not a bcrypt hash (the proposer's
// hashPassword output): a password must never enter the log or the store
// in clear (invariant 1), even through a proposer bug.
func checkPasswordHash(h string) error {
	if len(h) != 60 || !(strings.HasPrefix(h, "$2a$") || strings.HasPrefix(h, "$2b$") || strings.HasPrefix(h, "$2y$")) || h[6] != '$' {
		return errBadRequest("password_hash is not a bcrypt hash")
	}
	return nil
}

// checkNewDevice validates a device a command creates or re-keys, before
// anything is written.
func (w *WriteTx) checkNewDevice(d *NewDevice) error {
	if d.DeviceID == "" || strings.ContainsRune(d.DeviceID, 0) {
		return errBadRequest("invalid device_id")
	}
	if len(d.TokenHash) != 32 {
		return errBadRequest("token_hash must be a sha256 digest")
	}
	if w.get(bTokens, d.TokenHash) != nil {
		// A 256-bit random token seen twice: refuse rather than hand one
		// session to two devices.
		return Errorf(http.StatusInternalServerError, "M_UNKNOWN", "access token collision; retry")
	}
	return nil
}

// rekeyDevice stores d with nd's token as its only access token, removing
// the token it had before.
func (w *WriteTx) rekeyDevice(d *DeviceRecord, nd *NewDevice, ts int64) error {
	if len(d.TokenHash) > 0 {
		if err := w.del(bTokens, d.TokenHash); err != nil {
			return err
		}
	}
	d.TokenHash = nd.TokenHash
	d.LastSeenTS = ts
	if nd.IP != "" {
		d.LastSeenIP = nd.IP
	}
	if err := w.putJSON(bDevices, key(d.UserID, d.DeviceID), d); err != nil {
		return err
	}
	return w.put(bTokens, nd.TokenHash, key(d.UserID, d.DeviceID))
}

// deleteDevice removes a device and its access token; it reports whether
// the device existed.
func (w *WriteTx) deleteDevice(userID, deviceID string) (bool, error) {
	d, err := w.Device(userID, deviceID)
	if err != nil {
		return false, nil
	}
	if len(d.TokenHash) > 0 {
		if err := w.del(bTokens, d.TokenHash); err != nil {
			return false, err
		}
	}
	// A device ID that comes back later must not inherit the old device's
	// queued messages or transaction IDs.
	if err := w.deleteDeviceInbox(userID, deviceID); err != nil {
		return false, err
	}
	if err := w.deletePrefix(bTxns, prefix(userID, deviceID)); err != nil {
		return false, err
	}
	if err := w.deleteDevicePushers(userID, deviceID); err != nil {
		return false, err
	}
	if err := w.e2eeDeviceRemoved(userID, deviceID); err != nil {
		return false, err
	}
	return true, w.del(bDevices, key(userID, deviceID))
}

// deleteDevicesExcept removes every device of userID but keep (none if
// keep is ""), in device ID order.
func (w *WriteTx) deleteDevicesExcept(userID, keep string) ([]string, error) {
	var ids []string
	for _, d := range w.Devices(userID) {
		if d.DeviceID != keep {
			ids = append(ids, d.DeviceID)
		}
	}
	for _, id := range ids {
		if _, err := w.deleteDevice(userID, id); err != nil {
			return nil, err
		}
	}
	return ids, nil
}
