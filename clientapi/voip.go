package clientapi

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"net/http"
	"time"

	"github.com/julienschmidt/httprouter"
)

// turnServer is GET /voip/turnServer with the TURN REST API's shared-secret
// scheme (coturn's use-auth-secret): username "<expiry>:<user>", password
// base64(HMAC-SHA1(secret, username)). Without TURN configured it answers
// an empty object, which clients read as "no TURN server".
func (a *API) turnServer(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	turn := a.cfg.TURN
	if turn.SharedSecret == "" || len(turn.URIs) == 0 {
		writeJSON(w, http.StatusOK, struct{}{})
		return
	}
	lifetime := turn.UserLifetime.Duration
	if lifetime <= 0 {
		lifetime = time.Hour
	}
	username, password := turnCredentials(turn.SharedSecret, callerOf(r).UserID, time.Now().Add(lifetime))
	writeJSON(w, http.StatusOK, map[string]any{
		"username": username,
		"password": password,
		"uris":     turn.URIs,
		"ttl":      int64(lifetime / time.Second),
	})
}

func turnCredentials(secret, userID string, expiry time.Time) (username, password string) {
	username = fmt.Sprintf("%d:%s", expiry.Unix(), userID)
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write([]byte(username))
	return username, base64.StdEncoding.EncodeToString(mac.Sum(nil))
}
