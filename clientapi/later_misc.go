package clientapi

import (
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/ganglion/ganglion/fsm"
)

// OpenID tokens, user reports and mutual rooms.

// openIDTokenLifetime is how long an OpenID token can be traded for the
// user's identity (expires_in, in seconds, says the same).
const openIDTokenLifetime = time.Hour

// POST /user/{userId}/openid/request_token (openid.yaml): a fresh random
// token for the caller only. Its sha256 goes through the log with the
// owner and expiry, so any node's federation userinfo endpoint can check
// it later.
func (a *API) openIDRequestToken(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	c := callerOf(r)
	var body map[string]any
	if !a.readJSON(w, r, &body) {
		return
	}
	if p.ByName("userId") != c.UserID {
		writeError(w, http.StatusForbidden, "M_FORBIDDEN", "Cannot request OpenID tokens for other users")
		return
	}
	token := randomString(32, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
	expires := time.Now().Add(openIDTokenLifetime).UnixMilli()
	if _, ok := a.propose(w, r.Context(), fsm.OpOpenIDIssue, fsm.OpenIDIssueCmd{
		UserID: c.UserID, TokenHash: HashToken(token), ExpiresTS: expires}); !ok {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token":       token,
		"token_type":         "Bearer",
		"matrix_server_name": a.cfg.ServerName,
		"expires_in":         int(openIDTokenLifetime / time.Second),
	})
}

// POST /users/{userId}/report (report_content.yaml): reason is required
// (it may be blank). A local user that does not exist is 404, as the spec
// allows; remote users cannot be checked without federation and are
// accepted. Reports go to the server log for the operator.
func (a *API) reportUser(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	c := callerOf(r)
	var body struct {
		Reason *string `json:"reason"`
	}
	if !a.readJSON(w, r, &body) {
		return
	}
	target := p.ByName("userId")
	if !validUserID(target) {
		writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "invalid user ID")
		return
	}
	if body.Reason == nil {
		writeError(w, http.StatusBadRequest, "M_BAD_JSON", "reason is required")
		return
	}
	if strings.HasSuffix(target, ":"+a.cfg.ServerName) {
		known := false
		_ = a.store.View(func(rt *fsm.ReadTx) error {
			_, err := rt.User(target)
			known = err == nil
			return nil
		})
		if !known {
			writeError(w, http.StatusNotFound, "M_NOT_FOUND", "The user was not found.")
			return
		}
	}
	a.log.Warn("user reported", "reporter", c.UserID, "user_id", target, "reason", *body.Reason)
	writeJSON(w, http.StatusOK, struct{}{})
}

// GET /v1/mutual_rooms?user_id= (mutual_rooms.yaml): the rooms both the
// caller and user_id are joined to, all in one batch (no next_batch).
func (a *API) mutualRooms(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	c := callerOf(r)
	q := r.URL.Query()
	other := q.Get("user_id")
	switch {
	case other == "":
		writeError(w, http.StatusBadRequest, "M_MISSING_PARAM", "user_id is required")
		return
	case !validUserID(other):
		writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "The user ID provided was invalid")
		return
	case other == c.UserID:
		writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "user_id must be another user")
		return
	case q.Get("from") != "":
		// This server never hands out next_batch, so no token is valid.
		writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "unknown from token")
		return
	}
	joined := []string{}
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		for roomID, m := range rt.UserRooms(c.UserID) {
			if m.Membership == "join" && isJoined(rt, other, roomID) {
				joined = append(joined, roomID)
			}
		}
		return nil
	})
	sort.Strings(joined)
	writeJSON(w, http.StatusOK, map[string]any{"joined": joined, "count": len(joined)})
}
