package clientapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/ganglion/ganglion/fsm"
)

// The media repository: uploads (POST /upload, and POST /create then
// PUT /upload/{serverName}/{mediaId}), and in media_download.go and
// media_thumbnail.go the reads. Content is durable through the Raft log
// like everything else: the body is proposed as a blob of chunk commands
// then committed (see fsm/media.go), so every node can serve it.

const (
	// maxUploadBytes is the upload limit, reported by /config.
	maxUploadBytes = 50 << 20
	// reservationTTL is how long a created mxc:// URI waits for its upload.
	reservationTTL = 24 * time.Hour
	// maxFilenameBytes bounds the filename kept with an upload.
	maxFilenameBytes = 1024
	// cleanupTimeout bounds the best-effort removal of a failed upload.
	cleanupTimeout = 10 * time.Second

	mediaIDAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
)

// newMediaID is 24 random alphanumerics (about 143 bits): media and blob IDs.
func newMediaID() string { return randomString(24, mediaIDAlphabet) }

func (a *API) mxcURI(mediaID string) string { return "mxc://" + a.cfg.ServerName + "/" + mediaID }

// uploadMedia is POST /_matrix/media/{v3,r0}/upload.
func (a *API) uploadMedia(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	meta, ok := uploadMeta(w, r)
	if !ok {
		return
	}
	mediaID := newMediaID()
	if !a.storeUpload(w, r, mediaID, false, meta) {
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"content_uri": a.mxcURI(mediaID)})
}

// createMediaID is POST /_matrix/media/v1/create: it reserves an mxc:// URI
// whose content comes later through uploadMediaAsync.
func (a *API) createMediaID(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	c := callerOf(r)
	mediaID := newMediaID()
	expires := time.Now().Add(reservationTTL).UnixMilli()
	if _, ok := a.propose(w, r.Context(), fsm.OpMediaCreate,
		fsm.MediaCreate{MediaID: mediaID, UserID: c.UserID, ExpiresTS: expires}); !ok {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"content_uri": a.mxcURI(mediaID), "unused_expires_at": expires})
}

// uploadMediaAsync is PUT /_matrix/media/v3/upload/{serverName}/{mediaId}.
// The reservation is checked before the body is read so a refused upload
// does not stream the whole file first; the commit checks it again.
func (a *API) uploadMediaAsync(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	c := callerOf(r)
	mediaID := p.ByName("mediaId")
	if p.ByName("serverName") != a.cfg.ServerName || !fsm.ValidMediaID(mediaID) {
		writeError(w, http.StatusNotFound, "M_NOT_FOUND", "unknown media ID")
		return
	}
	rec, state := a.lookupMedia(r.Context(), mediaID, 0)
	switch {
	case rec == nil:
		writeError(w, http.StatusNotFound, "M_NOT_FOUND", "unknown or expired media ID")
		return
	case rec.Uploader != c.UserID:
		writeError(w, http.StatusForbidden, "M_FORBIDDEN", "this media ID was created by another user")
		return
	case state == mediaReady:
		writeError(w, http.StatusConflict, "M_CANNOT_OVERWRITE_MEDIA", "Media ID already has content")
		return
	}
	meta, ok := uploadMeta(w, r)
	if !ok || !a.storeUpload(w, r, mediaID, true, meta) {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{})
}

// mediaConfig is GET /_matrix/media/v3/config and /_matrix/client/v1/media/config.
func (a *API) mediaConfig(w http.ResponseWriter, _ *http.Request, _ httprouter.Params) {
	writeJSON(w, http.StatusOK, map[string]any{"m.upload.size": maxUploadBytes})
}

// uploadInfo is what an upload request says about its content.
type uploadInfo struct {
	contentType string
	filename    string
}

func uploadMeta(w http.ResponseWriter, r *http.Request) (uploadInfo, bool) {
	info := uploadInfo{
		contentType: strings.TrimSpace(r.Header.Get("Content-Type")),
		filename:    r.URL.Query().Get("filename"),
	}
	if info.contentType == "" {
		info.contentType = "application/octet-stream"
	}
	if len(info.filename) > maxFilenameBytes || len(info.contentType) > 255 {
		writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "filename or content type is too long")
		return info, false
	}
	if r.ContentLength > maxUploadBytes {
		writeError(w, http.StatusRequestEntityTooLarge, "M_TOO_LARGE", "cannot upload files larger than 50 MiB")
		return info, false
	}
	return info, true
}

// storeUpload streams the request body into a new blob, one chunk command
// per MediaChunkSize bytes read, and commits it as mediaID. Memory stays at
// one chunk however large the file. On failure it has written the error and
// removed what it stored.
func (a *API) storeUpload(w http.ResponseWriter, r *http.Request, mediaID string, reserved bool, info uploadInfo) bool {
	c := callerOf(r)
	blob := newMediaID()
	body := io.LimitReader(r.Body, maxUploadBytes+1)
	buf := make([]byte, fsm.MediaChunkSize)
	digest := sha256.New()
	var size int64
	chunks := 0
	for {
		n, err := io.ReadFull(body, buf)
		if n > 0 {
			size += int64(n)
			if size > maxUploadBytes {
				a.dropUpload(blob, c.UserID, chunks > 0)
				writeError(w, http.StatusRequestEntityTooLarge, "M_TOO_LARGE", "cannot upload files larger than 50 MiB")
				return false
			}
			digest.Write(buf[:n])
			// Propose encodes the command before returning, so buf is reusable.
			chunk := fsm.MediaChunk{Blob: blob, UserID: c.UserID, Index: chunks, Data: buf[:n]}
			if _, ok := a.propose(w, r.Context(), fsm.OpMediaChunk, chunk); !ok {
				a.dropUpload(blob, c.UserID, true) // it may have committed all the same
				return false
			}
			chunks++
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			a.dropUpload(blob, c.UserID, chunks > 0)
			writeError(w, http.StatusBadRequest, "M_UNKNOWN", "could not read the upload: "+err.Error())
			return false
		}
	}
	commit := fsm.MediaCommit{MediaID: mediaID, Blob: blob, UserID: c.UserID, Reserved: reserved,
		ContentType: info.contentType, Filename: info.filename, Size: size,
		SHA256: hex.EncodeToString(digest.Sum(nil)), Chunks: chunks}
	if _, ok := a.propose(w, r.Context(), fsm.OpMediaCommit, commit); !ok {
		a.dropUpload(blob, c.UserID, chunks > 0)
		return false
	}
	return true
}

// dropUpload removes a failed upload's chunks. It runs detached from the
// request, which may be gone; a blob it misses is swept a day later.
func (a *API) dropUpload(blob, userID string, proposed bool) {
	if !proposed {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	if _, _, err := a.node.Propose(ctx, fsm.OpMediaAbort, fsm.MediaAbort{Blob: blob, UserID: userID}); err != nil {
		a.log.Warn("could not drop a failed upload", "blob", blob, "error", err)
	}
}
