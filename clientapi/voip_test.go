package clientapi

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ganglion/ganglion/config"
)

func TestTurnServerUnconfigured(t *testing.T) {
	base := testServer(t)
	_, tok := registerUser(t, base, "alice")
	s, out := call(t, "GET", base+"/_matrix/client/v3/voip/turnServer", tok, nil)
	if s != 200 || len(out) != 0 {
		t.Fatalf("turnServer: %d %v", s, out)
	}
	s, out = call(t, "GET", base+"/_matrix/client/v3/voip/turnServer", "", nil)
	wantErr(t, "no token", s, out, 401, "M_MISSING_TOKEN")
}

func TestTurnServerSharedSecret(t *testing.T) {
	base := testServer(t, func(c *config.Config) {
		c.TURN.SharedSecret = "turnsecret"
		c.TURN.URIs = []string{"turn:turn.test.local:3478?transport=udp"}
		c.TURN.UserLifetime = config.Duration{Duration: 2 * time.Hour}
	})
	user, tok := registerUser(t, base, "alice")
	s, out := call(t, "GET", base+"/_matrix/client/v3/voip/turnServer", tok, nil)
	if s != 200 || out["ttl"] != float64(7200) {
		t.Fatalf("turnServer: %d %v", s, out)
	}
	username, _ := out["username"].(string)
	expiry, who, _ := strings.Cut(username, ":")
	exp, err := strconv.ParseInt(expiry, 10, 64)
	if err != nil || who != user {
		t.Fatalf("username %q", username)
	}
	if d := exp - time.Now().Add(2*time.Hour).Unix(); d < -5 || d > 5 {
		t.Fatalf("expiry %d is not about 2h from now", exp)
	}
	mac := hmac.New(sha1.New, []byte("turnsecret"))
	mac.Write([]byte(username))
	if out["password"] != base64.StdEncoding.EncodeToString(mac.Sum(nil)) {
		t.Fatalf("password %v does not match HMAC", out["password"])
	}
	uris, _ := out["uris"].([]any)
	if len(uris) != 1 || uris[0] != "turn:turn.test.local:3478?transport=udp" {
		t.Fatalf("uris %v", out["uris"])
	}
}
