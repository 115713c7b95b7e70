package clientapi

import (
	"context"
	"crypto/sha256"
	"net/http"
	"strings"

	"github.com/julienschmidt/httprouter"

	"github.com/ganglion/ganglion/fsm"
)

// Caller is the authenticated user and device of a request.
type Caller struct {
	UserID   string
	DeviceID string
}

type callerKey struct{}

func callerOf(r *http.Request) *Caller {
	c, _ := r.Context().Value(callerKey{}).(*Caller)
	return c
}

// HashToken is how access tokens are stored: never in clear (invariant 1).
func HashToken(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}

func accessToken(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		if t, ok := strings.CutPrefix(h, "Bearer "); ok {
			return strings.TrimSpace(t)
		}
		return ""
	}
	return r.URL.Query().Get("access_token")
}

// handler is a route's function; params come from the router.
type handler func(w http.ResponseWriter, r *http.Request, p httprouter.Params)

// authed wraps h so it runs only with a valid access token.
func (a *API) authed(h handler) handler {
	return func(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
		c, ok := a.tokenCaller(w, r)
		if !ok {
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, c)), p)
	}
}

// tokenCaller resolves the request's access token; routes registered
// without the auth middleware (UIA endpoints) call it themselves. On
// failure it has written the 401.
func (a *API) tokenCaller(w http.ResponseWriter, r *http.Request) (*Caller, bool) {
	if c := callerOf(r); c != nil {
		return c, true
	}
	tok := accessToken(r)
	if tok == "" {
		writeError(w, http.StatusUnauthorized, "M_MISSING_TOKEN", "missing access token")
		return nil, false
	}
	var owner fsm.TokenOwner
	var found bool
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		owner, found = rt.LookupToken(HashToken(tok))
		return nil
	})
	if !found {
		writeJSON(w, http.StatusUnauthorized, map[string]any{
			"errcode": "M_UNKNOWN_TOKEN", "error": "unknown or expired access token", "soft_logout": false})
		return nil, false
	}
	return &Caller{UserID: owner.UserID, DeviceID: owner.DeviceID}, true
}
