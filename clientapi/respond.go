package clientapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"unicode/utf8"

	"github.com/ganglion/ganglion/fsm"
	"github.com/ganglion/ganglion/internal/matrixhttp"
)

// matrixError is the spec's error body.
type matrixError struct {
	Errcode string `json:"errcode"`
	Error   string `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) { matrixhttp.WriteJSON(w, status, v) }

func writeError(w http.ResponseWriter, status int, errcode, msg string) {
	matrixhttp.WriteError(w, status, errcode, msg)
}

// writeErr maps an internal error to the Matrix error shape: refusals from
// Apply keep their code, cluster unavailability is 503, the rest is 500.
func writeErr(w http.ResponseWriter, err error) {
	if !matrixhttp.WriteStoreError(w, err) {
		writeError(w, http.StatusInternalServerError, "M_UNKNOWN", err.Error())
	}
}

// readJSON decodes a bounded JSON object body. On failure it has already
// written the error (413 M_TOO_LARGE or 400 M_NOT_JSON) and returns false.
func (a *API) readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	body, ok := a.readBody(w, r)
	if !ok {
		return false
	}
	if len(body) == 0 {
		body = []byte("{}")
	}
	if !json.Valid(body) || !utf8.Valid(body) {
		writeError(w, http.StatusBadRequest, "M_NOT_JSON", "request body is not valid JSON")
		return false
	}
	if err := json.Unmarshal(body, v); err != nil {
		writeError(w, http.StatusBadRequest, "M_BAD_JSON", "request body has the wrong shape: "+err.Error())
		return false
	}
	return true
}

// readObject reads a body that must be a JSON object, kept raw (event content).
func (a *API) readObject(w http.ResponseWriter, r *http.Request) (json.RawMessage, bool) {
	body, ok := a.readBody(w, r)
	if !ok {
		return nil, false
	}
	if len(body) == 0 {
		body = []byte("{}")
	}
	var obj map[string]json.RawMessage
	if !json.Valid(body) || !utf8.Valid(body) {
		writeError(w, http.StatusBadRequest, "M_NOT_JSON", "request body is not valid JSON")
		return nil, false
	}
	if err := json.Unmarshal(body, &obj); err != nil || obj == nil {
		writeError(w, http.StatusBadRequest, "M_BAD_JSON", "request body must be a JSON object")
		return nil, false
	}
	return json.RawMessage(body), true
}

func (a *API) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	limit := a.cfg.Limits.MaxJSONBodyBytes
	if r.ContentLength > limit {
		writeError(w, http.StatusRequestEntityTooLarge, "M_TOO_LARGE", "request body is too large")
		return nil, false
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, "M_NOT_JSON", "could not read request body")
		return nil, false
	}
	if int64(len(body)) > limit {
		writeError(w, http.StatusRequestEntityTooLarge, "M_TOO_LARGE", "request body is too large")
		return nil, false
	}
	return body, true
}

// propose commits a command; on failure it writes the error and returns
// false.
func (a *API) propose(w http.ResponseWriter, ctx context.Context, op string, payload any) (any, bool) {
	v, _, err := a.node.Propose(ctx, op, payload)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			writeError(w, http.StatusServiceUnavailable, "M_UNKNOWN", "request cancelled")
			return nil, false
		}
		writeErr(w, err)
		return nil, false
	}
	return v, true
}

// answerRead serves a read-only request: fn runs in one store read
// transaction and returns the 200 body or a Matrix refusal.
func (a *API) answerRead(w http.ResponseWriter, fn func(rt *fsm.ReadTx) (any, *fsm.Error)) {
	var out any
	var ferr *fsm.Error
	if err := a.store.View(func(rt *fsm.ReadTx) error {
		out, ferr = fn(rt)
		return nil
	}); err != nil {
		writeErr(w, err)
		return
	}
	if ferr != nil {
		writeErr(w, ferr)
		return
	}
	writeJSON(w, http.StatusOK, out)
}
