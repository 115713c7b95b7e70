package fsm

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
)

// Server-side key backup (room_keys): per-user backup versions and the
// encrypted session keys stored in them. A version is the Raft index that
// created it, so versions only grow and are never reused; a deleted
// version stays as a tombstone so deleting it again succeeds.

// Key backup commands.
const (
	OpBackupCreate     = "key_backup.create"
	OpBackupUpdate     = "key_backup.update"
	OpBackupDelete     = "key_backup.delete"
	OpBackupPutKeys    = "key_backup.put_keys"
	OpBackupDeleteKeys = "key_backup.delete_keys"
)

// BackupVersionRecord is one backup version of a user.
type BackupVersionRecord struct {
	Version   string          `json:"version"`
	Algorithm string          `json:"algorithm"`
	AuthData  json.RawMessage `json:"auth_data,omitempty"`
	Etag      int64           `json:"etag"`
	Count     int64           `json:"count"`
	Deleted   bool            `json:"deleted,omitempty"`
}

// KeyBackupData is one backed-up session key.
type KeyBackupData struct {
	FirstMessageIndex int64           `json:"first_message_index"`
	ForwardedCount    int64           `json:"forwarded_count"`
	IsVerified        bool            `json:"is_verified"`
	SessionData       json.RawMessage `json:"session_data"`
}

// BackupVersionCmd creates (Version "") or updates a version.
type BackupVersionCmd struct {
	UserID    string          `json:"user_id"`
	Version   string          `json:"version,omitempty"`
	Algorithm string          `json:"algorithm"`
	AuthData  json.RawMessage `json:"auth_data,omitempty"`
}

// BackupPutKeys stores keys into the current version: room -> session -> key.
type BackupPutKeys struct {
	UserID  string                              `json:"user_id"`
	Version string                              `json:"version"`
	Rooms   map[string]map[string]KeyBackupData `json:"rooms"`
}

// BackupDeleteKeys deletes a version's keys: all of them, a room's (RoomID
// set) or one session's (SessionID too).
type BackupDeleteKeys struct {
	UserID    string `json:"user_id"`
	Version   string `json:"version"`
	RoomID    string `json:"room_id,omitempty"`
	SessionID string `json:"session_id,omitempty"`
}

// BackupKeysResult is the etag and key count after a change.
type BackupKeysResult struct {
	Etag  string `json:"etag"`
	Count int64  `json:"count"`
}

func init() {
	register(OpBackupCreate, applyBackupCreate)
	register(OpBackupUpdate, applyBackupUpdate)
	register(OpBackupDelete, applyBackupDelete)
	register(OpBackupPutKeys, applyBackupPutKeys)
	register(OpBackupDeleteKeys, applyBackupDeleteKeys)
}

// ParseBackupVersion reads a version string ("" or junk: not a version).
func ParseBackupVersion(s string) (uint64, bool) {
	v, err := strconv.ParseUint(s, 10, 64)
	return v, err == nil && v > 0
}

func backupVersionKey(userID string, v uint64) []byte {
	return append(prefix(userID), u64(v)...)
}

func backupKeysPrefix(userID string, v uint64, roomID string) []byte {
	p := backupVersionKey(userID, v)
	if roomID != "" {
		p = append(p, prefix(roomID)...)
	}
	return p
}

// backupVersion reads a version record, tombstones included.
func (r *ReadTx) backupVersion(userID, version string) *BackupVersionRecord {
	v, ok := ParseBackupVersion(version)
	if !ok {
		return nil
	}
	var rec BackupVersionRecord
	if r.getJSON(bKeyBackupVersion, backupVersionKey(userID, v), &rec) != nil {
		return nil
	}
	return &rec
}

// BackupVersion is a live (not deleted) version, or nil.
func (r *ReadTx) BackupVersion(userID, version string) *BackupVersionRecord {
	if rec := r.backupVersion(userID, version); rec != nil && !rec.Deleted {
		return rec
	}
	return nil
}

// CurrentBackupVersion is the newest live version, or nil.
func (r *ReadTx) CurrentBackupVersion(userID string) *BackupVersionRecord {
	var out *BackupVersionRecord
	r.scanBack(bKeyBackupVersion, prefix(userID), nil, func(_, v []byte) bool {
		var rec BackupVersionRecord
		if json.Unmarshal(v, &rec) == nil && !rec.Deleted {
			out = &rec
			return false
		}
		return true
	})
	return out
}

// BackupKeys calls fn for the version's keys (of one room if roomID is
// set) in room, then session, order.
func (r *ReadTx) BackupKeys(userID, version, roomID string, fn func(roomID, sessionID string, d KeyBackupData)) {
	v, ok := ParseBackupVersion(version)
	if !ok {
		return
	}
	base := len(backupVersionKey(userID, v))
	r.scan(bKeyBackupKeys, backupKeysPrefix(userID, v, roomID), func(k, val []byte) bool {
		room, session, ok := strings.Cut(string(k[base:]), "\x00")
		var d KeyBackupData
		if ok && json.Unmarshal(val, &d) == nil {
			fn(room, session, d)
		}
		return true
	})
}

// BackupKey reads one session's key.
func (r *ReadTx) BackupKey(userID, version, roomID, sessionID string) *KeyBackupData {
	v, ok := ParseBackupVersion(version)
	if !ok {
		return nil
	}
	var d KeyBackupData
	if r.getJSON(bKeyBackupKeys, append(backupKeysPrefix(userID, v, roomID), sessionID...), &d) != nil {
		return nil
	}
	return &d
}

func errUnknownBackup() *Error { return errNotFound("Unknown backup version") }

func applyBackupCreate(w *WriteTx, cmd *Command) (any, error) {
	c, err := decode[BackupVersionCmd](cmd)
	if err != nil {
		return nil, err
	}
	if c.Algorithm == "" || !isJSONObject(c.AuthData) {
		return nil, errBadRequest("algorithm and auth_data are required")
	}
	rec := BackupVersionRecord{Version: strconv.FormatUint(w.Index(), 10), Algorithm: c.Algorithm, AuthData: c.AuthData}
	return rec.Version, w.putJSON(bKeyBackupVersion, backupVersionKey(c.UserID, w.Index()), rec)
}

func applyBackupUpdate(w *WriteTx, cmd *Command) (any, error) {
	c, err := decode[BackupVersionCmd](cmd)
	if err != nil {
		return nil, err
	}
	rec := w.BackupVersion(c.UserID, c.Version)
	if rec == nil {
		return nil, errUnknownBackup()
	}
	if c.Algorithm != rec.Algorithm {
		return nil, errE2EEParam("Algorithm does not match")
	}
	if !isJSONObject(c.AuthData) {
		return nil, errBadRequest("auth_data must be an object")
	}
	rec.AuthData = c.AuthData
	v, _ := ParseBackupVersion(c.Version)
	return nil, w.putJSON(bKeyBackupVersion, backupVersionKey(c.UserID, v), rec)
}

func applyBackupDelete(w *WriteTx, cmd *Command) (any, error) {
	c, err := decode[BackupVersionCmd](cmd)
	if err != nil {
		return nil, err
	}
	rec := w.backupVersion(c.UserID, c.Version)
	if rec == nil {
		return nil, errUnknownBackup()
	}
	if rec.Deleted {
		return nil, nil
	}
	v, _ := ParseBackupVersion(c.Version)
	if err := w.deletePrefix(bKeyBackupKeys, backupKeysPrefix(c.UserID, v, "")); err != nil {
		return nil, err
	}
	tomb := BackupVersionRecord{Version: rec.Version, Algorithm: rec.Algorithm, Etag: rec.Etag, Deleted: true}
	return nil, w.putJSON(bKeyBackupVersion, backupVersionKey(c.UserID, v), tomb)
}

// betterBackupKey applies the spec's order: verified beats unverified, then
// the lower first_message_index, then the lower forwarded_count; a tie
// keeps the stored key.
func betterBackupKey(n, old *KeyBackupData) bool {
	if n.IsVerified != old.IsVerified {
		return n.IsVerified
	}
	if n.FirstMessageIndex != old.FirstMessageIndex {
		return n.FirstMessageIndex < old.FirstMessageIndex
	}
	return n.ForwardedCount < old.ForwardedCount
}

func applyBackupPutKeys(w *WriteTx, cmd *Command) (any, error) {
	c, err := decode[BackupPutKeys](cmd)
	if err != nil {
		return nil, err
	}
	cur := w.CurrentBackupVersion(c.UserID)
	if cur == nil {
		return nil, errUnknownBackup()
	}
	if cur.Version != c.Version {
		return nil, Errorf(http.StatusForbidden, "M_WRONG_ROOM_KEYS_VERSION", "Wrong backup version.")
	}
	// Sorted, like the writes below: which refusal is reported must not
	// depend on map order either.
	for _, roomID := range sortedStringKeys(c.Rooms) {
		if roomID == "" || strings.ContainsRune(roomID, 0) {
			return nil, errBadRequest("invalid room ID")
		}
		sessions := c.Rooms[roomID]
		for _, sessionID := range sortedStringKeys(sessions) {
			if sessionID == "" || strings.ContainsRune(sessionID, 0) || !isJSONObject(sessions[sessionID].SessionData) {
				return nil, errBadRequest("invalid session ID or session_data")
			}
		}
	}
	v, _ := ParseBackupVersion(cur.Version)
	changed := false
	for _, roomID := range sortedStringKeys(c.Rooms) {
		sessions := c.Rooms[roomID]
		for _, sessionID := range sortedStringKeys(sessions) {
			d := sessions[sessionID]
			old := w.BackupKey(c.UserID, cur.Version, roomID, sessionID)
			if old != nil && !betterBackupKey(&d, old) {
				continue
			}
			if old == nil {
				cur.Count++
			}
			d.SessionData = compactJSON(d.SessionData)
			if err := w.putJSON(bKeyBackupKeys, append(backupKeysPrefix(c.UserID, v, roomID), sessionID...), d); err != nil {
				return nil, err
			}
			changed = true
		}
	}
	if changed {
		cur.Etag++
		if err := w.putJSON(bKeyBackupVersion, backupVersionKey(c.UserID, v), cur); err != nil {
			return nil, err
		}
	}
	return BackupKeysResult{Etag: strconv.FormatInt(cur.Etag, 10), Count: cur.Count}, nil
}

func applyBackupDeleteKeys(w *WriteTx, cmd *Command) (any, error) {
	c, err := decode[BackupDeleteKeys](cmd)
	if err != nil {
		return nil, err
	}
	rec := w.BackupVersion(c.UserID, c.Version)
	if rec == nil {
		return nil, errUnknownBackup()
	}
	v, _ := ParseBackupVersion(c.Version)
	var gone [][]byte
	if c.SessionID != "" {
		k := append(backupKeysPrefix(c.UserID, v, c.RoomID), c.SessionID...)
		if c.RoomID != "" && w.get(bKeyBackupKeys, k) != nil {
			gone = append(gone, k)
		}
	} else {
		w.scan(bKeyBackupKeys, backupKeysPrefix(c.UserID, v, c.RoomID), func(k, _ []byte) bool {
			gone = append(gone, append([]byte{}, k...))
			return true
		})
	}
	for _, k := range gone {
		if err := w.del(bKeyBackupKeys, k); err != nil {
			return nil, err
		}
	}
	if len(gone) > 0 {
		rec.Count -= int64(len(gone))
		rec.Etag++
		if err := w.putJSON(bKeyBackupVersion, backupVersionKey(c.UserID, v), rec); err != nil {
			return nil, err
		}
	}
	return BackupKeysResult{Etag: strconv.FormatInt(rec.Etag, 10), Count: rec.Count}, nil
}
