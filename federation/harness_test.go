package federation

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/julienschmidt/httprouter"
)

// testPKI is one self-signed certificate (localhost, 127.0.0.1, ::1) that
// every test server of a test presents and every client trusts.
type testPKI struct {
	certFile, keyFile string
	cert              tls.Certificate
	pool              *x509.CertPool
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	certFile, keyFile, err := EnsureDevCertificate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	pemBytes, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemBytes)
	return &testPKI{certFile: certFile, keyFile: keyFile, cert: cert, pool: pool}
}

// testServer is one homeserver on 127.0.0.1 named localhost:<port>.
type testServer struct {
	name string
	keys *StaticKeys
	api  *API
	srv  *httptest.Server

	mu   sync.Mutex
	hits map[string]int // requests per path
}

// newTestServer starts a server trusting pki; mod adjusts its config.
func newTestServer(t *testing.T, pki *testPKI, mod func(*Config)) *testServer {
	t.Helper()
	l, name := listenLoopback(t)
	ts := &testServer{
		name: name,
		keys: &StaticKeys{Key: NewSigningKey("k1")},
		hits: map[string]int{},
	}
	cfg := Config{ServerName: ts.name, AllowPrivateAddresses: true, ExtraCAFiles: []string{pki.certFile},
		RequestTimeout: 10 * time.Second}
	if mod != nil {
		mod(&cfg)
	}
	log := hclog.New(&hclog.LoggerOptions{Name: ts.name, Level: hclog.Warn, Output: io.Discard})
	if testing.Verbose() {
		log = hclog.New(&hclog.LoggerOptions{Name: ts.name, Level: hclog.Debug})
	}
	var err error
	ts.api, err = NewWithKeys(cfg, ts.keys, log)
	if err != nil {
		t.Fatal(err)
	}
	routes := append(ts.api.routes(),
		signed(get, "/_matrix/federation/test/echo", echo),
		signed(put, "/_matrix/federation/test/echo/:x", echo),
	)
	h := ts.api.handler(routes)
	ts.srv = serveTLS(t, l, pki, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ts.mu.Lock()
		ts.hits[r.URL.Path]++
		ts.mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	return ts
}

// listenLoopback opens a listener on a free 127.0.0.1 port; the server on
// it is named localhost:<port>.
func listenLoopback(t *testing.T) (net.Listener, string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l, "localhost:" + strings.TrimPrefix(l.Addr().String(), "127.0.0.1:")
}

// serveTLS serves h on l with pki's certificate until the test ends.
func serveTLS(t *testing.T, l net.Listener, pki *testPKI, h http.Handler) *httptest.Server {
	srv := httptest.NewUnstartedServer(h)
	srv.Listener.Close()
	srv.Listener = l
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pki.cert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// echo answers with the authenticated origin, the path parameter and body.
func echo(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	body, _ := io.ReadAll(r.Body)
	if len(body) == 0 {
		body = []byte("null")
	}
	writeJSON(w, http.StatusOK, map[string]any{"origin": Origin(r), "x": p.ByName("x"),
		"query": r.URL.RawQuery, "body": json.RawMessage(body)})
}

func (ts *testServer) hitCount(path string) int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.hits[path]
}

// url is the server's base URL (https://127.0.0.1:port).
func (ts *testServer) url() string { return ts.srv.URL }

// httpsClient is a plain client trusting pki (no Matrix resolution).
func (pki *testPKI) httpsClient() *http.Client {
	return &http.Client{Timeout: 10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pki.pool}}}
}

// do sends req and decodes a JSON object answer.
func do(t *testing.T, c *http.Client, req *http.Request) (int, map[string]any) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s %s: answer is not a JSON object: %q", req.Method, req.URL, raw)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q", req.Method, req.URL, ct)
	}
	return resp.StatusCode, out
}

func newRequest(t *testing.T, method, url string, body []byte) *http.Request {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = strings.NewReader(string(body))
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	return req
}
