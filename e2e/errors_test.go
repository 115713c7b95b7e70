package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestErrorShapes checks that each bad input gets the spec's errcode and
// status in the {"errcode","error"} shape.
func TestErrorShapes(t *testing.T) {
	n := newNode(t)
	n.start()
	alice := newUser(t, n.URL, "erralice")
	tok := alice.AccessToken
	big := `{"body":"` + strings.Repeat("x", 2<<20) + `"}`
	cases := []struct {
		name, method, path, token, body string
		status                          int
		errcode                         string
	}{
		{"unknown endpoint", "GET", "/_matrix/client/v3/no/such/thing", tok, "", 404, "M_UNRECOGNIZED"},
		{"wrong method", "DELETE", "/_matrix/client/v3/login", "", "", 405, "M_UNRECOGNIZED"},
		{"body too large", "POST", "/_matrix/client/v3/createRoom", tok, big, 413, "M_TOO_LARGE"},
		{"bad JSON", "POST", "/_matrix/client/v3/createRoom", tok, "{not json", 400, "M_NOT_JSON"},
		{"invalid UTF-8", "POST", "/_matrix/client/v3/createRoom", tok, "{\"name\":\"\xff\"}", 400, "M_NOT_JSON"},
		{"missing token", "GET", "/_matrix/client/v3/account/whoami", "", "", 401, "M_MISSING_TOKEN"},
		{"unknown token", "GET", "/_matrix/client/v3/account/whoami", "nope", "", 401, "M_UNKNOWN_TOKEN"},
		{"user in use", "POST", "/_matrix/client/v3/register", "", `{"username":"erralice","password":"x","auth":{"type":"m.login.dummy"}}`, 400, "M_USER_IN_USE"},
		{"invalid username", "GET", "/_matrix/client/v3/register/available?username=Bad%20Name", "", "", 400, "M_INVALID_USERNAME"},
		{"wrong password", "POST", "/_matrix/client/v3/login", "", `{"type":"m.login.password","identifier":{"type":"m.id.user","user":"erralice"},"password":"wrong"}`, 403, "M_FORBIDDEN"},
		{"unsupported room version", "POST", "/_matrix/client/v3/createRoom", tok, `{"room_version":"9999"}`, 400, "M_UNSUPPORTED_ROOM_VERSION"},
		{"send to unknown room", "PUT", "/_matrix/client/v3/rooms/!nope:e2e.test/send/m.room.message/t1", tok, `{"body":"x"}`, 403, "M_FORBIDDEN"},
		{"join unknown room", "POST", "/_matrix/client/v3/rooms/!nope:e2e.test/join", tok, `{}`, 404, "M_NOT_FOUND"},
		{"unknown alias", "GET", "/_matrix/client/v3/directory/room/%23nope:e2e.test", "", "", 404, "M_NOT_FOUND"},
		{"messages without dir", "GET", "/_matrix/client/v3/rooms/!nope:e2e.test/messages", tok, "", 400, "M_INVALID_PARAM"},
		{"unknown filter", "GET", "/_matrix/client/v3/user/@erralice:e2e.test/filter/99999", tok, "", 404, "M_NOT_FOUND"},
		{"other user's account data", "GET", "/_matrix/client/v3/user/@someone:e2e.test/account_data/x", tok, "", 403, "M_FORBIDDEN"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, err := http.NewRequest(c.method, n.URL+c.path, strings.NewReader(c.body))
			if err != nil {
				t.Fatal(err)
			}
			if c.token != "" {
				req.Header.Set("Authorization", "Bearer "+c.token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			var body struct {
				Errcode string `json:"errcode"`
				Error   string `json:"error"`
			}
			if err := json.Unmarshal(raw, &body); err != nil {
				t.Fatalf("answer is not JSON: %s", raw)
			}
			if resp.StatusCode != c.status || body.Errcode != c.errcode || body.Error == "" {
				t.Fatalf("got %d %s (%q), want %d %s", resp.StatusCode, body.Errcode, body.Error, c.status, c.errcode)
			}
		})
	}
}
