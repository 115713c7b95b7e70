package federation

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	mfed "maunium.net/go/mautrix/federation"
)

// A server named plain "localhost" delegates through
// https://localhost/.well-known/matrix/server to localhost:<port>; a peer
// finds it by that, talks to it with signed requests, and fetches its keys.
// Needs 127.0.0.1:443 (root in the test sandbox); skipped otherwise.
func TestWellKnownDelegation(t *testing.T) {
	pki := newTestPKI(t)
	wk, err := net.Listen("tcp", "127.0.0.1:443")
	if err != nil {
		t.Skipf("cannot listen on 127.0.0.1:443: %v", err)
	}
	dl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	delegate := "localhost:" + strings.TrimPrefix(dl.Addr().String(), "127.0.0.1:")
	keys := &StaticKeys{Key: NewSigningKey("d1")}
	api, err := NewWithKeys(Config{ServerName: "localhost", WellKnownServer: delegate,
		AllowPrivateAddresses: true, ExtraCAFiles: []string{pki.certFile}}, keys, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	h := api.handler(append(api.routes(), signed(get, "/_matrix/federation/test/echo", echo)))
	var mu sync.Mutex
	hosts := map[string]int{}
	for _, l := range []net.Listener{wk, dl} {
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if l == dl {
				mu.Lock()
				hosts[r.Host]++
				mu.Unlock()
			}
			h.ServeHTTP(w, r)
		}), TLSConfig: &tls.Config{Certificates: []tls.Certificate{pki.cert}}, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.ServeTLS(l, "", "") }()
		t.Cleanup(func() { _ = srv.Close() })
	}
	peer := newTestServer(t, pki, nil)
	ctx := context.Background()
	v, err := peer.api.Client().Version(ctx, "localhost")
	if err != nil || v.Server.Name != "Ganglion" {
		t.Fatalf("version through delegation: %+v, %v", v, err)
	}
	var out map[string]any
	if _, _, err := peer.api.Client().Do(ctx, mfed.RequestParams{ServerName: "localhost", Method: http.MethodGet,
		Path: mfed.URLPath{"test", "echo"}, Query: url.Values{"a": {"b"}}, Authenticate: true, ResponseJSON: &out}); err != nil {
		t.Fatalf("signed request through delegation: %v", err)
	}
	if out["origin"] != peer.name {
		t.Fatalf("echo = %v", out)
	}
	if _, err := peer.api.Keyring().Key(ctx, "localhost", keys.Key.ID, time.Now()); err != nil {
		t.Fatalf("keys through delegation: %v", err)
	}
	// Step 3.2: the Host header is the delegated name with its port.
	mu.Lock()
	defer mu.Unlock()
	if hosts[delegate] == 0 || len(hosts) != 1 {
		t.Fatalf("Host headers at the delegate: %v", hosts)
	}
}
