package federation

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	mfed "maunium.net/go/mautrix/federation"
)

// Two servers sign requests to each other with mautrix's client (through
// our Client) and each verifies the other's; keys are fetched once.
func TestSignedRequestsBothWays(t *testing.T) {
	pki := newTestPKI(t)
	a := newTestServer(t, pki, nil)
	b := newTestServer(t, pki, nil)
	ctx := context.Background()
	for _, pair := range [][2]*testServer{{a, b}, {b, a}} {
		from, to := pair[0], pair[1]
		var out struct {
			Origin string         `json:"origin"`
			X      string         `json:"x"`
			Query  string         `json:"query"`
			Body   map[string]any `json:"body"`
		}
		for i := 0; i < 3; i++ {
			_, _, err := from.api.Client().Do(ctx, mfed.RequestParams{
				ServerName: to.name, Method: http.MethodPut,
				Path:         mfed.URLPath{"test", "echo", "a b/c$d"},
				Query:        url.Values{"v": {"$ev:x", "2"}},
				RequestJSON:  map[string]any{"n": i, "text": "héllo \u2028", "nested": map[string]any{"b": 1, "a": []any{1, "x"}}},
				Authenticate: true, ResponseJSON: &out,
			})
			if err != nil {
				t.Fatalf("%s -> %s: %v", from.name, to.name, err)
			}
			if out.Origin != from.name || out.X != "a b/c$d" || out.Body["text"] != "héllo \u2028" {
				t.Fatalf("echo = %+v", out)
			}
		}
		var got map[string]any
		if _, _, err := from.api.Client().Do(ctx, mfed.RequestParams{ServerName: to.name, Method: http.MethodGet,
			Path: mfed.URLPath{"test", "echo"}, Query: url.Values{"limit": {"10"}},
			Authenticate: true, ResponseJSON: &got}); err != nil {
			t.Fatalf("GET: %v", err)
		}
		if got["origin"] != from.name || got["query"] != "limit=10" {
			t.Fatalf("GET echo = %v", got)
		}
		// Four requests, one key fetch: the keyring caches.
		if n := from.hitCount("/_matrix/key/v2/server"); n != 1 {
			t.Errorf("%s served its keys %d times, want 1", from.name, n)
		}
	}
}

func TestRequestAuthenticationFailures(t *testing.T) {
	pki := newTestPKI(t)
	a := newTestServer(t, pki, nil)
	b := newTestServer(t, pki, nil)
	hc := pki.httpsClient()
	target := b.url() + "/_matrix/federation/test/echo/x?q=1"
	body := []byte(`{"a":1}`)
	signedBy := func(origin, dest string, key *mfed.SigningKey, body []byte) *http.Request {
		req := newRequest(t, http.MethodPut, target, body)
		if err := SignRequest(req, origin, dest, key, body); err != nil {
			t.Fatal(err)
		}
		return req
	}
	otherKey := NewSigningKey("k1") // same key ID as a's, different key
	cases := []struct {
		name    string
		req     func() *http.Request
		status  int
		errcode string
	}{
		{"good", func() *http.Request { return signedBy(a.name, b.name, a.keys.Key, body) }, 200, ""},
		{"no destination (pre-v1.3)", func() *http.Request {
			req := signedBy(a.name, b.name, a.keys.Key, body)
			h := req.Header.Get("Authorization")
			req.Header.Set("Authorization", strings.Replace(h, `,destination="`+b.name+`"`, "", 1))
			return req
		}, 200, ""},
		{"missing header", func() *http.Request { return newRequest(t, http.MethodPut, target, body) }, 401, "M_UNAUTHORIZED"},
		{"bearer scheme", func() *http.Request {
			req := newRequest(t, http.MethodPut, target, body)
			req.Header.Set("Authorization", "Bearer abc")
			return req
		}, 401, "M_UNAUTHORIZED"},
		{"malformed header", func() *http.Request {
			req := newRequest(t, http.MethodPut, target, body)
			req.Header.Set("Authorization", `X-Matrix origin="`+a.name+`",key="ed25519:k1",sig="unterminated`)
			return req
		}, 401, "M_UNAUTHORIZED"},
		{"header without sig", func() *http.Request {
			req := newRequest(t, http.MethodPut, target, body)
			req.Header.Set("Authorization", `X-Matrix origin="`+a.name+`",key="ed25519:k1"`)
			return req
		}, 401, "M_UNAUTHORIZED"},
		{"wrong destination", func() *http.Request { return signedBy(a.name, "elsewhere.example", a.keys.Key, body) }, 401, "M_UNAUTHORIZED"},
		{"bad signature", func() *http.Request { return signedBy(a.name, b.name, otherKey, body) }, 401, "M_UNAUTHORIZED"},
		{"body changed after signing", func() *http.Request {
			req := signedBy(a.name, b.name, a.keys.Key, body)
			changed := newRequest(t, http.MethodPut, target, []byte(`{"a":2}`))
			changed.Header = req.Header
			return changed
		}, 401, "M_UNAUTHORIZED"},
		{"uri changed after signing", func() *http.Request {
			req := signedBy(a.name, b.name, a.keys.Key, body)
			changed := newRequest(t, http.MethodPut, strings.Replace(target, "q=1", "q=2", 1), body)
			changed.Header = req.Header
			return changed
		}, 401, "M_UNAUTHORIZED"},
		{"unknown key", func() *http.Request {
			k := *a.keys.Key
			k.ID = "ed25519:nope"
			return signedBy(a.name, b.name, &k, body)
		}, 401, "M_UNAUTHORIZED"},
		{"unreachable origin", func() *http.Request { return signedBy("localhost:1", b.name, a.keys.Key, body) }, 401, "M_UNAUTHORIZED"},
		{"origin is the destination", func() *http.Request { return signedBy(b.name, b.name, b.keys.Key, body) }, 401, "M_UNAUTHORIZED"},
		{"invalid origin", func() *http.Request { return signedBy("bad name!", b.name, a.keys.Key, body) }, 401, "M_UNAUTHORIZED"},
		{"not JSON", func() *http.Request {
			req := signedBy(a.name, b.name, a.keys.Key, nil)
			bad := newRequest(t, http.MethodPut, target, []byte("{nope"))
			bad.Header = req.Header
			return bad
		}, 400, "M_NOT_JSON"},
		{"too large", func() *http.Request {
			big := []byte(`{"a":"` + strings.Repeat("x", 17<<20) + `"}`)
			return signedBy(a.name, b.name, a.keys.Key, big)
		}, 413, "M_TOO_LARGE"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, out := do(t, hc, tc.req())
			if status != tc.status {
				t.Fatalf("status %d, want %d (%v)", status, tc.status, out)
			}
			if tc.errcode != "" && out["errcode"] != tc.errcode {
				t.Fatalf("errcode %v, want %s (%v)", out["errcode"], tc.errcode, out)
			}
			if tc.errcode != "" && out["error"] == "" {
				t.Fatalf("no error message: %v", out)
			}
			if tc.status == 200 && out["origin"] != a.name {
				t.Fatalf("origin %v", out["origin"])
			}
		})
	}
}

func TestUnknownEndpoints(t *testing.T) {
	pki := newTestPKI(t)
	a := newTestServer(t, pki, nil)
	hc := pki.httpsClient()
	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{http.MethodGet, "/_matrix/federation/v1/nope", 404},
		{http.MethodGet, "/_matrix/key/v3/server", 404},
		{http.MethodPost, "/_matrix/federation/v1/version", 405},
		{http.MethodDelete, "/_matrix/key/v2/server", 405},
	} {
		status, out := do(t, hc, newRequest(t, tc.method, a.url()+tc.path, nil))
		if status != tc.status || out["errcode"] != "M_UNRECOGNIZED" {
			t.Errorf("%s %s = %d %v", tc.method, tc.path, status, out)
		}
	}
	status, out := do(t, hc, newRequest(t, http.MethodGet, a.url()+"/_matrix/federation/v1/version", nil))
	server, _ := out["server"].(map[string]any)
	if status != 200 || server["name"] != "Ganglion" || server["version"] == "" {
		t.Errorf("version = %d %v", status, out)
	}
}
