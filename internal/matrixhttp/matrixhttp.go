// Package matrixhttp is the HTTP plumbing the client and federation APIs
// share: JSON answers, the spec's error body, the router's Matrix answers
// for unknown paths, and routing on escaped paths so that an ID holding
// "/" stays one path parameter.
package matrixhttp

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"

	"github.com/hashicorp/go-hclog"
	"github.com/julienschmidt/httprouter"

	"github.com/ganglion/ganglion/fsm"
)

// errorBody is the spec's error body.
type errorBody struct {
	Errcode string `json:"errcode"`
	Error   string `json:"error"`
}

// WriteJSON answers with v as JSON; a value that cannot be encoded is a
// 500 M_UNKNOWN rather than a partial body.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		body = []byte(`{"errcode":"M_UNKNOWN","error":"could not encode response"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// WriteError answers with a Matrix error.
func WriteError(w http.ResponseWriter, status int, errcode, msg string) {
	WriteJSON(w, status, errorBody{Errcode: errcode, Error: msg})
}

// WriteStoreError answers for the errors both APIs map the same way:
// refusals from Apply (and cluster.ErrUnavailable, also an *fsm.Error)
// keep their status and code, a missing record is 404 M_NOT_FOUND. It
// reports false, having written nothing, for any other error.
func WriteStoreError(w http.ResponseWriter, err error) bool {
	var fe *fsm.Error
	switch {
	case errors.As(err, &fe):
		WriteError(w, fe.Status, fe.Errcode, fe.Message)
	case errors.Is(err, fsm.ErrNotFound):
		WriteError(w, http.StatusNotFound, "M_NOT_FOUND", "not found")
	default:
		return false
	}
	return true
}

// NewRouter is a router that neither redirects nor answers OPTIONS by
// itself, answers unknown paths 404 and known paths with another method
// 405 (both M_UNRECOGNIZED), and turns a handler panic into a logged 500.
func NewRouter(log hclog.Logger) *httprouter.Router {
	router := httprouter.New()
	router.RedirectTrailingSlash = false
	router.RedirectFixedPath = false
	router.HandleOPTIONS = false
	router.NotFound = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, http.StatusNotFound, "M_UNRECOGNIZED", "unrecognized request")
	})
	router.MethodNotAllowed = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, http.StatusMethodNotAllowed, "M_UNRECOGNIZED", "method not allowed")
	})
	router.PanicHandler = func(w http.ResponseWriter, r *http.Request, v any) {
		log.Error("handler panic", "path", r.URL.Path, "panic", v)
		WriteError(w, http.StatusInternalServerError, "M_UNKNOWN", "internal error")
	}
	return router
}

// RouteEscaped makes the router match on the escaped path, so a parameter
// holding an encoded slash (an alias, state key or room v3 event ID with
// "/") stays one parameter; UnescapeParams decodes each parameter for the
// handler.
func RouteEscaped(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.RawPath != "" {
			r2 := r.Clone(r.Context())
			r2.URL.Path = r.URL.RawPath
			next.ServeHTTP(w, r2)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// UnescapeParams decodes the path parameters RouteEscaped left escaped
// before calling h; a bad escape is 400 M_INVALID_PARAM. H is any handler
// type of httprouter's shape.
func UnescapeParams[H ~func(http.ResponseWriter, *http.Request, httprouter.Params)](h H) H {
	return func(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
		for i := range p {
			v, err := url.PathUnescape(p[i].Value)
			if err != nil {
				WriteError(w, http.StatusBadRequest, "M_INVALID_PARAM", "bad escape in path parameter "+p[i].Key)
				return
			}
			p[i].Value = v
		}
		h(w, r, p)
	}
}
