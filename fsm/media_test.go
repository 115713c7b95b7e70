package fsm

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// mediaFSM applies media commands at a controllable command timestamp.
type mediaFSM struct {
	t     *testing.T
	f     *FSM
	index uint64
	now   int64
}

func newMediaFSM(t *testing.T) *mediaFSM {
	t.Helper()
	st, err := OpenStore(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &mediaFSM{t: t, f: New(st, hclog.NewNullLogger()), now: 1_700_000_000_000}
}

func (m *mediaFSM) apply(op string, payload any) error {
	m.t.Helper()
	m.index++
	data, err := Encode(op, m.now, payload)
	if err != nil {
		m.t.Fatal(err)
	}
	res := m.f.ApplyBatch([]*raft.Log{{Index: m.index, Type: raft.LogCommand, Data: data}})
	return res[0].(Result).Err
}

func (m *mediaFSM) must(op string, payload any) {
	m.t.Helper()
	if err := m.apply(op, payload); err != nil {
		m.t.Fatalf("%s: %v", op, err)
	}
}

func (m *mediaFSM) refused(op string, payload any, status int, errcode string) {
	m.t.Helper()
	err := m.apply(op, payload)
	var fe *Error
	if !errors.As(err, &fe) || fe.Status != status || fe.Errcode != errcode {
		m.t.Fatalf("%s: want %d %s, got %v", op, status, errcode, err)
	}
}

// upload stores content as blob chunks and returns the matching commit.
func (m *mediaFSM) upload(blob, user, mediaID string, content []byte) MediaCommit {
	m.t.Helper()
	n := 0
	for off := 0; off < len(content); off += MediaChunkSize {
		end := min(off+MediaChunkSize, len(content))
		m.must(OpMediaChunk, MediaChunk{Blob: blob, UserID: user, Index: n, Data: content[off:end]})
		n++
	}
	sum := sha256.Sum256(content)
	return MediaCommit{MediaID: mediaID, Blob: blob, UserID: user, ContentType: "text/plain",
		Filename: "a.txt", Size: int64(len(content)), SHA256: hex.EncodeToString(sum[:]), Chunks: n}
}

func (m *mediaFSM) read(mediaID string) (*MediaRecord, []byte) {
	m.t.Helper()
	var rec *MediaRecord
	var out []byte
	err := m.f.Store().View(func(r *ReadTx) error {
		var err error
		if rec, err = r.Media(mediaID); err != nil {
			return err
		}
		for i := 0; i < rec.Chunks; i++ {
			out = append(out, r.MediaChunk(rec, i)...)
		}
		return nil
	})
	if err != nil {
		m.t.Fatalf("read %s: %v", mediaID, err)
	}
	return rec, out
}

func (m *mediaFSM) blobChunks(blob string) int {
	n := 0
	_ = m.f.Store().View(func(r *ReadTx) error {
		r.scan(bMedia, prefix(blob), func(_, _ []byte) bool { n++; return true })
		return nil
	})
	return n
}

func TestMediaUploadRoundTrip(t *testing.T) {
	m := newMediaFSM(t)
	content := bytes.Repeat([]byte("0123456789abcdef"), MediaChunkSize/16*2+100) // 3 chunks
	c := m.upload("blobA", "@a:x", "mediaA", content)
	if c.Chunks != 3 {
		t.Fatalf("chunks = %d", c.Chunks)
	}
	m.must(OpMediaCommit, c)
	rec, got := m.read("mediaA")
	if !rec.Uploaded || rec.Size != int64(len(content)) || rec.ContentType != "text/plain" || rec.Filename != "a.txt" {
		t.Fatalf("record %+v", rec)
	}
	if !bytes.Equal(got, content) {
		t.Fatal("content differs")
	}
	// A second commit to the same ID cannot overwrite it.
	m.refused(OpMediaCommit, m.upload("blobB", "@a:x", "mediaA", []byte("x")), http.StatusConflict, "M_CANNOT_OVERWRITE_MEDIA")
	// An empty upload is allowed.
	m.must(OpMediaCommit, m.upload("blobC", "@a:x", "empty", nil))
	if rec, got := m.read("empty"); rec.Size != 0 || len(got) != 0 {
		t.Fatalf("empty upload: %+v", rec)
	}
}

func TestMediaCommitChecksBlob(t *testing.T) {
	m := newMediaFSM(t)
	content := bytes.Repeat([]byte{7}, MediaChunkSize+10)
	c := m.upload("blob1", "@a:x", "m1", content)
	bad := []func(*MediaCommit){
		func(c *MediaCommit) { c.Chunks = 1 },            // chunk left over
		func(c *MediaCommit) { c.Chunks = 3 },            // chunk missing
		func(c *MediaCommit) { c.Size++ },                // size mismatch
		func(c *MediaCommit) { c.UserID = "@b:x" },       // someone else's blob
		func(c *MediaCommit) { c.MediaID = "../etc" },    // bad ID
		func(c *MediaCommit) { c.SHA256 = "not-a-hash" }, // bad digest
	}
	for i, mut := range bad {
		cc := c
		mut(&cc)
		if err := m.apply(OpMediaCommit, cc); err == nil {
			t.Fatalf("case %d: commit accepted", i)
		}
	}
	// A short chunk before the last one is refused.
	m.must(OpMediaChunk, MediaChunk{Blob: "blob2", UserID: "@a:x", Index: 0, Data: []byte("short")})
	m.must(OpMediaChunk, MediaChunk{Blob: "blob2", UserID: "@a:x", Index: 1, Data: []byte("tail")})
	sum := sha256.Sum256([]byte("shorttail"))
	m.refused(OpMediaCommit, MediaCommit{MediaID: "m2", Blob: "blob2", UserID: "@a:x", Size: 9,
		SHA256: hex.EncodeToString(sum[:]), Chunks: 2}, http.StatusBadRequest, "M_BAD_JSON")
	// Chunks are written once, by their uploader.
	m.refused(OpMediaChunk, MediaChunk{Blob: "blob2", UserID: "@a:x", Index: 0, Data: []byte("again")}, http.StatusConflict, "M_UNKNOWN")
	m.refused(OpMediaChunk, MediaChunk{Blob: "blob2", UserID: "@b:x", Index: 2, Data: []byte("x")}, http.StatusForbidden, "M_FORBIDDEN")
	m.refused(OpMediaChunk, MediaChunk{Blob: "blob3", UserID: "@a:x", Index: 0, Data: make([]byte, MediaChunkSize+1)}, http.StatusBadRequest, "M_BAD_JSON")
	// The original is still committable.
	m.must(OpMediaCommit, c)
}

func TestMediaAbortAndSweep(t *testing.T) {
	m := newMediaFSM(t)
	m.upload("gone", "@a:x", "unused", []byte("abc"))
	m.refused(OpMediaAbort, MediaAbort{Blob: "gone", UserID: "@b:x"}, http.StatusForbidden, "M_FORBIDDEN")
	m.must(OpMediaAbort, MediaAbort{Blob: "gone", UserID: "@a:x"})
	if n := m.blobChunks("gone"); n != 0 {
		t.Fatalf("aborted blob kept %d chunks", n)
	}
	m.must(OpMediaAbort, MediaAbort{Blob: "gone", UserID: "@a:x"}) // idempotent

	m.upload("orphan", "@a:x", "unused", []byte("abc"))
	m.now += staleBlobMillis + 1
	m.upload("fresh", "@a:x", "unused", []byte("def"))
	m.must(OpMediaCreate, MediaCreate{MediaID: "r1", UserID: "@a:x", ExpiresTS: m.now + 1000})
	if n := m.blobChunks("orphan"); n != 0 {
		t.Fatalf("stale blob not swept (%d chunks)", n)
	}
	if n := m.blobChunks("fresh"); n != 1 {
		t.Fatalf("fresh blob swept (%d chunks)", n)
	}
}

func TestMediaReservation(t *testing.T) {
	m := newMediaFSM(t)
	exp := m.now + 60_000
	m.must(OpMediaCreate, MediaCreate{MediaID: "res1", UserID: "@a:x", ExpiresTS: exp})
	m.refused(OpMediaCreate, MediaCreate{MediaID: "res1", UserID: "@a:x", ExpiresTS: exp}, http.StatusConflict, "M_UNKNOWN")
	if rec, _ := m.read("res1"); rec.Uploaded || rec.ExpiresTS != exp || rec.Uploader != "@a:x" {
		t.Fatalf("reservation %+v", rec)
	}
	// Only the creator fills it, once.
	c := m.upload("b1", "@b:x", "res1", []byte("hello"))
	c.Reserved = true
	m.refused(OpMediaCommit, c, http.StatusForbidden, "M_FORBIDDEN")
	c = m.upload("b2", "@a:x", "res1", []byte("hello"))
	c.Reserved = true
	m.must(OpMediaCommit, c)
	rec, got := m.read("res1")
	if !rec.Uploaded || string(got) != "hello" || rec.CreatedTS != m.now {
		t.Fatalf("filled reservation %+v %q", rec, got)
	}
	c = m.upload("b3", "@a:x", "res1", []byte("again"))
	c.Reserved = true
	m.refused(OpMediaCommit, c, http.StatusConflict, "M_CANNOT_OVERWRITE_MEDIA")
	c.MediaID = "never"
	m.refused(OpMediaCommit, c, http.StatusNotFound, "M_NOT_FOUND")

	// Pending reservations are bounded per user; expired ones do not count.
	for i := 0; i < MaxPendingMedia; i++ {
		m.must(OpMediaCreate, MediaCreate{MediaID: fmt.Sprintf("p%d", i), UserID: "@a:x", ExpiresTS: exp})
	}
	m.refused(OpMediaCreate, MediaCreate{MediaID: "over", UserID: "@a:x", ExpiresTS: exp}, http.StatusTooManyRequests, "M_LIMIT_EXCEEDED")
	m.must(OpMediaCreate, MediaCreate{MediaID: "other", UserID: "@b:x", ExpiresTS: exp})
	c = m.upload("b4", "@a:x", "p0", []byte("late"))
	c.Reserved = true
	m.now = exp
	m.refused(OpMediaCommit, c, http.StatusNotFound, "M_NOT_FOUND")
	m.must(OpMediaCreate, MediaCreate{MediaID: "later", UserID: "@a:x", ExpiresTS: exp + 1000})
	err := m.f.Store().View(func(r *ReadTx) error {
		if _, err := r.Media("p0"); !errors.Is(err, ErrNotFound) {
			t.Errorf("expired reservation kept: %v", err)
		}
		if live, expired := r.pendingMedia("@a:x", m.now); live != 1 || len(expired) != 0 {
			t.Errorf("pending = %d live, %v expired", live, expired)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
