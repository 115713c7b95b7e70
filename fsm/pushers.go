package fsm

import (
	"encoding/json"
	"net/http"
	"strings"
	"unicode/utf8"
)

// Pushers live in bPushers under user \x00 app_id \x00 pushkey. An index in
// the same bucket, \x00 "key" \x00 app_id \x00 pushkey \x00 user -> "",
// finds the other users' pushers with the same app_id and pushkey (which
// a non-append set removes); user IDs start with '@', so the two key
// spaces never overlap.

// OpPusherSet creates, replaces or deletes one pusher (POST /pushers/set).
const OpPusherSet = "pusher.set"

// Limits from pusher.yaml.
const (
	MaxPushkeyBytes = 512
	MaxAppIDChars   = 64
)

var bPushers = []byte("pushers") // user \x00 app_id \x00 pushkey -> PusherRecord

// PusherRecord is a stored pusher. DeviceID is the device that set it: its
// pushers go when the device does (password change, logout, deletion).
type PusherRecord struct {
	Pushkey           string          `json:"pushkey"`
	Kind              string          `json:"kind"`
	AppID             string          `json:"app_id"`
	AppDisplayName    string          `json:"app_display_name"`
	DeviceDisplayName string          `json:"device_display_name"`
	ProfileTag        string          `json:"profile_tag,omitempty"`
	Lang              string          `json:"lang"`
	Data              json.RawMessage `json:"data"`
	DeviceID          string          `json:"device_id,omitempty"`
	TS                int64           `json:"ts"`
}

// PusherSet is the payload of OpPusherSet. Delete removes the pusher (the
// request's kind was null); otherwise Pusher is stored, and unless Append
// the same app_id and pushkey is removed from every other user.
type PusherSet struct {
	UserID string       `json:"user_id"`
	Pusher PusherRecord `json:"pusher"`
	Delete bool         `json:"delete,omitempty"`
	Append bool         `json:"append,omitempty"`
}

func init() {
	register(OpPusherSet, applyPusherSet)
}

func applyPusherSet(w *WriteTx, cmd *Command) (any, error) {
	c, err := decode[PusherSet](cmd)
	if err != nil {
		return nil, err
	}
	p := &c.Pusher
	if _, err := w.User(c.UserID); err != nil {
		return nil, errNotFound("unknown user %s", c.UserID)
	}
	if err := CheckPusherKey(p.AppID, p.Pushkey); err != nil {
		return nil, err
	}
	if c.Delete {
		return nil, w.deletePusher(c.UserID, p.AppID, p.Pushkey)
	}
	if p.Kind == "" || !isJSONObject(p.Data) {
		return nil, Errorf(http.StatusBadRequest, "M_MISSING_PARAM", "kind and data are required")
	}
	if !c.Append {
		var others []string
		pfx := pusherIndexPrefix(p.AppID, p.Pushkey)
		w.scan(bPushers, pfx, func(k, _ []byte) bool {
			if u := string(k[len(pfx):]); u != c.UserID {
				others = append(others, u)
			}
			return true
		})
		for _, u := range others {
			if err := w.deletePusher(u, p.AppID, p.Pushkey); err != nil {
				return nil, err
			}
		}
	}
	p.TS = cmd.TS
	p.Data = compactJSON(p.Data)
	if err := w.putJSON(bPushers, key(c.UserID, p.AppID, p.Pushkey), p); err != nil {
		return nil, err
	}
	return nil, w.put(bPushers, pusherIndexKey(p.AppID, p.Pushkey, c.UserID), []byte{})
}

// CheckPusherKey validates app_id and pushkey as pusher.yaml limits them;
// NUL is refused too, as it separates key parts.
func CheckPusherKey(appID, pushkey string) *Error {
	switch {
	case appID == "" || pushkey == "":
		return Errorf(http.StatusBadRequest, "M_MISSING_PARAM", "app_id and pushkey are required")
	case utf8.RuneCountInString(appID) > MaxAppIDChars:
		return errInvalidParam("app_id is longer than %d characters", MaxAppIDChars)
	case len(pushkey) > MaxPushkeyBytes:
		return errInvalidParam("pushkey is longer than %d bytes", MaxPushkeyBytes)
	case strings.ContainsRune(appID, 0) || strings.ContainsRune(pushkey, 0):
		return errInvalidParam("app_id and pushkey may not contain NUL")
	}
	return nil
}

func pusherIndexPrefix(appID, pushkey string) []byte { return prefix("", "key", appID, pushkey) }

func pusherIndexKey(appID, pushkey, userID string) []byte {
	return append(pusherIndexPrefix(appID, pushkey), userID...)
}

// deletePusher removes one pusher and its index entry (absent is fine).
func (w *WriteTx) deletePusher(userID, appID, pushkey string) error {
	if err := w.del(bPushers, key(userID, appID, pushkey)); err != nil {
		return err
	}
	return w.del(bPushers, pusherIndexKey(appID, pushkey, userID))
}

// deleteDevicePushers removes the pushers a device set; the accounts
// commands call it when they delete the device.
func (w *WriteTx) deleteDevicePushers(userID, deviceID string) error {
	var gone []PusherRecord
	for _, p := range w.Pushers(userID) {
		if p.DeviceID == deviceID {
			gone = append(gone, p)
		}
	}
	for _, p := range gone {
		if err := w.deletePusher(userID, p.AppID, p.Pushkey); err != nil {
			return err
		}
	}
	return nil
}

// Pushers lists a user's pushers by app_id, then pushkey.
func (r *ReadTx) Pushers(userID string) []PusherRecord {
	out := []PusherRecord{}
	r.scan(bPushers, prefix(userID), func(_, v []byte) bool {
		var p PusherRecord
		if json.Unmarshal(v, &p) == nil {
			out = append(out, p)
		}
		return true
	})
	return out
}
