package federation

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"unicode/utf8"

	"github.com/ganglion/ganglion/internal/matrixhttp"
)

// matrixError is the spec's error body.
type matrixError struct {
	Errcode string `json:"errcode"`
	Err     string `json:"error"`
	status  int
}

func (e *matrixError) Error() string { return e.Errcode + ": " + e.Err }

func errorf(status int, errcode, msg string) *matrixError {
	return &matrixError{Errcode: errcode, Err: msg, status: status}
}

func unauthorized(msg string) *matrixError {
	return errorf(http.StatusUnauthorized, "M_UNAUTHORIZED", msg)
}

func writeJSON(w http.ResponseWriter, status int, v any) { matrixhttp.WriteJSON(w, status, v) }

func writeError(w http.ResponseWriter, status int, errcode, msg string) {
	matrixhttp.WriteError(w, status, errcode, msg)
}

func writeMatrixError(w http.ResponseWriter, e *matrixError) {
	writeError(w, e.status, e.Errcode, e.Err)
}

// writeErr maps an internal error to the Matrix error shape: refusals from
// Apply keep their code, cluster unavailability and cancelled requests are
// 503, the rest is 500.
func writeErr(w http.ResponseWriter, err error) {
	var me *matrixError
	if errors.As(err, &me) {
		writeMatrixError(w, me)
		return
	}
	if matrixhttp.WriteStoreError(w, err) {
		return
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		writeError(w, http.StatusServiceUnavailable, "M_UNKNOWN", "request cancelled")
		return
	}
	writeError(w, http.StatusInternalServerError, "M_UNKNOWN", err.Error())
}

// readBody reads a request body of at most limit bytes: 413 M_TOO_LARGE
// beyond it, 400 M_NOT_JSON when it is not UTF-8 JSON. An empty body is
// returned as nil.
func readBody(r *http.Request, limit int64) ([]byte, *matrixError) {
	if r.ContentLength > limit {
		return nil, errorf(http.StatusRequestEntityTooLarge, "M_TOO_LARGE", "request body is too large")
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "M_NOT_JSON", "could not read request body")
	}
	if int64(len(body)) > limit {
		return nil, errorf(http.StatusRequestEntityTooLarge, "M_TOO_LARGE", "request body is too large")
	}
	if len(body) == 0 {
		return nil, nil
	}
	if !utf8.Valid(body) || !json.Valid(body) {
		return nil, errorf(http.StatusBadRequest, "M_NOT_JSON", "request body is not valid JSON")
	}
	return body, nil
}

// readJSON decodes the (bounded) request body into v; an empty body reads as
// {}. On failure it has written the error and returns false.
func (a *API) readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	body, merr := readBody(r, a.cfg.MaxRequestBytes)
	if merr != nil {
		writeMatrixError(w, merr)
		return false
	}
	if body == nil {
		body = []byte("{}")
	}
	if err := json.Unmarshal(body, v); err != nil {
		writeError(w, http.StatusBadRequest, "M_BAD_JSON", "request body has the wrong shape: "+err.Error())
		return false
	}
	return true
}
