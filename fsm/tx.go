package fsm

import (
	"encoding/json"

	bolt "go.etcd.io/bbolt"
)

// Positions: a stream position is the Raft index shifted left by posShift,
// plus a sub-position for commands that write several things (createRoom).
// Every node computes the same positions for the same log.
const posShift = 16

// MaxPosAt is the highest stream position a command at index can produce;
// a sync token taken after applying index covers everything up to it.
func MaxPosAt(index uint64) int64 { return int64(index<<posShift | (1<<posShift - 1)) }

// IndexOfPos is the Raft index a stream position belongs to.
func IndexOfPos(pos int64) uint64 {
	if pos < 0 {
		return 0
	}
	return uint64(pos) >> posShift
}

// ReadTx is a read-only view of the store.
type ReadTx struct {
	tx *bolt.Tx
}

// AppliedIndex is the last applied Raft index in this view.
func (r *ReadTx) AppliedIndex() uint64 {
	return getU64(r.tx.Bucket(bMeta).Get(keyAppliedIndex))
}

func (r *ReadTx) get(bucket, k []byte) []byte {
	return r.tx.Bucket(bucket).Get(k)
}

func (r *ReadTx) getJSON(bucket, k []byte, v any) error {
	raw := r.get(bucket, k)
	if raw == nil {
		return ErrNotFound
	}
	return json.Unmarshal(raw, v)
}

// scan calls fn for every key with the given prefix, in key order, until fn
// returns false.
func (r *ReadTx) scan(bucket, pfx []byte, fn func(k, v []byte) bool) {
	c := r.tx.Bucket(bucket).Cursor()
	for k, v := c.Seek(pfx); k != nil && hasPrefix(k, pfx); k, v = c.Next() {
		if !fn(k, v) {
			return
		}
	}
}

// scanFrom is scan starting at start (which must itself have the prefix).
func (r *ReadTx) scanFrom(bucket, pfx, start []byte, fn func(k, v []byte) bool) {
	c := r.tx.Bucket(bucket).Cursor()
	for k, v := c.Seek(start); k != nil && hasPrefix(k, pfx); k, v = c.Next() {
		if !fn(k, v) {
			return
		}
	}
}

// scanBack walks keys with the prefix backwards from just before end
// (exclusive); a nil end starts at the prefix's last key.
func (r *ReadTx) scanBack(bucket, pfx, end []byte, fn func(k, v []byte) bool) {
	c := r.tx.Bucket(bucket).Cursor()
	var k, v []byte
	if end == nil {
		upper := append(append([]byte{}, pfx...), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
		k, v = c.Seek(upper)
	} else {
		k, v = c.Seek(end)
	}
	if k == nil {
		k, v = c.Last()
	} else {
		k, v = c.Prev()
	}
	for ; k != nil && hasPrefix(k, pfx); k, v = c.Prev() {
		if !fn(k, v) {
			return
		}
	}
}

func hasPrefix(k, p []byte) bool {
	return len(k) >= len(p) && string(k[:len(p)]) == string(p)
}

// maxSubPos is how many stream positions one command may take: the low
// posShift bits of a position. A command that needs more is refused (see
// runHandler), never allowed to spill into the next index's positions.
const maxSubPos = 1 << posShift

// WriteTx is the transaction one Apply batch writes through.
type WriteTx struct {
	ReadTx
	index uint64
	sub   uint64
	dirty bool
	// posOverflow is set when the command asked for more than maxSubPos
	// positions; runHandler refuses such a command.
	posOverflow bool
	// touched collects who should be woken once the batch commits.
	touched *Touched
	cache   *pduCache
	// deviceListsMarked: users whose device list change this command has
	// already recorded (one position per user and command is enough: a
	// sync token never falls inside one command's positions).
	deviceListsMarked map[string]bool
}

// Index is the Raft index of the command being applied.
func (w *WriteTx) Index() uint64 { return w.index }

// NextPos hands out the next stream position of this command. Past
// maxSubPos positions it keeps returning the command's last position and
// flags the command, which runHandler then refuses (and ApplyBatch rolls
// back).
func (w *WriteTx) NextPos() int64 {
	if w.sub >= maxSubPos {
		w.posOverflow = true
		return int64(w.index<<posShift | (maxSubPos - 1))
	}
	p := int64(w.index<<posShift | w.sub)
	w.sub++
	return p
}

func (w *WriteTx) put(bucket, k, v []byte) error {
	w.dirty = true
	return w.tx.Bucket(bucket).Put(k, v)
}

func (w *WriteTx) putJSON(bucket, k []byte, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return w.put(bucket, k, raw)
}

func (w *WriteTx) del(bucket, k []byte) error {
	w.dirty = true
	return w.tx.Bucket(bucket).Delete(k)
}

// deletePrefix removes every key with the prefix.
func (w *WriteTx) deletePrefix(bucket, pfx []byte) error {
	var keys [][]byte
	w.scan(bucket, pfx, func(k, _ []byte) bool {
		keys = append(keys, append([]byte{}, k...))
		return true
	})
	for _, k := range keys {
		if err := w.del(bucket, k); err != nil {
			return err
		}
	}
	return nil
}

// Touched is the set of users and rooms a batch changed.
type Touched struct {
	Users map[string]bool
	Rooms map[string]bool
}

func (w *WriteTx) touchUser(u string) { w.touched.Users[u] = true }
func (w *WriteTx) touchRoom(r string) { w.touched.Rooms[r] = true }
