package clientapi

import (
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/ganglion/ganglion/fsm"
)

const (
	// defaultMediaWait and maxMediaWait bound timeout_ms, the wait for a
	// reserved media ID's content.
	defaultMediaWait = 20 * time.Second
	maxMediaWait     = 60 * time.Second
	// followerGrace is how long a node that does not lead waits for an
	// unknown media ID to arrive through the log, so that a client which
	// uploaded through another node still sees its own upload.
	followerGrace = time.Second

	// mediaCSP is the spec's recommended policy for served content.
	mediaCSP = "sandbox; default-src 'none'; script-src 'none'; plugin-types application/pdf; " +
		"style-src 'unsafe-inline'; object-src 'self';"
)

// inlineTypes are the content types the spec allows to be served inline.
var inlineTypes = map[string]bool{
	"text/css": true, "text/plain": true, "text/csv": true, "application/json": true,
	"application/ld+json": true, "image/jpeg": true, "image/gif": true, "image/png": true,
	"image/apng": true, "image/webp": true, "image/avif": true, "video/mp4": true,
	"video/webm": true, "video/ogg": true, "video/quicktime": true, "audio/mp4": true,
	"audio/webm": true, "audio/aac": true, "audio/mpeg": true, "audio/ogg": true,
	"audio/wave": true, "audio/wav": true, "audio/x-wav": true, "audio/x-pn-wav": true,
	"audio/flac": true, "audio/x-flac": true,
}

// downloadMedia serves GET .../download/{serverName}/{mediaId}[/{fileName}],
// both the legacy unauthenticated and the authenticated paths.
func (a *API) downloadMedia(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	rec, ok := a.mediaForRead(w, r, p)
	if !ok {
		return
	}
	name := p.ByName("fileName")
	if name == "" {
		name = rec.Filename
	}
	ctype := servedContentType(rec.ContentType)
	setMediaHeaders(w, r, ctype, contentDisposition(ctype, name))
	w.Header().Set("ETag", `"`+rec.SHA256+`"`)
	// ServeContent answers Range and conditional requests and sets
	// Content-Length; the reader fetches one chunk at a time.
	http.ServeContent(w, r, "", time.UnixMilli(rec.CreatedTS), &mediaReader{store: a.store, rec: rec})
}

// mediaForRead resolves a download or thumbnail request's media, waiting
// up to timeout_ms for a reserved ID to be filled. It writes the error.
func (a *API) mediaForRead(w http.ResponseWriter, r *http.Request, p httprouter.Params) (*fsm.MediaRecord, bool) {
	mediaID := p.ByName("mediaId")
	// No federation: media of other servers is never here.
	if p.ByName("serverName") != a.cfg.ServerName || !fsm.ValidMediaID(mediaID) {
		writeError(w, http.StatusNotFound, "M_NOT_FOUND", "media not found")
		return nil, false
	}
	wait := defaultMediaWait
	if v := r.URL.Query().Get("timeout_ms"); v != "" {
		ms, err := strconv.ParseInt(v, 10, 64)
		if err != nil || ms < 0 {
			writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "timeout_ms must be a non-negative integer")
			return nil, false
		}
		wait = time.Duration(min(ms, maxMediaWait.Milliseconds())) * time.Millisecond
	}
	rec, state := a.lookupMedia(r.Context(), mediaID, wait)
	switch state {
	case mediaReady:
		return rec, true
	case mediaPending:
		writeError(w, http.StatusGatewayTimeout, "M_NOT_YET_UPLOADED", "Media has not been uploaded yet")
	default:
		writeError(w, http.StatusNotFound, "M_NOT_FOUND", "media not found")
	}
	return nil, false
}

type mediaState int

const (
	mediaMissing mediaState = iota // unknown or expired reservation
	mediaPending                   // reserved, not uploaded yet
	mediaReady                     // uploaded
)

// lookupMedia reads a media record, waiting up to pendingWait while it is
// reserved but empty (and up to followerGrace when it is unknown here and
// this node does not lead). An expired reservation is missing.
func (a *API) lookupMedia(ctx context.Context, mediaID string, pendingWait time.Duration) (*fsm.MediaRecord, mediaState) {
	start := time.Now()
	for {
		changed, _ := a.node.Notifier().Changed()
		var rec *fsm.MediaRecord
		_ = a.store.View(func(rt *fsm.ReadTx) error {
			rec, _ = rt.Media(mediaID)
			return nil
		})
		now := time.Now()
		state, limit := mediaMissing, time.Duration(0)
		switch {
		case rec == nil:
			if !a.node.IsLeader() {
				limit = followerGrace
			}
		case rec.Uploaded:
			return rec, mediaReady
		case now.UnixMilli() >= rec.ExpiresTS:
			return nil, mediaMissing
		default:
			state, limit = mediaPending, pendingWait
		}
		remaining := limit - now.Sub(start)
		if remaining <= 0 {
			return rec, state
		}
		timer := time.NewTimer(remaining)
		select {
		case <-changed:
		case <-timer.C:
		case <-ctx.Done():
		}
		timer.Stop()
		if ctx.Err() != nil {
			return rec, state
		}
	}
}

// servedContentType is the upload's content type, or octet-stream when it
// was unknown.
func servedContentType(ctype string) string {
	if ctype == "" {
		return "application/octet-stream"
	}
	return ctype
}

// contentDisposition is inline for the spec's safe types and attachment
// otherwise, with the filename encoded per RFC 6266 (filename*= for
// non-ASCII names).
func contentDisposition(ctype, filename string) string {
	kind := "attachment"
	if base, _, err := mime.ParseMediaType(ctype); err == nil && inlineTypes[base] {
		kind = "inline"
	}
	if filename == "" {
		return kind
	}
	if v := mime.FormatMediaType(kind, map[string]string{"filename": filename}); v != "" {
		return v
	}
	return kind
}

// setMediaHeaders sets the headers every media answer carries.
func setMediaHeaders(w http.ResponseWriter, r *http.Request, ctype, disposition string) {
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Content-Disposition", disposition)
	h.Set("Content-Security-Policy", mediaCSP)
	h.Set("Cross-Origin-Resource-Policy", "cross-origin")
	h.Set("X-Content-Type-Options", "nosniff")
	// Content never changes once uploaded; authenticated answers are not
	// for shared caches.
	if callerOf(r) != nil {
		h.Set("Cache-Control", "private, max-age=86400, immutable")
	} else {
		h.Set("Cache-Control", "public, max-age=86400, immutable")
	}
}

// mediaReader reads uploaded content chunk by chunk, each in its own short
// read transaction: a slow client must not hold one open (bbolt cannot
// grow its file while a read transaction is open).
type mediaReader struct {
	store *fsm.Store
	rec   *fsm.MediaRecord
	off   int64
	index int    // which chunk buf holds
	buf   []byte // nil until the first read
}

func (m *mediaReader) Read(p []byte) (int, error) {
	if m.off >= m.rec.Size {
		return 0, io.EOF
	}
	i := int(m.off / fsm.MediaChunkSize)
	if m.buf == nil || m.index != i {
		var chunk []byte
		_ = m.store.View(func(rt *fsm.ReadTx) error {
			chunk = rt.MediaChunk(m.rec, i)
			return nil
		})
		if chunk == nil {
			return 0, io.ErrUnexpectedEOF
		}
		m.buf, m.index = chunk, i
	}
	within := int(m.off % fsm.MediaChunkSize)
	if within >= len(m.buf) {
		return 0, io.ErrUnexpectedEOF
	}
	n := copy(p, m.buf[within:])
	m.off += int64(n)
	return n, nil
}

func (m *mediaReader) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += m.off
	case io.SeekEnd:
		offset += m.rec.Size
	default:
		return 0, errors.New("bad whence")
	}
	if offset < 0 {
		return 0, errors.New("negative position")
	}
	m.off = offset
	return offset, nil
}

// readAll loads a whole upload (for thumbnailing; uploads are bounded).
func (m *mediaReader) readAll() ([]byte, error) {
	out := make([]byte, 0, m.rec.Size)
	buf := make([]byte, fsm.MediaChunkSize)
	for {
		n, err := m.Read(buf)
		out = append(out, buf[:n]...)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
	}
}
