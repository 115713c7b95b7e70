package fsm

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"net/http"
)

// The media repository. An upload travels as a blob: a run of media.chunk
// commands, each at most MediaChunkSize bytes so that no log entry (nor an
// AppendEntries batch of them) carries a whole file, then one media.commit
// that checks the blob is complete and binds it to a media ID. Until the
// commit, nothing is visible. media.create reserves an ID for an
// asynchronous upload; media.abort drops a blob whose upload failed.
const (
	OpMediaCreate = "media.create"
	OpMediaChunk  = "media.chunk"
	OpMediaCommit = "media.commit"
	OpMediaAbort  = "media.abort"

	// MediaChunkSize is the size of every chunk of a blob but the last.
	MediaChunkSize = 512 << 10
	// MaxMediaChunks bounds a blob (128 MiB); the API's own limit is lower.
	MaxMediaChunks = 256
	// MaxPendingMedia is how many unexpired, unfilled reservations a user
	// may hold.
	MaxPendingMedia = 10

	// A blob still uncommitted a day after its first chunk was orphaned
	// (its uploader crashed mid-way) and is swept.
	staleBlobMillis = 24 * 60 * 60 * 1000
	sweepScanLimit  = 64
	sweepDropLimit  = 2
)

// MediaRecord is a media ID's metadata: a reservation (Uploaded false,
// ExpiresTS set) or uploaded content stored as blob chunks.
type MediaRecord struct {
	Uploader    string `json:"uploader"`
	CreatedTS   int64  `json:"created_ts"`
	ExpiresTS   int64  `json:"unused_expires_at,omitempty"`
	Uploaded    bool   `json:"uploaded"`
	ContentType string `json:"content_type,omitempty"`
	Filename    string `json:"filename,omitempty"`
	Size        int64  `json:"size"`
	SHA256      string `json:"sha256,omitempty"` // hex, computed by the proposer
	Blob        string `json:"blob,omitempty"`
	Chunks      int    `json:"chunks"`
}

// MediaCreate reserves MediaID for UserID until ExpiresTS (unix ms).
type MediaCreate struct {
	MediaID   string `json:"media_id"`
	UserID    string `json:"user_id"`
	ExpiresTS int64  `json:"unused_expires_at"`
}

// MediaChunk stores chunk Index of Blob.
type MediaChunk struct {
	Blob   string `json:"blob"`
	UserID string `json:"user_id"`
	Index  int    `json:"index"`
	Data   []byte `json:"data"`
}

// MediaCommit binds a complete blob to MediaID. Reserved says the ID was
// made by media.create (PUT /upload/{serverName}/{mediaId}); otherwise it
// must be new.
type MediaCommit struct {
	MediaID     string `json:"media_id"`
	Blob        string `json:"blob"`
	UserID      string `json:"user_id"`
	Reserved    bool   `json:"reserved,omitempty"`
	ContentType string `json:"content_type,omitempty"`
	Filename    string `json:"filename,omitempty"`
	Size        int64  `json:"size"`
	SHA256      string `json:"sha256"`
	Chunks      int    `json:"chunks"`
}

// MediaAbort drops an uncommitted blob.
type MediaAbort struct {
	Blob   string `json:"blob"`
	UserID string `json:"user_id"`
}

// stagingRecord tracks an uncommitted blob, for ownership and sweeping.
type stagingRecord struct {
	UserID    string `json:"user_id"`
	StartedTS int64  `json:"started_ts"`
}

// ValidMediaID reports whether id uses only the characters the spec
// allows in a media ID (A-Za-z0-9, _ and -); it also keeps IDs apart
// from the NUL-led index keys of bMediaMeta.
func ValidMediaID(id string) bool {
	if id == "" || len(id) > 255 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func chunkKey(blob string, i int) []byte {
	return binary.BigEndian.AppendUint32(prefix(blob), uint32(i))
}

func pendingKey(user, mediaID string) []byte { return key("", "p", user, mediaID) }
func stagingKey(blob string) []byte          { return key("", "s", blob) }

func errCannotOverwrite() *Error {
	return Errorf(http.StatusConflict, "M_CANNOT_OVERWRITE_MEDIA", "Media ID already has content")
}

func init() {
	register(OpMediaCreate, applyMediaCreate)
	register(OpMediaChunk, applyMediaChunk)
	register(OpMediaCommit, applyMediaCommit)
	register(OpMediaAbort, applyMediaAbort)
}

func applyMediaCreate(w *WriteTx, cmd *Command) (any, error) {
	c, err := decode[MediaCreate](cmd)
	if err != nil {
		return nil, err
	}
	if !ValidMediaID(c.MediaID) || c.UserID == "" || c.ExpiresTS <= cmd.TS {
		return nil, errBadRequest("invalid media reservation")
	}
	if w.get(bMediaMeta, []byte(c.MediaID)) != nil {
		return nil, Errorf(http.StatusConflict, "M_UNKNOWN", "media ID already in use")
	}
	live, expired := w.pendingMedia(c.UserID, cmd.TS)
	if live >= MaxPendingMedia {
		return nil, Errorf(http.StatusTooManyRequests, "M_LIMIT_EXCEEDED", "too many pending media uploads")
	}
	for _, id := range expired {
		if err := w.del(bMediaMeta, []byte(id)); err != nil {
			return nil, err
		}
		if err := w.del(bMediaMeta, pendingKey(c.UserID, id)); err != nil {
			return nil, err
		}
	}
	rec := MediaRecord{Uploader: c.UserID, CreatedTS: cmd.TS, ExpiresTS: c.ExpiresTS}
	if err := w.putJSON(bMediaMeta, []byte(c.MediaID), rec); err != nil {
		return nil, err
	}
	if err := w.put(bMediaMeta, pendingKey(c.UserID, c.MediaID), nil); err != nil {
		return nil, err
	}
	return nil, w.sweepStaleBlobs(cmd.TS)
}

// pendingMedia counts user's live reservations at now and lists the
// expired ones.
func (r *ReadTx) pendingMedia(user string, now int64) (live int, expired []string) {
	pfx := prefix("", "p", user)
	r.scan(bMediaMeta, pfx, func(k, _ []byte) bool {
		id := string(k[len(pfx):])
		rec, err := r.Media(id)
		switch {
		case err != nil || rec.Uploaded:
			// commit removes the index entry; tolerate a stray one.
		case rec.ExpiresTS <= now:
			expired = append(expired, id)
		default:
			live++
		}
		return true
	})
	return live, expired
}

func applyMediaChunk(w *WriteTx, cmd *Command) (any, error) {
	c, err := decode[MediaChunk](cmd)
	if err != nil {
		return nil, err
	}
	if !ValidMediaID(c.Blob) || c.UserID == "" || c.Index < 0 || c.Index >= MaxMediaChunks ||
		len(c.Data) == 0 || len(c.Data) > MediaChunkSize {
		return nil, errBadRequest("invalid media chunk")
	}
	var st stagingRecord
	staged := w.getJSON(bMediaMeta, stagingKey(c.Blob), &st) == nil
	if staged && st.UserID != c.UserID {
		return nil, errForbidden("upload belongs to another user")
	}
	if w.get(bMedia, chunkKey(c.Blob, c.Index)) != nil {
		return nil, Errorf(http.StatusConflict, "M_UNKNOWN", "chunk %d already stored", c.Index)
	}
	if !staged && w.hasPrefix(bMedia, prefix(c.Blob)) {
		// Chunks without a staging record belong to a committed blob: a
		// chunk added now would restage it, and an abort or the sweep
		// would then delete committed content.
		return nil, Errorf(http.StatusConflict, "M_UNKNOWN", "upload %s is already committed", c.Blob)
	}
	if !staged {
		st = stagingRecord{UserID: c.UserID, StartedTS: cmd.TS}
		if err := w.putJSON(bMediaMeta, stagingKey(c.Blob), st); err != nil {
			return nil, err
		}
	}
	return nil, w.put(bMedia, chunkKey(c.Blob, c.Index), c.Data)
}

func applyMediaCommit(w *WriteTx, cmd *Command) (any, error) {
	c, err := decode[MediaCommit](cmd)
	if err != nil {
		return nil, err
	}
	if !ValidMediaID(c.MediaID) || !ValidMediaID(c.Blob) || c.UserID == "" ||
		c.Chunks < 0 || c.Chunks > MaxMediaChunks || c.Size < 0 || !validSHA256(c.SHA256) {
		return nil, errBadRequest("invalid media commit")
	}
	created := cmd.TS
	rec, err := w.Media(c.MediaID)
	switch {
	case c.Reserved && err != nil:
		return nil, errNotFound("unknown media ID")
	case c.Reserved && rec.Uploader != c.UserID:
		return nil, errForbidden("media ID was created by another user")
	case c.Reserved && rec.Uploaded, !c.Reserved && err == nil:
		return nil, errCannotOverwrite()
	case c.Reserved && rec.ExpiresTS <= cmd.TS:
		return nil, errNotFound("media ID has expired")
	case c.Reserved:
		created = rec.CreatedTS
	}
	if err := w.checkBlob(c); err != nil {
		return nil, err
	}
	out := MediaRecord{Uploader: c.UserID, CreatedTS: created, Uploaded: true, ContentType: c.ContentType,
		Filename: c.Filename, Size: c.Size, SHA256: c.SHA256, Blob: c.Blob, Chunks: c.Chunks}
	if err := w.putJSON(bMediaMeta, []byte(c.MediaID), out); err != nil {
		return nil, err
	}
	if err := w.del(bMediaMeta, stagingKey(c.Blob)); err != nil {
		return nil, err
	}
	if c.Reserved {
		if err := w.del(bMediaMeta, pendingKey(c.UserID, c.MediaID)); err != nil {
			return nil, err
		}
	}
	return nil, w.sweepStaleBlobs(cmd.TS)
}

// checkBlob verifies the blob has exactly c.Chunks chunks, all full but the
// last, adding up to c.Size, so that offsets map to chunks by division.
func (r *ReadTx) checkBlob(c *MediaCommit) error {
	if c.Chunks > 0 {
		var st stagingRecord
		if r.getJSON(bMediaMeta, stagingKey(c.Blob), &st) != nil {
			return errBadRequest("unknown upload")
		}
		if st.UserID != c.UserID {
			return errForbidden("upload belongs to another user")
		}
	}
	var total int64
	for i := 0; i < c.Chunks; i++ {
		v := r.get(bMedia, chunkKey(c.Blob, i))
		if v == nil {
			return errBadRequest("upload is missing chunk %d", i)
		}
		if i < c.Chunks-1 && len(v) != MediaChunkSize {
			return errBadRequest("chunk %d is short", i)
		}
		total += int64(len(v))
	}
	if r.get(bMedia, chunkKey(c.Blob, c.Chunks)) != nil || total != c.Size {
		return errBadRequest("upload does not match its declared size")
	}
	return nil
}

func applyMediaAbort(w *WriteTx, cmd *Command) (any, error) {
	c, err := decode[MediaAbort](cmd)
	if err != nil {
		return nil, err
	}
	if !ValidMediaID(c.Blob) || c.UserID == "" {
		return nil, errBadRequest("invalid media abort")
	}
	var st stagingRecord
	if w.getJSON(bMediaMeta, stagingKey(c.Blob), &st) != nil {
		return nil, nil // never started, or already committed or swept
	}
	if st.UserID != c.UserID {
		return nil, errForbidden("upload belongs to another user")
	}
	return nil, w.dropBlob(c.Blob)
}

// dropBlob deletes an uncommitted blob's chunks and staging record.
func (w *WriteTx) dropBlob(blob string) error {
	var keys [][]byte
	w.scan(bMedia, prefix(blob), func(k, _ []byte) bool {
		keys = append(keys, append([]byte{}, k...))
		return true
	})
	for _, k := range keys {
		if err := w.del(bMedia, k); err != nil {
			return err
		}
	}
	return w.del(bMediaMeta, stagingKey(blob))
}

// sweepStaleBlobs drops a few blobs orphaned long ago. now is the command's
// timestamp, so every node drops the same ones.
func (w *WriteTx) sweepStaleBlobs(now int64) error {
	var stale []string
	pfx := prefix("", "s")
	seen := 0
	w.scan(bMediaMeta, pfx, func(k, v []byte) bool {
		seen++
		var st stagingRecord
		if json.Unmarshal(v, &st) == nil && st.StartedTS < now-staleBlobMillis {
			stale = append(stale, string(k[len(pfx):]))
		}
		return seen < sweepScanLimit && len(stale) < sweepDropLimit
	})
	for _, blob := range stale {
		if err := w.dropBlob(blob); err != nil {
			return err
		}
	}
	return nil
}

func validSHA256(s string) bool {
	b, err := hex.DecodeString(s)
	return err == nil && len(b) == 32
}

// Media reads a media ID's record; ErrNotFound if absent.
func (r *ReadTx) Media(mediaID string) (*MediaRecord, error) {
	if !ValidMediaID(mediaID) {
		return nil, ErrNotFound
	}
	var rec MediaRecord
	if err := r.getJSON(bMediaMeta, []byte(mediaID), &rec); err != nil {
		return nil, err
	}
	return &rec, nil
}

// MediaChunk copies chunk i of an uploaded record's content; nil if absent.
func (r *ReadTx) MediaChunk(rec *MediaRecord, i int) []byte {
	v := r.get(bMedia, chunkKey(rec.Blob, i))
	if v == nil {
		return nil
	}
	return append([]byte{}, v...)
}
