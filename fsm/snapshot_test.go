package fsm

import (
	"bytes"
	"io"
	"path/filepath"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// memSink collects a snapshot in memory.
type memSink struct{ bytes.Buffer }

func (m *memSink) ID() string    { return "mem" }
func (m *memSink) Cancel() error { return nil }
func (m *memSink) Close() error  { return nil }

func newTestFSM(t *testing.T) *FSM {
	t.Helper()
	st, err := OpenStore(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return New(st, hclog.NewNullLogger())
}

func logEntry(t *testing.T, index uint64, op string, payload any) *raft.Log {
	t.Helper()
	data, err := Encode(op, 1700000000000, payload)
	if err != nil {
		t.Fatal(err)
	}
	return &raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: data}
}

func TestSnapshotRoundTripIsByteIdentical(t *testing.T) {
	src := newTestFSM(t)
	var logs []*raft.Log
	logs = append(logs, logEntry(t, 1, OpSigningKeySet, SigningKey{KeyID: "ed25519:a", Seed: make([]byte, 32)}))
	for i := uint64(2); i < 50; i++ {
		logs = append(logs, logEntry(t, i, OpRoomForget, ForgetCmd{UserID: "@u:x", RoomID: "!r" + string(rune('a'+i%26)) + ":x"}))
	}
	for i, res := range src.ApplyBatch(logs) {
		if r := res.(Result); r.Err != nil {
			t.Fatalf("entry %d: %v", i+1, r.Err)
		}
	}
	want, err := src.Store().StateHash()
	if err != nil {
		t.Fatal(err)
	}
	snap, err := src.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()

	dst := newTestFSM(t)
	if err := dst.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	got, err := dst.Store().StateHash()
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("restored state hash %s, want %s", got, want)
	}
	if dst.Store().AppliedIndex() != 49 {
		t.Fatalf("applied index after restore = %d, want 49", dst.Store().AppliedIndex())
	}
}

func TestReplayedEntriesAreSkipped(t *testing.T) {
	f := newTestFSM(t)
	first := []*raft.Log{logEntry(t, 1, OpSigningKeySet, SigningKey{KeyID: "ed25519:a", Seed: make([]byte, 32)})}
	f.ApplyBatch(first)
	before, _ := f.Store().StateHash()
	// Raft replays entry 1 after a restart; the store already has it.
	res := f.ApplyBatch(first)
	if res[0].(Result).Err == nil {
		t.Fatal("replayed entry was applied again")
	}
	after, _ := f.Store().StateHash()
	if before != after {
		t.Fatal("replaying an applied entry changed the store")
	}
}

func TestRefusalAfterWriteLeavesNoPartialWrite(t *testing.T) {
	f := newTestFSM(t)
	// alias.put for an unknown room is refused before writing; a forget is
	// applied. The batch commits only the forget.
	res := f.ApplyBatch([]*raft.Log{
		logEntry(t, 1, OpAliasPut, AliasCmd{Alias: "#a:x", RoomID: "!nope:x"}),
		logEntry(t, 2, OpRoomForget, ForgetCmd{UserID: "@u:x", RoomID: "!r:x"}),
	})
	if res[0].(Result).Err == nil || res[1].(Result).Err != nil {
		t.Fatalf("results = %v", res)
	}
	_ = f.Store().View(func(r *ReadTx) error {
		if _, _, ok := r.AliasRoom("#a:x"); ok {
			t.Error("refused alias was written")
		}
		if !r.Forgotten("@u:x", "!r:x") {
			t.Error("applied forget is missing")
		}
		return nil
	})
}

const opTestWriteThenFail = "test.write_then_fail"

func init() {
	register(opTestWriteThenFail, func(w *WriteTx, cmd *Command) (any, error) {
		if err := w.put(bForgotten, key("@half:x", "!r:x"), []byte{1}); err != nil {
			return nil, err
		}
		return nil, errBadRequest("refused after writing")
	})
}

func TestHandlerFailingAfterWriteIsRolledBack(t *testing.T) {
	f := newTestFSM(t)
	res := f.ApplyBatch([]*raft.Log{
		logEntry(t, 1, OpRoomForget, ForgetCmd{UserID: "@u:x", RoomID: "!a:x"}),
		logEntry(t, 2, opTestWriteThenFail, struct{}{}),
		logEntry(t, 3, OpRoomForget, ForgetCmd{UserID: "@u:x", RoomID: "!b:x"}),
	})
	if res[0].(Result).Err != nil || res[1].(Result).Err == nil || res[2].(Result).Err != nil {
		t.Fatalf("results = %v", res)
	}
	_ = f.Store().View(func(r *ReadTx) error {
		if r.Forgotten("@half:x", "!r:x") {
			t.Error("the failed handler's write survived")
		}
		if !r.Forgotten("@u:x", "!a:x") || !r.Forgotten("@u:x", "!b:x") {
			t.Error("the other entries of the batch are missing")
		}
		if r.AppliedIndex() != 3 {
			t.Errorf("applied index %d, want 3", r.AppliedIndex())
		}
		return nil
	})
}
