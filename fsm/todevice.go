package fsm

import (
	"encoding/json"
	"sort"
	"strings"
)

// To-device messages are queued per device under
// user \x00 device \x00 pos(8) until the device acknowledges them (its /sync
// since token passes them), then deleted by OpToDeviceAck.

// To-device commands.
const (
	OpToDeviceSend = "to_device.send"
	OpToDeviceAck  = "to_device.ack"
)

// ToDeviceEndpoint scopes sendToDevice transaction IDs.
const ToDeviceEndpoint = "sendToDevice"

// ToDeviceSend queues one event type's messages: Messages maps user ID to
// device ID (or "*", all the user's devices) to content. Devices unknown
// here (including remote users') are skipped.
type ToDeviceSend struct {
	Sender   string                                `json:"sender"`
	Type     string                                `json:"type"`
	Messages map[string]map[string]json.RawMessage `json:"messages"`
	Txn      *TxnKey                               `json:"txn,omitempty"`
	// Remote marks messages another server sent: delivered, not sent on.
	Remote bool `json:"remote,omitempty"`
}

// ToDeviceAck acknowledges a device's messages up to and including UpTo.
type ToDeviceAck struct {
	UserID   string `json:"user_id"`
	DeviceID string `json:"device_id"`
	UpTo     int64  `json:"up_to"`
}

// ToDeviceMessage is one queued message for a device.
type ToDeviceMessage struct {
	Sender  string          `json:"sender"`
	Type    string          `json:"type"`
	Content json.RawMessage `json:"content"`
	Pos     int64           `json:"pos"`
}

func init() {
	register(OpToDeviceSend, applyToDeviceSend)
	register(OpToDeviceAck, func(w *WriteTx, cmd *Command) (any, error) {
		c, err := decode[ToDeviceAck](cmd)
		if err != nil {
			return nil, err
		}
		// A NUL would make the key prefix reach into another device's
		// queue.
		if c.UserID == "" || c.DeviceID == "" || strings.ContainsRune(c.UserID+c.DeviceID, 0) {
			return nil, errBadRequest("user_id and device_id are required")
		}
		return nil, w.ackToDevice(c.UserID, c.DeviceID, c.UpTo)
	})
}

func applyToDeviceSend(w *WriteTx, cmd *Command) (any, error) {
	c, err := decode[ToDeviceSend](cmd)
	if err != nil {
		return nil, err
	}
	if c.Txn != nil && w.TxnResult(c.Txn) != nil {
		return nil, nil // a retry: everything was delivered the first time
	}
	if c.Type == "" {
		return nil, errBadRequest("to-device event type is empty")
	}
	for _, userID := range sortedStringKeys(c.Messages) {
		devices := c.Messages[userID]
		for _, target := range sortedStringKeys(devices) {
			if !isJSONObject(devices[target]) {
				return nil, errBadRequest("to-device content must be a JSON object")
			}
		}
	}
	// One position for the whole command: each (user, device) gets at most
	// one message from it, so the keys stay unique. Sorted iteration keeps
	// Apply deterministic; "*" sorts before device IDs, so an explicit
	// device's message wins over the wildcard's.
	pos := w.NextPos()
	if err := w.federateToDevice(c, pos); err != nil {
		return nil, err
	}
	for _, userID := range sortedStringKeys(c.Messages) {
		devices := c.Messages[userID]
		delivered := false
		for _, target := range sortedStringKeys(devices) {
			var ids []string
			if target == "*" {
				for _, d := range w.Devices(userID) {
					ids = append(ids, d.DeviceID)
				}
			} else if _, err := w.Device(userID, target); err == nil {
				ids = []string{target}
			}
			msg := ToDeviceMessage{Sender: c.Sender, Type: c.Type, Content: compactJSON(devices[target]), Pos: pos}
			for _, deviceID := range ids {
				if err := w.putJSON(bToDevice, toDeviceKey(userID, deviceID, pos), msg); err != nil {
					return nil, err
				}
				delivered = true
			}
		}
		if delivered {
			w.touchUser(userID)
		}
	}
	if c.Txn != nil {
		if err := w.put(bTxns, c.Txn.key(), []byte("{}")); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

func toDeviceKey(userID, deviceID string, pos int64) []byte {
	return append(prefix(userID, deviceID), u64(uint64(pos))...)
}

// ackToDevice deletes the device's messages at or below upTo.
func (w *WriteTx) ackToDevice(userID, deviceID string, upTo int64) error {
	var done [][]byte
	pfx := prefix(userID, deviceID)
	w.scan(bToDevice, pfx, func(k, _ []byte) bool {
		if int64(getU64(k[len(pfx):])) > upTo {
			return false
		}
		done = append(done, append([]byte{}, k...))
		return true
	})
	for _, k := range done {
		if err := w.del(bToDevice, k); err != nil {
			return err
		}
	}
	return nil
}

// deleteDeviceInbox drops every queued message of a device; for the device
// deletion commands.
func (w *WriteTx) deleteDeviceInbox(userID, deviceID string) error {
	return w.ackToDevice(userID, deviceID, 1<<63-1)
}

// ToDeviceSince lists the device's queued messages after since, oldest
// first, at most limit of them (limit <= 0: no limit).
func (r *ReadTx) ToDeviceSince(userID, deviceID string, since int64, limit int) []ToDeviceMessage {
	var out []ToDeviceMessage
	pfx := prefix(userID, deviceID)
	start := pfx
	if since >= 0 {
		start = toDeviceKey(userID, deviceID, since+1)
	}
	r.scanFrom(bToDevice, pfx, start, func(_, v []byte) bool {
		if limit > 0 && len(out) >= limit {
			return false
		}
		var m ToDeviceMessage
		if json.Unmarshal(v, &m) == nil {
			out = append(out, m)
		}
		return true
	})
	return out
}

func sortedStringKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
