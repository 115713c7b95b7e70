package federation

import (
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	mfed "maunium.net/go/mautrix/federation"
	"maunium.net/go/mautrix/id"
)

// Config is what the federation API needs from the server's configuration.
// The lead maps config.Config onto it in serve.go; zero fields get defaults.
type Config struct {
	// ServerName is this homeserver's name (the cluster's, not a node's).
	ServerName string
	// KeyValidity is how far ahead our published valid_until_ts lies.
	// Default 24h (as Synapse); receivers cap it at 7 days anyway.
	KeyValidity time.Duration
	// TrustedKeyServers are the notaries asked for a server's keys when the
	// server cannot be reached or its answer is not valid long enough.
	TrustedKeyServers []TrustedKeyServer
	// ExtraCAFiles are PEM files of CAs trusted besides the system roots.
	ExtraCAFiles []string
	// InsecureSkipVerifyLoopback skips certificate checks for peers whose
	// address is a loopback address, and for no others (dev mode).
	InsecureSkipVerifyLoopback bool
	// AllowPrivateAddresses lets outbound requests reach loopback, private
	// and link-local addresses (refused by default against SSRF).
	AllowPrivateAddresses bool
	// MaxRequestBytes bounds inbound request bodies. Default 16 MiB: a
	// transaction holds 50 PDUs of 64 KiB plus 100 EDUs.
	MaxRequestBytes int64
	// RequestTimeout bounds one outbound request. Default 60s.
	RequestTimeout time.Duration
	// WellKnownServer, when set, is served as m.server at
	// /.well-known/matrix/server (delegation, e.g. "fed.example.org:443").
	WellKnownServer string
	// Version is reported by /_matrix/federation/v1/version. Default: the
	// module version from the build info.
	Version string
}

// TrustedKeyServer is a notary. With VerifyKeys set its answers must be
// signed by one of them; otherwise its keys are fetched from it directly.
type TrustedKeyServer struct {
	ServerName string
	VerifyKeys map[id.KeyID]id.SigningKey
}

const (
	defaultKeyValidity     = 24 * time.Hour
	maxKeyValidity         = 7 * 24 * time.Hour // the spec's cap on valid_until_ts
	defaultMaxRequestBytes = 16 << 20
	defaultRequestTimeout  = 60 * time.Second
	serverSoftwareName     = "Ganglion"
)

// withDefaults fills the zero fields and reports every invalid one.
func (c Config) withDefaults() (Config, error) {
	var errs []error
	if _, _, ok := mfed.ParseServerName(c.ServerName); !ok {
		errs = append(errs, fmt.Errorf("federation: invalid server name %q", c.ServerName))
	}
	if c.KeyValidity == 0 {
		c.KeyValidity = defaultKeyValidity
	}
	if c.KeyValidity < time.Hour || c.KeyValidity > maxKeyValidity {
		errs = append(errs, fmt.Errorf("federation: key validity %s must be between 1h and 7 days", c.KeyValidity))
	}
	if c.MaxRequestBytes == 0 {
		c.MaxRequestBytes = defaultMaxRequestBytes
	}
	if c.MaxRequestBytes < 1<<16 {
		errs = append(errs, fmt.Errorf("federation: max request bytes %d is below one PDU (65536)", c.MaxRequestBytes))
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = defaultRequestTimeout
	}
	for _, n := range c.TrustedKeyServers {
		if _, _, ok := mfed.ParseServerName(n.ServerName); !ok {
			errs = append(errs, fmt.Errorf("federation: invalid trusted key server %q", n.ServerName))
		}
		for kid, key := range n.VerifyKeys {
			if _, err := decodeVerifyKey(kid, key); err != nil {
				errs = append(errs, fmt.Errorf("federation: trusted key server %s: %w", n.ServerName, err))
			}
		}
	}
	if c.Version == "" {
		c.Version = buildVersion()
	}
	return c, errors.Join(errs...)
}

// buildVersion is the main module's version, or "dev" for a source build.
func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}
