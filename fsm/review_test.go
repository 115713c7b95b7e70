package fsm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	bolt "go.etcd.io/bbolt"
	"maunium.net/go/mautrix/federation/pdu"
)

const (
	opTestPanicAfterWrite = "test.panic_after_write"
	opTestPositions       = "test.positions"
)

func init() {
	register(opTestPanicAfterWrite, func(w *WriteTx, cmd *Command) (any, error) {
		if err := w.put(bForgotten, key("@half:x", "!p:x"), []byte{1}); err != nil {
			return nil, err
		}
		var m map[string]int
		m["boom"] = 1 // a nil map write: the kind of bug malformed input finds
		return nil, nil
	})
	// test.positions takes n stream positions and stores the last one.
	register(opTestPositions, func(w *WriteTx, cmd *Command) (any, error) {
		var n int
		if err := json.Unmarshal(cmd.Data, &n); err != nil {
			return nil, err
		}
		var last int64
		for i := 0; i < n; i++ {
			last = w.NextPos()
		}
		return last, w.put(bMeta, []byte("test_last_pos"), u64(uint64(last)))
	})
}

func TestPanickingHandlerIsRefusedAndRolledBack(t *testing.T) {
	f := newTestFSM(t)
	res := f.ApplyBatch([]*raft.Log{
		logEntry(t, 1, OpRoomForget, ForgetCmd{UserID: "@u:x", RoomID: "!a:x"}),
		logEntry(t, 2, opTestPanicAfterWrite, struct{}{}),
		logEntry(t, 3, OpRoomForget, ForgetCmd{UserID: "@u:x", RoomID: "!b:x"}),
	})
	if res[0].(Result).Err != nil || res[2].(Result).Err != nil {
		t.Fatalf("results = %v", res)
	}
	wantErrcode(t, res[1].(Result).Err, http.StatusInternalServerError, "M_UNKNOWN")
	_ = f.Store().View(func(r *ReadTx) error {
		if r.Forgotten("@half:x", "!p:x") {
			t.Error("the panicking handler's write survived")
		}
		if !r.Forgotten("@u:x", "!a:x") || !r.Forgotten("@u:x", "!b:x") || r.AppliedIndex() != 3 {
			t.Error("the rest of the batch is missing")
		}
		return nil
	})
}

// pos = index<<16 | sub: a command may take 65536 positions and no more,
// or its positions would run into the next index's.
func TestCommandTakingTooManyPositionsIsRefused(t *testing.T) {
	f := newTestFSM(t)
	res := f.ApplyBatch([]*raft.Log{
		logEntry(t, 1, opTestPositions, maxSubPos),
		logEntry(t, 2, opTestPositions, maxSubPos+1),
	})
	if r := res[0].(Result); r.Err != nil || r.Value.(int64) != MaxPosAt(1) {
		t.Fatalf("65536 positions: %+v, want last %d", r, MaxPosAt(1))
	}
	wantErrcode(t, res[1].(Result).Err, http.StatusRequestEntityTooLarge, "M_TOO_LARGE")
	_ = f.Store().View(func(r *ReadTx) error {
		if got := int64(getU64(r.get(bMeta, []byte("test_last_pos")))); got != MaxPosAt(1) {
			t.Errorf("refused command left its write: last pos %d", got)
		}
		return nil
	})
}

// A real op that takes a position per item: receipts (one per thread).
// They are capped per command, and their positions count towards the
// guard like any other.
func TestReceiptFanOutIsBounded(t *testing.T) {
	u := newUDFSM(t)
	u.world()
	marks := make([]ReceiptMark, MaxReceiptsPerCommand+1)
	for i := range marks {
		marks[i] = ReceiptMark{Type: ReceiptRead, EventID: "$e1", ThreadID: fmt.Sprintf("t%d", i)}
	}
	u.wantRefusal(OpReceiptPut, ReceiptPut{RoomID: "!r:t", UserID: "@alice:t", Receipts: marks}, http.StatusRequestEntityTooLarge, "M_TOO_LARGE")

	cmd := &Command{Op: OpReceiptPut, TS: 1, Data: mustJSON(t, ReceiptPut{RoomID: "!r:t", UserID: "@alice:t", Receipts: marks[:2]})}
	_ = u.store.update(func(tx *bolt.Tx) error {
		w := &WriteTx{ReadTx: ReadTx{tx: tx}, index: u.index + 1, sub: maxSubPos - 1,
			touched: &Touched{Users: map[string]bool{}, Rooms: map[string]bool{}}}
		_, err := runHandler(handlers[OpReceiptPut], w, cmd, nil)
		wantErrcode(t, err, http.StatusRequestEntityTooLarge, "M_TOO_LARGE")
		if !w.dirty {
			t.Error("the refusal came before the writes it must roll back")
		}
		return errRollback
	})
	u.view(func(r *ReadTx) {
		if _, ok := r.UserReceipt("!r:t", "@alice:t", ReceiptRead, "t0"); ok {
			t.Fatal("a refused receipt command left receipts behind")
		}
	})
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestRoomEventsCountIsBounded(t *testing.T) {
	u := newUDFSM(t)
	u.world()
	events := make([]json.RawMessage, maxSubPos+1)
	for i := range events {
		events[i] = json.RawMessage(`{}`)
	}
	u.wantRefusal(OpRoomEvents, RoomEventsCmd{RoomID: "!r:t", Events: events}, http.StatusRequestEntityTooLarge, "M_TOO_LARGE")
}

// Deleting many devices with keys in one command records the user's device
// list change once (one position, one scan of the user's rooms).
func TestDeviceListChangeRecordedOncePerCommand(t *testing.T) {
	u := newUDFSM(t)
	u.world()
	for _, d := range []string{"A1", "A2"} {
		u.mustApply(OpKeysUpload, KeysUpload{UserID: "@alice:t", DeviceID: d, DeviceKeys: deviceKeysJSON("@alice:t", d, "c"+d)})
	}
	pos := u.maxPos()
	u.seed(func(w *WriteTx) error {
		for _, d := range []string{"A1", "A2"} {
			if _, err := w.deleteDevice("@alice:t", d); err != nil {
				return err
			}
		}
		if w.sub != 1 {
			t.Errorf("deleting two keyed devices took %d positions, want 1", w.sub)
		}
		return nil
	})
	u.view(func(r *ReadTx) {
		if got := r.DeviceListChangesSince(pos); len(got) != 1 || got[0] != "@alice:t" {
			t.Fatalf("changes = %v", got)
		}
	})
}

// Chunks of a committed blob have no staging record; a chunk added after
// the commit used to restage the blob, so an abort (or the day-old sweep)
// deleted the committed content with it.
func TestMediaChunkCannotReopenCommittedBlob(t *testing.T) {
	a := newAcctFSM(t)
	sum := fmt.Sprintf("%x", bytes.Repeat([]byte{1}, 32))
	a.mustApply(OpMediaChunk, MediaChunk{Blob: "blobX", UserID: "@a:t", Index: 0, Data: []byte("hello")})
	a.mustApply(OpMediaCommit, MediaCommit{MediaID: "m1", Blob: "blobX", UserID: "@a:t", Size: 5, SHA256: sum, Chunks: 1})
	_, err := a.apply(OpMediaChunk, MediaChunk{Blob: "blobX", UserID: "@mallory:t", Index: 1, Data: []byte("more")})
	wantErrcode(t, err, http.StatusConflict, "M_UNKNOWN")
	a.mustApply(OpMediaAbort, MediaAbort{Blob: "blobX", UserID: "@mallory:t"})
	a.view(func(r *ReadTx) {
		rec, err := r.Media("m1")
		if err != nil {
			t.Fatal(err)
		}
		if got := r.MediaChunk(rec, 0); string(got) != "hello" {
			t.Fatalf("committed content = %q", got)
		}
	})
}

func TestPasswordInClearIsRefused(t *testing.T) {
	a := newAcctFSM(t)
	_, err := a.apply(OpAccountRegister, RegisterCmd{UserID: alice, PasswordHash: "hunter2"})
	wantErrcode(t, err, http.StatusBadRequest, "M_BAD_JSON")
	registerAlice(a)
	_, err = a.apply(OpAccountSetPassword, SetPasswordCmd{UserID: alice, PasswordHash: "correct horse battery staple"})
	wantErrcode(t, err, http.StatusBadRequest, "M_BAD_JSON")
	// Registration without a password (SSO, appservice) stays possible.
	a.mustApply(OpAccountRegister, RegisterCmd{UserID: "@bot:test.local"})
	a.view(func(r *ReadTx) {
		if u, _ := r.User(alice); u.PasswordHash != ph("h1") {
			t.Fatalf("password hash = %q", u.PasswordHash)
		}
	})
}

func TestSigningKeyMustBeWellFormed(t *testing.T) {
	a := newAcctFSM(t)
	for _, k := range []SigningKey{{}, {KeyID: "ed25519:a"}, {KeyID: "ed25519:", Seed: make([]byte, 32)}, {KeyID: "rsa:a", Seed: make([]byte, 32)}, {KeyID: "ed25519:a", Seed: make([]byte, 31)}} {
		_, err := a.apply(OpSigningKeySet, k)
		wantErrcode(t, err, http.StatusBadRequest, "M_BAD_JSON")
	}
	good := SigningKey{KeyID: "ed25519:a", Seed: bytes.Repeat([]byte{7}, 32)}
	a.mustApply(OpSigningKeySet, good)
	v := a.mustApply(OpSigningKeySet, SigningKey{KeyID: "ed25519:b", Seed: make([]byte, 32)})
	if k := v.(*SigningKey); k.KeyID != "ed25519:a" {
		t.Fatalf("second key replaced the first: %+v", k)
	}
}

func TestEmptyIDsAreRefusedBeforeWriting(t *testing.T) {
	f := newTestFSM(t)
	res := f.ApplyBatch([]*raft.Log{
		logEntry(t, 1, OpAliasPut, AliasCmd{Alias: "", RoomID: "!r:x"}),
		logEntry(t, 2, OpRoomForget, ForgetCmd{}),
		logEntry(t, 3, OpToDeviceAck, ToDeviceAck{UserID: "@u:x"}),
		logEntry(t, 4, OpSignaturesUpload, SignaturesUpload{Entries: []SignatureEntry{{TargetUser: "@u:x", TargetKey: "D", SignerKeyID: "k", Signature: "s"}}}),
	})
	for i, r := range res {
		wantErrcode(t, r.(Result).Err, http.StatusBadRequest, "M_BAD_JSON")
		_ = i
	}
}

// A NUL in an ack's device ID made its key prefix reach into the queue of
// the device whose ID is the part before the NUL.
func TestToDeviceAckCannotReachAnotherQueue(t *testing.T) {
	u := newUDFSM(t)
	u.world()
	u.mustApply(OpToDeviceSend, ToDeviceSend{Sender: "@bob:t", Type: "m.x", Messages: map[string]map[string]json.RawMessage{
		"@alice:t": {"A1": json.RawMessage(`{}`)}}})
	u.wantRefusal(OpToDeviceAck, ToDeviceAck{UserID: "@alice:t", DeviceID: "A1\x00", UpTo: u.maxPos()}, http.StatusBadRequest, "M_BAD_JSON")
	u.view(func(r *ReadTx) {
		if got := r.ToDeviceSince("@alice:t", "A1", -1, 0); len(got) != 1 {
			t.Fatalf("A1's queue = %v", got)
		}
	})
}

func TestRestoreRejectsGarbageAndKeepsStore(t *testing.T) {
	f := newTestFSM(t)
	f.ApplyBatch([]*raft.Log{logEntry(t, 1, OpRoomForget, ForgetCmd{UserID: "@u:x", RoomID: "!a:x"})})
	before, _ := f.Store().StateHash()
	if err := f.Restore(io.NopCloser(bytes.NewReader([]byte("not a bbolt file at all")))); err == nil {
		t.Fatal("garbage snapshot restored")
	}
	after, err := f.Store().StateHash()
	if err != nil || after != before || f.Store().AppliedIndex() != 1 {
		t.Fatalf("store changed by a failed restore: %v %s %s", err, before, after)
	}
	if _, err := os.Stat(f.Store().path + ".restore"); !os.IsNotExist(err) {
		t.Fatalf("side file left behind: %v", err)
	}
}

// snapshotOf persists f's state.
func snapshotOf(t *testing.T, f *FSM) []byte {
	t.Helper()
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release()
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	return sink.Bytes()
}

// Readers keep reading while Restore swaps the file under them (run with
// -race): each read sees the old store or the new one, never an error; the
// PDU cache and the notifier start over.
func TestRestoreWithConcurrentReaders(t *testing.T) {
	small, big := newTestFSM(t), newTestFSM(t)
	small.ApplyBatch([]*raft.Log{logEntry(t, 1, OpRoomForget, ForgetCmd{UserID: "@u:x", RoomID: "!a:x"})})
	var logs []*raft.Log
	for i := uint64(1); i <= 20; i++ {
		logs = append(logs, logEntry(t, i, OpRoomForget, ForgetCmd{UserID: "@u:x", RoomID: fmt.Sprintf("!r%d:x", i)}))
	}
	big.ApplyBatch(logs)
	snaps := [][]byte{snapshotOf(t, small), snapshotOf(t, big)}

	f := newTestFSM(t)
	var stop atomic.Bool
	var wg sync.WaitGroup
	var reads atomic.Int64
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				err := f.Store().View(func(r *ReadTx) error {
					idx := r.AppliedIndex()
					n := 0
					r.scan(bForgotten, nil, func(_, _ []byte) bool { n++; return true })
					if !(idx == 0 && n == 0 || idx == 1 && n == 1 || idx == 20 && n == 20) {
						return fmt.Errorf("torn view: index %d with %d rows", idx, n)
					}
					return nil
				})
				if err != nil {
					t.Error(err)
					return
				}
				reads.Add(1)
			}
		}()
	}
	for i := 0; i < 10; i++ {
		f.cache.put("$stale", &pdu.PDU{})
		ch, _ := f.Notifier().Changed()
		want := uint64(1)
		if i%2 == 1 {
			want = 20
		}
		if err := f.Restore(io.NopCloser(bytes.NewReader(snaps[i%2]))); err != nil {
			t.Fatal(err)
		}
		select {
		case <-ch:
		default:
			t.Fatal("restore did not wake waiting readers")
		}
		if f.Notifier().Applied() != want || f.Store().AppliedIndex() != want {
			t.Fatalf("after restore: notifier %d, store %d, want %d", f.Notifier().Applied(), f.Store().AppliedIndex(), want)
		}
		if f.cache.get("$stale") != nil {
			t.Fatal("PDU cache survived the restore")
		}
		if !f.Notifier().TouchedSince(want-1, "@nobody:x", nil) {
			t.Fatal("notifier claims to know what happened before the restored index")
		}
	}
	stop.Store(true)
	wg.Wait()
	if reads.Load() == 0 {
		t.Fatal("readers never ran")
	}
}

// Restore while a snapshot of the old store is still being persisted: the
// snapshot's read transaction keeps the old file; readers move on to the
// new one at once instead of waiting behind it.
func TestRestoreDoesNotStallReadersBehindASnapshot(t *testing.T) {
	src := newTestFSM(t)
	var logs []*raft.Log
	for i := uint64(1); i <= 5; i++ {
		logs = append(logs, logEntry(t, i, OpRoomForget, ForgetCmd{UserID: "@u:x", RoomID: fmt.Sprintf("!r%d:x", i)}))
	}
	src.ApplyBatch(logs)
	newer := snapshotOf(t, src)

	f := newTestFSM(t)
	f.ApplyBatch([]*raft.Log{logEntry(t, 1, OpRoomForget, ForgetCmd{UserID: "@u:x", RoomID: "!old:x"})})
	oldHash, _ := f.Store().StateHash()
	pinned, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- f.Restore(io.NopCloser(bytes.NewReader(newer))) }()

	seen := make(chan struct{})
	go func() {
		for f.Store().AppliedIndex() != 5 {
			time.Sleep(2 * time.Millisecond)
		}
		close(seen)
	}()
	select {
	case <-seen:
	case <-time.After(10 * time.Second):
		pinned.Release()
		<-done
		t.Fatal("readers are stalled behind the snapshot being persisted")
	}
	sink := &memSink{}
	if err := pinned.Persist(sink); err != nil {
		t.Fatal(err)
	}
	pinned.Release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// The snapshot taken before the restore holds the old state.
	check := newTestFSM(t)
	if err := check.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if h, _ := check.Store().StateHash(); h != oldHash {
		t.Fatal("the pinned snapshot did not keep the old state")
	}
}

// A store written under another boot may have lost unsynced writes: it is
// set aside (kept as .untrusted) and an empty store is rebuilt in its place.
func TestStoreFromAnotherBootIsSetAside(t *testing.T) {
	if len(currentBootID()) == 0 {
		t.Skip("no boot ID on this system: the store syncs every commit instead")
	}
	path := filepath.Join(t.TempDir(), "state.db")
	st, err := OpenStore(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Discarded {
		t.Fatal("a new store was discarded")
	}
	f := New(st, nil)
	f.ApplyBatch([]*raft.Log{logEntry(t, 1, OpRoomForget, ForgetCmd{UserID: "@u:x", RoomID: "!a:x"})})
	st.Close()

	// Same boot: trusted as it is.
	st, err = OpenStore(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Discarded || st.AppliedIndex() != 1 {
		t.Fatalf("same boot: discarded %v, index %d", st.Discarded, st.AppliedIndex())
	}
	st.Close()

	if err := os.WriteFile(path+".boot", []byte("another-boot\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err = OpenStore(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if !st.Discarded || st.AppliedIndex() != 0 {
		t.Fatalf("other boot: discarded %v, index %d", st.Discarded, st.AppliedIndex())
	}
	if _, err := os.Stat(path + ".untrusted"); err != nil {
		t.Fatalf("the old store was not kept aside: %v", err)
	}
	marker, _ := os.ReadFile(path + ".boot")
	if !bytes.Equal(bytes.TrimSpace(marker), currentBootID()) {
		t.Fatalf("boot marker %q not updated", marker)
	}
}

// A create event for another room used to be stored under the command's
// room ID; every later event then failed auth against it.
func TestCreateEventMustBeForTheCommandsRoom(t *testing.T) {
	f := newWorldFSM(t, t.TempDir())
	b := newEventBuilder(t)
	create := b.build("create", "m.room.create", sk(""), wAlice, map[string]any{"room_version": "11"}, nil)
	data, err := Encode(OpRoomEvents, 1, RoomEventsCmd{RoomID: "!elsewhere:test",
		Create: &RoomCreate{Version: string(wVer), Creator: wAlice}, Events: []json.RawMessage{create}})
	if err != nil {
		t.Fatal(err)
	}
	res := f.Apply(&raft.Log{Index: 1, Type: raft.LogCommand, Data: data}).(Result)
	wantErrcode(t, res.Err, http.StatusBadRequest, "M_BAD_JSON")
	_ = f.Store().View(func(r *ReadTx) error {
		if _, err := r.Room("!elsewhere:test"); err == nil {
			t.Fatal("room stored with another room's create event")
		}
		return nil
	})
}
