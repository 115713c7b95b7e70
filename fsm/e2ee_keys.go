package fsm

import (
	"bytes"
	"encoding/json"
	"net/http"
	"sort"
	"strings"
)

// End-to-end encryption keys of devices: identity keys, one-time keys and
// fallback keys. The proposer checks the request's shape and sends every
// key as canonical JSON, so Apply compares keys byte for byte.
//
// Each device's e2ee data is tied to the device's CreatedTS: keys left by a
// deleted device whose ID was later reused are stale and never served.

// E2EE buckets; store.go's list is the lead's, so they join it here.
var (
	bE2EDeviceKeys    = []byte("e2e_device_keys")     // user \x00 device -> deviceKeysRecord
	bE2EOTK           = []byte("e2e_otk")             // user \x00 device \x00 algorithm \x00 key id -> otkRecord
	bE2EOTKQueue      = []byte("e2e_otk_queue")       // user \x00 device \x00 algorithm \x00 pos(8) key id -> ""
	bE2EFallback      = []byte("e2e_fallback")        // user \x00 device \x00 algorithm -> FallbackKeyRecord
	bE2ECrossSigning  = []byte("e2e_cross_signing")   // user \x00 usage -> key JSON
	bE2ESignatures    = []byte("e2e_signatures")      // target user \x00 target key \x00 signer \x00 signer key id -> signature
	bE2EDeviceLists   = []byte("e2e_device_lists")    // pos(8) -> user whose keys changed there
	bE2EDeviceListPos = []byte("e2e_device_list_pos") // user -> pos(8) of its entry in bE2EDeviceLists
	bKeyBackupVersion = []byte("key_backup_versions") // user \x00 version(8) -> BackupVersionRecord
	bKeyBackupKeys    = []byte("key_backup_keys")     // user \x00 version(8) room \x00 session -> KeyBackupData
)

func init() {
	register(OpKeysUpload, applyKeysUpload)
	register(OpKeysClaim, applyKeysClaim)
}

// Key commands.
const (
	OpKeysUpload = "e2ee.keys_upload"
	OpKeysClaim  = "e2ee.keys_claim"
)

// KeysUpload is POST /keys/upload for one device. Key maps are
// "<algorithm>:<key id>" -> canonical key JSON.
type KeysUpload struct {
	UserID       string                     `json:"user_id"`
	DeviceID     string                     `json:"device_id"`
	DeviceKeys   json.RawMessage            `json:"device_keys,omitempty"`
	OneTimeKeys  map[string]json.RawMessage `json:"one_time_keys,omitempty"`
	FallbackKeys map[string]json.RawMessage `json:"fallback_keys,omitempty"`
}

// KeysClaim claims one key per (user, device): user -> device -> algorithm.
type KeysClaim struct {
	Claims map[string]map[string]string `json:"claims"`
}

// ClaimedKeys is user -> device -> "<algorithm>:<key id>" -> key.
type ClaimedKeys map[string]map[string]map[string]json.RawMessage

type deviceKeysRecord struct {
	DeviceTS int64           `json:"device_ts"`
	Keys     json.RawMessage `json:"keys,omitempty"`
}

type otkRecord struct {
	Pos int64           `json:"pos"`
	Key json.RawMessage `json:"key"`
}

// FallbackKeyRecord is a device's fallback key of one algorithm.
type FallbackKeyRecord struct {
	KeyID string          `json:"key_id"`
	Key   json.RawMessage `json:"key"`
	Used  bool            `json:"used,omitempty"`
}

// SplitKeyID splits "<algorithm>:<key id>"; both parts must be non-empty.
func SplitKeyID(s string) (algorithm, keyID string, ok bool) {
	algorithm, keyID, ok = strings.Cut(s, ":")
	return algorithm, keyID, ok && algorithm != "" && keyID != "" && !strings.ContainsRune(s, 0)
}

func errE2EEParam(format string, args ...any) *Error {
	return Errorf(http.StatusBadRequest, "M_INVALID_PARAM", format, args...)
}

// e2eeFresh reports whether the device exists and its stored e2ee data (if
// any) belongs to it rather than to an earlier device with the same ID.
func (r *ReadTx) e2eeFresh(userID, deviceID string) (dev *DeviceRecord, rec *deviceKeysRecord, fresh bool) {
	dev, err := r.Device(userID, deviceID)
	if err != nil {
		return nil, nil, false
	}
	var kr deviceKeysRecord
	if r.getJSON(bE2EDeviceKeys, key(userID, deviceID), &kr) != nil || kr.DeviceTS != dev.CreatedTS {
		return dev, nil, false
	}
	return dev, &kr, true
}

// DeviceKeys is the device's uploaded identity keys (nil if none).
func (r *ReadTx) DeviceKeys(userID, deviceID string) json.RawMessage {
	if _, rec, fresh := r.e2eeFresh(userID, deviceID); fresh {
		return rec.Keys
	}
	return nil
}

// OneTimeKeyCounts counts the device's unclaimed one-time keys per algorithm.
func (r *ReadTx) OneTimeKeyCounts(userID, deviceID string) map[string]int {
	out := map[string]int{}
	if _, _, fresh := r.e2eeFresh(userID, deviceID); !fresh {
		return out
	}
	pfx := prefix(userID, deviceID)
	r.scan(bE2EOTK, pfx, func(k, _ []byte) bool {
		if algo, _, ok := strings.Cut(string(k[len(pfx):]), "\x00"); ok {
			out[algo]++
		}
		return true
	})
	return out
}

// UnusedFallbackKeyTypes lists the algorithms of the device's fallback keys
// that no claim has handed out yet, sorted.
func (r *ReadTx) UnusedFallbackKeyTypes(userID, deviceID string) []string {
	out := []string{}
	if _, _, fresh := r.e2eeFresh(userID, deviceID); !fresh {
		return out
	}
	pfx := prefix(userID, deviceID)
	r.scan(bE2EFallback, pfx, func(k, v []byte) bool {
		var fk FallbackKeyRecord
		if json.Unmarshal(v, &fk) == nil && !fk.Used {
			out = append(out, string(k[len(pfx):]))
		}
		return true
	})
	return out
}

// identityKeys is the "keys" member of a device keys object, canonical.
func identityKeys(deviceKeys json.RawMessage) string {
	var obj struct {
		Keys json.RawMessage `json:"keys"`
	}
	_ = json.Unmarshal(deviceKeys, &obj)
	return string(obj.Keys)
}

func applyKeysUpload(w *WriteTx, cmd *Command) (any, error) {
	c, err := decode[KeysUpload](cmd)
	if err != nil {
		return nil, err
	}
	dev, rec, fresh := w.e2eeFresh(c.UserID, c.DeviceID)
	if dev == nil {
		return nil, errNotFound("Unknown device")
	}
	keysChanged, identityChanged := false, false
	if c.DeviceKeys != nil {
		if !isJSONObject(c.DeviceKeys) {
			return nil, errBadRequest("device_keys must be an object")
		}
		var owner struct {
			UserID   string `json:"user_id"`
			DeviceID string `json:"device_id"`
		}
		_ = json.Unmarshal(c.DeviceKeys, &owner)
		if owner.UserID != c.UserID || owner.DeviceID != c.DeviceID {
			return nil, errE2EEParam("device_keys must be for %s's device %s", c.UserID, c.DeviceID)
		}
		switch {
		case !fresh || rec.Keys == nil:
			keysChanged = true
		case identityKeys(rec.Keys) != identityKeys(c.DeviceKeys):
			// New identity keys replace the old ones, as Synapse does and
			// Complement's device list tests expect; signatures made on
			// the old keys no longer hold.
			keysChanged, identityChanged = true, true
		default:
			// Same keys, other signatures or algorithms: take the new ones.
			keysChanged = !bytes.Equal(rec.Keys, c.DeviceKeys)
		}
	}
	otkIDs := sortedStringKeys(c.OneTimeKeys)
	for _, id := range otkIDs {
		algo, kid, ok := SplitKeyID(id)
		if !ok {
			return nil, errE2EEParam("one-time key ID %q is not <algorithm>:<key id>", id)
		}
		if !fresh {
			continue
		}
		var old otkRecord
		if w.getJSON(bE2EOTK, key(c.UserID, c.DeviceID, algo, kid), &old) == nil && !bytes.Equal(old.Key, c.OneTimeKeys[id]) {
			return nil, errE2EEParam("one-time key %s already exists with different content", id)
		}
	}
	fallbackIDs := sortedStringKeys(c.FallbackKeys)
	seenAlgo := map[string]bool{}
	for _, id := range fallbackIDs {
		algo, _, ok := SplitKeyID(id)
		if !ok {
			return nil, errE2EEParam("fallback key ID %q is not <algorithm>:<key id>", id)
		}
		if seenAlgo[algo] {
			return nil, errE2EEParam("more than one fallback key for %s", algo)
		}
		seenAlgo[algo] = true
	}

	if !fresh {
		if err := w.wipeDeviceE2EE(c.UserID, c.DeviceID); err != nil {
			return nil, err
		}
		rec = &deviceKeysRecord{DeviceTS: dev.CreatedTS}
	}
	if identityChanged {
		if err := w.deletePrefix(bE2ESignatures, prefix(c.UserID, c.DeviceID)); err != nil {
			return nil, err
		}
	}
	if keysChanged {
		rec.Keys = c.DeviceKeys
	}
	if keysChanged || !fresh {
		if err := w.putJSON(bE2EDeviceKeys, key(c.UserID, c.DeviceID), rec); err != nil {
			return nil, err
		}
	}
	if keysChanged {
		if err := w.markDeviceListChanged(c.UserID); err != nil {
			return nil, err
		}
	}
	if err := w.putOneTimeKeys(c, otkIDs); err != nil {
		return nil, err
	}
	for _, id := range fallbackIDs {
		algo, kid, _ := SplitKeyID(id)
		var old FallbackKeyRecord
		fk := w.getJSON(bE2EFallback, key(c.UserID, c.DeviceID, algo), &old)
		if fk == nil && old.KeyID == kid && bytes.Equal(old.Key, c.FallbackKeys[id]) {
			continue // a re-upload keeps whether it was used
		}
		if err := w.putJSON(bE2EFallback, key(c.UserID, c.DeviceID, algo), FallbackKeyRecord{KeyID: kid, Key: c.FallbackKeys[id]}); err != nil {
			return nil, err
		}
	}
	w.touchUser(c.UserID)
	return w.OneTimeKeyCounts(c.UserID, c.DeviceID), nil
}

// putOneTimeKeys stores the upload's new keys; one position for the whole
// upload keeps claims in upload order, then key ID order within it.
func (w *WriteTx) putOneTimeKeys(c *KeysUpload, ids []string) error {
	pos := int64(-1)
	for _, id := range ids {
		algo, kid, _ := SplitKeyID(id)
		k := key(c.UserID, c.DeviceID, algo, kid)
		if w.get(bE2EOTK, k) != nil {
			continue // identical re-upload
		}
		if pos < 0 {
			pos = w.NextPos()
		}
		if err := w.putJSON(bE2EOTK, k, otkRecord{Pos: pos, Key: c.OneTimeKeys[id]}); err != nil {
			return err
		}
		if err := w.put(bE2EOTKQueue, otkQueueKey(c.UserID, c.DeviceID, algo, pos, kid), nil); err != nil {
			return err
		}
	}
	return nil
}

func otkQueueKey(userID, deviceID, algo string, pos int64, keyID string) []byte {
	return append(append(prefix(userID, deviceID, algo), u64(uint64(pos))...), keyID...)
}

// wipeDeviceE2EE removes every key of a device and the signatures made on
// its identity keys.
func (w *WriteTx) wipeDeviceE2EE(userID, deviceID string) error {
	for _, b := range [][]byte{bE2EOTK, bE2EOTKQueue, bE2EFallback} {
		if err := w.deletePrefix(b, prefix(userID, deviceID)); err != nil {
			return err
		}
	}
	if err := w.deletePrefix(bE2ESignatures, prefix(userID, deviceID)); err != nil {
		return err
	}
	return w.del(bE2EDeviceKeys, key(userID, deviceID))
}

func applyKeysClaim(w *WriteTx, cmd *Command) (any, error) {
	c, err := decode[KeysClaim](cmd)
	if err != nil {
		return nil, err
	}
	out := ClaimedKeys{}
	for _, userID := range sortedStringKeys(c.Claims) {
		devices := c.Claims[userID]
		for _, deviceID := range sortedStringKeys(devices) {
			algo := devices[deviceID]
			if algo == "" || strings.ContainsRune(algo, 0) {
				continue
			}
			id, k, err := w.claimOne(userID, deviceID, algo)
			if err != nil {
				return nil, err
			}
			if k == nil {
				continue
			}
			if out[userID] == nil {
				out[userID] = map[string]map[string]json.RawMessage{}
			}
			out[userID][deviceID] = map[string]json.RawMessage{algo + ":" + id: k}
		}
	}
	return out, nil
}

// claimOne removes and returns the device's first queued one-time key of
// the algorithm, or else returns its fallback key, marking it used.
func (w *WriteTx) claimOne(userID, deviceID, algo string) (string, json.RawMessage, error) {
	if _, _, fresh := w.e2eeFresh(userID, deviceID); !fresh {
		return "", nil, nil
	}
	pfx := prefix(userID, deviceID, algo)
	var qk []byte
	w.scan(bE2EOTKQueue, pfx, func(k, _ []byte) bool {
		qk = append([]byte{}, k...)
		return false
	})
	if len(qk) >= len(pfx)+8 {
		kid := string(qk[len(pfx)+8:])
		var rec otkRecord
		if err := w.getJSON(bE2EOTK, key(userID, deviceID, algo, kid), &rec); err != nil {
			return "", nil, err
		}
		if err := w.del(bE2EOTKQueue, qk); err != nil {
			return "", nil, err
		}
		if err := w.del(bE2EOTK, key(userID, deviceID, algo, kid)); err != nil {
			return "", nil, err
		}
		w.touchUser(userID)
		return kid, rec.Key, nil
	}
	var fk FallbackKeyRecord
	if w.getJSON(bE2EFallback, key(userID, deviceID, algo), &fk) != nil {
		return "", nil, nil
	}
	if !fk.Used {
		fk.Used = true
		if err := w.putJSON(bE2EFallback, key(userID, deviceID, algo), fk); err != nil {
			return "", nil, err
		}
		w.touchUser(userID)
	}
	return fk.KeyID, fk.Key, nil
}

// sortedKeysOf lists a set's members in order.
func sortedKeysOf(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
