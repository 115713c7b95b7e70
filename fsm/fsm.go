package fsm

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	bolt "go.etcd.io/bbolt"
)

// FSM applies committed Raft entries to the Store. It implements
// raft.BatchingFSM so one bbolt transaction (one fsync) covers a batch.
type FSM struct {
	store    *Store
	notifier *Notifier
	log      hclog.Logger
	// startIndex is the store's applied index when this process opened it;
	// applied and skipped count entries since then (status reporting shows
	// that a restart replays only what the store lacks).
	cache      *pduCache
	startIndex uint64
	applied    atomic.Uint64
	skipped    atomic.Uint64
}

var _ raft.BatchingFSM = (*FSM)(nil)

// New wraps store in an FSM.
func New(store *Store, log hclog.Logger) *FSM {
	idx := store.AppliedIndex()
	return &FSM{store: store, notifier: NewNotifier(idx), log: log, startIndex: idx, cache: newPDUCache()}
}

// Store is the store this FSM writes.
func (f *FSM) Store() *Store { return f.store }

// Notifier wakes readers when entries are applied.
func (f *FSM) Notifier() *Notifier { return f.notifier }

// Apply applies one entry.
func (f *FSM) Apply(l *raft.Log) any {
	return f.ApplyBatch([]*raft.Log{l})[0]
}

// ApplyBatch applies entries in one transaction that also records the
// applied index. Entries at or below the stored index were applied before a
// restart and are skipped, so replay after a crash is idempotent.
func (f *FSM) ApplyBatch(logs []*raft.Log) []any {
	results := make([]any, len(logs))
	skip := map[int]error{}
	for attempt := 0; ; attempt++ {
		touched := &Touched{Users: map[string]bool{}, Rooms: map[string]bool{}}
		redo := -1
		fresh := 0
		var last uint64
		err := f.store.update(func(tx *bolt.Tx) error {
			applied := getU64(tx.Bucket(bMeta).Get(keyAppliedIndex))
			last = applied
			for i, l := range logs {
				if l.Index <= applied {
					results[i] = Result{Err: fmt.Errorf("entry %d already applied", l.Index)}
					if attempt == 0 {
						f.skipped.Add(1)
					}
					continue
				}
				last = l.Index
				fresh++
				if l.Type != raft.LogCommand {
					results[i] = Result{}
					continue
				}
				if e, ok := skip[i]; ok {
					results[i] = Result{Err: e}
					continue
				}
				w := &WriteTx{ReadTx: ReadTx{tx: tx}, index: l.Index, touched: touched, cache: f.cache}
				v, err := f.applyOne(w, l.Data)
				if err != nil && w.dirty {
					// A handler refused after writing: redo the batch without it.
					skip[i] = err
					redo = i
					return errRedo
				}
				results[i] = Result{Value: v, Err: err}
			}
			return tx.Bucket(bMeta).Put(keyAppliedIndex, u64(last))
		})
		if err == errRedo && attempt < len(logs) {
			// The rolled-back attempt may have cached events it wrote.
			f.cache.clear()
			f.log.Warn("handler failed after writing; reapplying batch without it", "index", logs[redo].Index, "error", skip[redo])
			continue
		}
		if err != nil {
			// The store cannot be written: continuing would diverge from the log.
			f.log.Error("store write failed", "error", err)
			panic(fmt.Sprintf("fsm: store write failed: %v", err))
		}
		f.notifier.publish(last, touched)
		f.applied.Add(uint64(fresh))
		return results
	}
}

// Counters reports the store's applied index when it was opened, and how
// many entries were applied and skipped (already in the store) since.
func (f *FSM) Counters() (startIndex, applied, skipped uint64) {
	return f.startIndex, f.applied.Load(), f.skipped.Load()
}

type redoError struct{}

func (redoError) Error() string { return "redo batch" }

var errRedo error = redoError{}

func (f *FSM) applyOne(w *WriteTx, data []byte) (v any, err error) {
	cmd, err := DecodeCommand(data)
	if err != nil {
		return nil, errBadRequest("undecodable command: %v", err)
	}
	h, ok := handlers[cmd.Op]
	if !ok {
		return nil, errBadRequest("unknown command %q", cmd.Op)
	}
	return runHandler(h, w, cmd, f.log)
}

// runHandler runs one handler and turns what must not reach the store into
// a refusal: a panic (every node would hit it at the same entry and crash
// again after each restart) and a command that took more stream positions
// than one index has. Both are deterministic, so every node refuses alike;
// a refusal after a write is rolled back by ApplyBatch (w.dirty).
func runHandler(h applyFunc, w *WriteTx, cmd *Command, log hclog.Logger) (v any, err error) {
	defer func() {
		if p := recover(); p != nil {
			if log != nil {
				log.Error("command handler panicked; refusing the command", "op", cmd.Op, "index", w.index,
					"panic", p, "stack", string(debug.Stack()))
			}
			v, err = nil, Errorf(http.StatusInternalServerError, "M_UNKNOWN", "internal error applying %s", cmd.Op)
		}
	}()
	v, err = h(w, cmd)
	if err == nil && w.posOverflow {
		return nil, errTooLarge("%s needs more than %d stream positions", cmd.Op, maxSubPos)
	}
	return v, err
}

// Snapshot captures a consistent read transaction; Persist streams it while
// applies continue (bbolt MVCC), so no write lock is held for the copy.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	f.store.mu.RLock()
	defer f.store.mu.RUnlock()
	if f.store.db == nil {
		return nil, fmt.Errorf("store closed")
	}
	tx, err := f.store.db.Begin(false)
	if err != nil {
		return nil, err
	}
	return &snapshot{tx: tx}, nil
}

type snapshot struct{ tx *bolt.Tx }

func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := s.tx.WriteTo(sink); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s *snapshot) Release() { _ = s.tx.Rollback() }

// Restore replaces the store with the snapshot's bytes: written to a side
// file, synced, then renamed over the store, so a crash leaves either the old
// or the new file, never a mix.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	tmp := f.store.path + ".restore"
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, rc); err != nil {
		out.Close()
		os.Remove(tmp)
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		os.Remove(tmp)
		return err
	}
	if err := out.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	// A truncated or foreign snapshot must not replace a working store.
	if err := checkStoreFile(tmp); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("restore: snapshot is not a store: %w", err)
	}
	f.cache.clear()
	if err := f.store.replace(tmp); err != nil {
		return err
	}
	f.cache.clear()
	f.notifier.reset(f.store.AppliedIndex())
	return nil
}

// checkStoreFile opens a store file read-only and checks it has the meta
// bucket every store has.
func checkStoreFile(path string) error {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return err
	}
	defer db.Close()
	return db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bMeta) == nil {
			return fmt.Errorf("no %s bucket", bMeta)
		}
		return nil
	})
}
