// Package fsm is Ganglion's Raft state machine: the commands, their Apply
// functions, snapshot/restore and the bbolt store they write.
package fsm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Bucket names. Every durable thing lives in one of these.
var (
	bMeta        = []byte("meta")         // applied_index, signing key
	bUsers       = []byte("users")        // user ID -> UserRecord
	bDevices     = []byte("devices")      // user \x00 device -> deviceRecord
	bTokens      = []byte("tokens")       // sha256(token) -> user \x00 device
	bEvents      = []byte("events")       // event_id -> EventRecord
	bRooms       = []byte("rooms")        // room_id -> RoomRecord
	bRoomState   = []byte("room_state")   // room \x00 type \x00 state_key -> event_id
	bRoomStream  = []byte("room_stream")  // room \x00 pos(8) -> event_id
	bStateLog    = []byte("state_log")    // room \x00 pos(8) -> stateChange
	bMembership  = []byte("membership")   // user \x00 room -> MembershipRecord
	bAliases     = []byte("aliases")      // alias -> aliasRecord
	bTxns        = []byte("txns")         // user \x00 device \x00 endpoint \x00 txn -> response
	bAccountData = []byte("account_data") // user \x00 room \x00 type -> AccountDataRecord
	bReceipts    = []byte("receipts")     // room \x00 type \x00 user \x00 thread -> receipt; "\x00pos\x00" room pos(8) index
	bToDevice    = []byte("to_device")    // user \x00 device \x00 pos(8) -> ToDeviceRecord
	bFilters     = []byte("filters")      // user \x00 id -> filter JSON
	bUserStream  = []byte("user_stream")  // user \x00 pos(8) -> "account_data" \x00 room \x00 type
	bForgotten   = []byte("forgotten")    // user \x00 room -> ""
	bPresence    = []byte("presence")     // user -> PresenceRecord (durable status_msg)
	bMedia       = []byte("media")        // blob ID \x00 chunk(4) -> bytes
	bMediaMeta   = []byte("media_meta")   // media ID -> MediaRecord; "\x00p\x00" user media (pending), "\x00s\x00" blob (in progress)

	allBuckets = [][]byte{bMeta, bUsers, bDevices, bTokens, bEvents, bRooms, bRoomState,
		bRoomStream, bStateLog, bMembership, bAliases, bTxns, bAccountData, bReceipts,
		bToDevice, bFilters, bUserStream, bForgotten, bPresence, bMedia, bMediaMeta,
		bRelations, bThreads, bThreadHeads, bPushers,
		bE2EDeviceKeys, bE2EOTK, bE2EOTKQueue, bE2EFallback, bE2ECrossSigning,
		bE2ESignatures, bE2EDeviceLists, bE2EDeviceListPos, bKeyBackupVersion, bKeyBackupKeys,
		bOpenIDTokens, bOpenIDExpiry,
		bEventState, bBackfill, bLateStream, bClusterRemoved,
		bFedOutbox, bFedTxn, bFedDest, bFedInTxn, bOutOfRoom}

	keyAppliedIndex = []byte("applied_index")
)

// ErrNotFound is returned by getters when a key is absent.
var ErrNotFound = errors.New("not found")

// Store is the on-disk state. The *bolt.DB is swapped atomically by Restore,
// so every access goes through View/update which hold mu for reading.
type Store struct {
	mu     sync.RWMutex
	db     *bolt.DB
	path   string
	noSync bool
	// Discarded is true when the file on disk was written under another
	// boot and was set aside to be rebuilt (see durability.go).
	Discarded bool
}

// OpenStore opens (creating if needed) the bbolt file at path.
func OpenStore(path string) (*Store, error) {
	noSync, discarded, err := prepareStoreFile(path)
	if err != nil {
		return nil, err
	}
	db, err := openBolt(path, noSync)
	if err != nil {
		return nil, err
	}
	return &Store{db: db, path: path, noSync: noSync, Discarded: discarded}, nil
}

func openBolt(path string, noSync bool) (*bolt.DB, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second, FreelistType: bolt.FreelistMapType,
		InitialMmapSize: 1 << 30, NoSync: noSync, NoFreelistSync: true})
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("init store buckets: %w", err)
	}
	return db, nil
}

// Close closes the underlying file.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db == nil {
		return nil
	}
	syncErr := s.db.Sync()
	err := errors.Join(syncErr, s.db.Close())
	s.db = nil
	return err
}

// View runs fn in a read-only transaction on a consistent view of the store.
func (s *Store) View(fn func(r *ReadTx) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return errors.New("store closed")
	}
	return s.db.View(func(tx *bolt.Tx) error { return fn(&ReadTx{tx: tx}) })
}

func (s *Store) update(fn func(tx *bolt.Tx) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return errors.New("store closed")
	}
	return s.db.Update(fn)
}

// AppliedIndex is the last Raft index whose effects are in the store.
func (s *Store) AppliedIndex() uint64 {
	var idx uint64
	_ = s.View(func(r *ReadTx) error {
		idx = r.AppliedIndex()
		return nil
	})
	return idx
}

// replace swaps the store file for the one at newPath (already complete).
// The new file is renamed over the old one and opened while the old
// *bolt.DB stays open (its file is unlinked but still mapped); mu is held
// only to swap the pointer. Readers that began before the swap finish on
// the old view, new ones see the new file, and closing the old DB, which
// waits for them and for a snapshot still being persisted from it, holds
// nobody up.
func (s *Store) replace(newPath string) error {
	s.mu.RLock()
	open := s.db != nil
	s.mu.RUnlock()
	if !open {
		return errors.New("store closed")
	}
	if err := os.Rename(newPath, s.path); err != nil {
		return fmt.Errorf("swap store: %w", err)
	}
	// Best effort: a rename lost to a power cut leaves the old store, which
	// is behind the snapshot and is rebuilt at start (or set aside, see
	// durability.go).
	_ = syncDir(filepath.Dir(s.path))
	db, err := openBolt(s.path, s.noSync)
	s.mu.Lock()
	old := s.db
	switch {
	case old == nil:
		// Closed meanwhile (shutdown): stay closed.
		if db != nil {
			db.Close()
		}
		err = errors.Join(err, errors.New("store closed"))
	case err != nil:
		// The file on disk is already the new one: writing on through the
		// old DB would diverge from it, so the store stops here.
		s.db = nil
	default:
		s.db = db
	}
	s.mu.Unlock()
	if old != nil {
		_ = old.Close() // the swap is done; nothing writes through it again
	}
	return err
}

func u64(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}

func getU64(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

// key joins parts with NUL separators (Matrix IDs never contain NUL).
func key(parts ...string) []byte {
	n := 0
	for _, p := range parts {
		n += len(p) + 1
	}
	b := make([]byte, 0, n)
	for i, p := range parts {
		if i > 0 {
			b = append(b, 0)
		}
		b = append(b, p...)
	}
	return b
}

// prefix is key(parts...) followed by a separator, for range scans.
func prefix(parts ...string) []byte {
	return append(key(parts...), 0)
}
