package federation

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	mfed "maunium.net/go/mautrix/federation"
	"maunium.net/go/mautrix/id"

	"github.com/ganglion/ganglion/rooms"
)

func newTestClient(t *testing.T, cfg Config) *Client {
	t.Helper()
	cfg.ServerName = "client.test"
	c, err := NewClient(cfg, &StaticKeys{Key: NewSigningKey("c")}, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// The TLS policy: an untrusted certificate fails, unless the peer is on
// loopback and loopback checks are skipped; an extra CA file makes it
// trusted; private addresses are refused unless allowed.
func TestClientTLSAndAddressPolicy(t *testing.T) {
	pki := newTestPKI(t)
	a := newTestServer(t, pki, nil)
	ctx := context.Background()
	version := func(c *Client, server string) error {
		v, err := c.Version(ctx, server)
		if err == nil && v.Server.Name != "Ganglion" {
			t.Fatalf("version = %+v", v)
		}
		return err
	}
	if err := version(newTestClient(t, Config{AllowPrivateAddresses: true}), a.name); err == nil ||
		!strings.Contains(err.Error(), "certificate") {
		t.Fatalf("untrusted certificate: %v", err)
	}
	if err := version(newTestClient(t, Config{AllowPrivateAddresses: true, InsecureSkipVerifyLoopback: true}), a.name); err != nil {
		t.Fatalf("loopback skip: %v", err)
	}
	if err := version(newTestClient(t, Config{AllowPrivateAddresses: true, ExtraCAFiles: []string{pki.certFile}}), a.name); err != nil {
		t.Fatalf("extra CA: %v", err)
	}
	// An IP literal server name: the certificate is checked for the IP.
	port := strings.TrimPrefix(a.name, "localhost:")
	if err := version(newTestClient(t, Config{AllowPrivateAddresses: true, ExtraCAFiles: []string{pki.certFile}}), "127.0.0.1:"+port); err != nil {
		t.Fatalf("IP literal: %v", err)
	}
	err := version(newTestClient(t, Config{InsecureSkipVerifyLoopback: true}), a.name)
	if !errors.Is(err, mfed.ErrIPFiltered) {
		t.Fatalf("loopback without allow_private_addresses: %v", err)
	}
	if _, err := NewClient(Config{ServerName: "x.test", ExtraCAFiles: []string{"/nonexistent.pem"}}, &StaticKeys{}, nil); err == nil {
		t.Fatal("missing CA file accepted")
	}
}

// Fed needs the signing key; signed requests then carry our X-Matrix.
func TestClientNeedsKey(t *testing.T) {
	c, err := NewClient(Config{ServerName: "x.test"}, &StaticKeys{}, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Fed(); !errors.Is(err, ErrNoSigningKey) {
		t.Fatalf("Fed without key: %v", err)
	}
}

func TestConfigValidation(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no server name":    {},
		"bad server name":   {ServerName: "a b"},
		"validity too long": {ServerName: "x.test", KeyValidity: 8 * 24 * time.Hour},
		"body limit tiny":   {ServerName: "x.test", MaxRequestBytes: 100},
		"bad notary":        {ServerName: "x.test", TrustedKeyServers: []TrustedKeyServer{{ServerName: ""}}},
		"bad pinned key": {ServerName: "x.test", TrustedKeyServers: []TrustedKeyServer{{ServerName: "n.test",
			VerifyKeys: map[id.KeyID]id.SigningKey{"ed25519:a": "c2hvcnQ"}}}},
	} {
		if _, err := cfg.withDefaults(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	c, err := Config{ServerName: "x.test"}.withDefaults()
	if err != nil || c.KeyValidity != 24*time.Hour || c.MaxRequestBytes != 16<<20 || c.Version == "" {
		t.Fatalf("defaults = %+v, %v", c, err)
	}
}

// On a real node the key server publishes the cluster's key, the one
// rooms signs events with.
func TestStoreKeysOnNode(t *testing.T) {
	cfg := testNodeConfig(t, "node.test")
	log := hclog.New(&hclog.LoggerOptions{Level: hclog.Warn})
	node := openNode(t, cfg, log)
	rs := rooms.New(node, cfg.ServerName, "12", log)
	api, err := New(Config{ServerName: cfg.ServerName}, node, rs, log.Named("federation"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := api.keys.Current(); !errors.Is(err, ErrNoSigningKey) {
		t.Fatalf("before rooms.Start: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := rs.Start(ctx); err != nil {
		t.Fatal(err)
	}
	keyID, pub := rs.PublicKey()
	cur, err := api.keys.Current()
	if err != nil || cur.ID != keyID || cur.Pub != encodeKey(pub) {
		t.Fatalf("store key %+v (%v), rooms key %s", cur, err, keyID)
	}
	rec := httptest.NewRecorder()
	api.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/_matrix/key/v2/server", nil))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), string(keyID)) {
		t.Fatalf("key server: %d %s", rec.Code, rec.Body)
	}
}
