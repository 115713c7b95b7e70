package federation

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.mau.fi/util/exhttp"
	mfed "maunium.net/go/mautrix/federation"
)

// Client makes outbound federation requests with mautrix's client: server
// names resolved by its resolver (.well-known/matrix/server, SRV
// _matrix-fed._tcp then _matrix._tcp, port 8448, IP literals), TLS by our
// policy (extra CAs, loopback-only skip), requests signed with the server's
// current key in an X-Matrix header (destination always sent).
//
// It adds nothing per destination (no backoff, no queue): the outbound
// sender does that.
type Client struct {
	keys     KeySource
	base     *mfed.Client // unsigned requests; the template of signing
	keyFetch *mfed.Client // base with a small response limit, for key documents
	log      hclog.Logger

	mu      sync.Mutex
	signing *mfed.Client
}

const (
	wellKnownTimeout = 10 * time.Second
	// maxKeyResponseBytes bounds key answers (mautrix's default limit,
	// 512 MiB, is for send_join states).
	maxKeyResponseBytes = 1 << 20
)

// NewClient builds the outbound client of cfg.ServerName.
func NewClient(cfg Config, keys KeySource, log hclog.Logger) (*Client, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	policy, err := newTLSPolicy(cfg.ExtraCAFiles, cfg.InsecureSkipVerifyLoopback)
	if err != nil {
		return nil, err
	}
	settings := exhttp.SensibleClientSettings.WithGlobalTimeout(cfg.RequestTimeout)
	base := mfed.NewClient(cfg.ServerName, nil, mfed.NewInMemoryCache(), settings)
	base.UserAgent = serverSoftwareName + "/" + cfg.Version
	base.AllowIP = allowIP(cfg.AllowPrivateAddresses)
	srt, ok := base.HTTP.Transport.(*mfed.ServerResolvingTransport)
	if !ok {
		return nil, errors.New("federation: mautrix client has an unexpected transport")
	}
	// The resolving transport dials the resolved address; the handshake is
	// for the Host the request names (the server name or its delegate).
	srt.Transport.DialTLSContext = policy.dialTLS(srt.DialContext)
	// .well-known lookups follow the same TLS and address rules.
	srt.ResolveOpts = &mfed.ResolveServerNameOpts{HTTPClient: &http.Client{
		Timeout: wellKnownTimeout,
		Transport: &http.Transport{
			DialContext:           base.Dialer.DialContext,
			DialTLSContext:        policy.dialTLS(base.Dialer.DialContext),
			ForceAttemptHTTP2:     true,
			TLSHandshakeTimeout:   wellKnownTimeout,
			ResponseHeaderTimeout: wellKnownTimeout,
			IdleConnTimeout:       90 * time.Second,
		},
	}}
	keyFetch := *base
	keyFetch.ResponseSizeLimit = maxKeyResponseBytes
	return &Client{keys: keys, base: base, keyFetch: &keyFetch, log: log}, nil
}

// allowIP is the outbound address filter: by default only public unicast
// addresses (mautrix's rule); loopback, private and link-local ones too when
// allowed. Unspecified and multicast addresses never.
func allowIP(allowPrivate bool) func(net.IP) bool {
	if !allowPrivate {
		return mfed.DefaultAllowIP
	}
	return func(ip net.IP) bool { return !ip.IsUnspecified() && !ip.IsMulticast() }
}

// Fed returns mautrix's federation client set to sign with the server's
// current key: its typed calls (SendTransaction, MakeJoin, SendJoin,
// Backfill, GetMissingEvents, QueryKeys, ...) all go through it.
func (c *Client) Fed() (*mfed.Client, error) {
	key, err := c.keys.Current()
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.signing == nil || c.signing.Key != key {
		cp := *c.base
		cp.Key = key
		c.signing = &cp
	}
	return c.signing, nil
}

// Do makes one request (signed when params.Authenticate) and returns the
// body and response; non-2xx answers are errors (mautrix.RespError inside).
func (c *Client) Do(ctx context.Context, params mfed.RequestParams) ([]byte, *http.Response, error) {
	fed, err := c.Fed()
	if err != nil {
		return nil, nil, err
	}
	return fed.MakeFullRequest(ctx, params)
}

// Version asks server for its implementation name and version.
func (c *Client) Version(ctx context.Context, server string) (*mfed.RespServerVersion, error) {
	return c.base.Version(ctx, server)
}

// tlsPolicy makes the TLS connections of outbound federation: the system
// roots plus the configured extra CAs, the certificate checked against the
// name the request was resolved for (an IP literal is checked against the
// certificate's IP addresses and sent without SNI), and, only when
// configured and only for a loopback peer, no check at all (dev mode).
type tlsPolicy struct {
	roots        *x509.CertPool
	skipLoopback bool
}

func newTLSPolicy(caFiles []string, skipLoopback bool) (*tlsPolicy, error) {
	roots, err := x509.SystemCertPool()
	if err != nil || roots == nil {
		roots = x509.NewCertPool()
	}
	for _, f := range caFiles {
		pem, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("federation: extra CA file: %w", err)
		}
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("federation: extra CA file %s holds no PEM certificate", f)
		}
	}
	return &tlsPolicy{roots: roots, skipLoopback: skipLoopback}, nil
}

type dialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// dialTLS wraps dial (which picks the address to connect to) with a TLS
// handshake for addr's host, the host the request names.
func (p *tlsPolicy) dialTLS(dial dialFunc) dialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		raw, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		cfg := &tls.Config{
			RootCAs:    p.roots,
			ServerName: host,
			MinVersion: tls.VersionTLS12,
			NextProtos: []string{"h2", "http/1.1"},
		}
		if p.skipLoopback && isLoopback(raw.RemoteAddr()) {
			cfg.InsecureSkipVerify = true
		}
		conn := tls.Client(raw, cfg)
		if err := conn.HandshakeContext(ctx); err != nil {
			_ = raw.Close()
			return nil, err
		}
		return conn, nil
	}
}

// isLoopback is true for 127.0.0.0/8 and ::1 (also IPv4-mapped).
func isLoopback(addr net.Addr) bool {
	tcp, ok := addr.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}
