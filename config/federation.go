package config

import (
	"fmt"
	"net"
	"strings"
)

// FederationConfig holds the Server-Server API settings. An empty Listen
// disables federation.
type FederationConfig struct {
	Listen  string `yaml:"listen"`   // host:port of the TLS listener, e.g. "0.0.0.0:8448"
	TLSCert string `yaml:"tls_cert"` // PEM certificate chain
	TLSKey  string `yaml:"tls_key"`  // PEM private key
	// DevCertificate makes a self-signed certificate in data_dir instead of
	// tls_cert/tls_key (development only).
	DevCertificate             bool               `yaml:"dev_certificate"`
	KeyValidity                Duration           `yaml:"key_validity"` // default 24h
	TrustedKeyServers          []TrustedKeyServer `yaml:"trusted_key_servers"`
	ExtraCAFiles               []string           `yaml:"extra_ca_files"`
	InsecureSkipVerifyLoopback bool               `yaml:"insecure_skip_verify_loopback"` // dev: loopback peers only
	AllowPrivateAddresses      bool               `yaml:"allow_private_addresses"`
	MaxRequestBytes            int64              `yaml:"max_request_bytes"` // default 16 MiB
	RequestTimeout             Duration           `yaml:"request_timeout"`   // default 60s
	WellKnownServer            string             `yaml:"well_known_server"` // m.server delegation target
	WellKnownClient            string             `yaml:"well_known_client"` // m.homeserver base_url
}

// TrustedKeyServer is a notary asked for other servers' keys.
type TrustedKeyServer struct {
	ServerName string            `yaml:"server_name"`
	VerifyKeys map[string]string `yaml:"verify_keys"` // key ID -> unpadded base64; optional pin
}

// Enabled reports whether this node serves and sends federation.
func (f *FederationConfig) Enabled() bool { return f.Listen != "" }

func (c *Config) validateFederation(p *problems) {
	f := &c.Federation
	if !f.Enabled() {
		return
	}
	if _, _, err := net.SplitHostPort(f.Listen); err != nil {
		p.add("federation.listen", "must be host:port: %v", err)
	}
	if !f.DevCertificate && (f.TLSCert == "" || f.TLSKey == "") {
		p.add("federation.tls_cert", "tls_cert and tls_key are required (or dev_certificate: true)")
	}
	if f.KeyValidity.Duration < 0 || f.RequestTimeout.Duration < 0 || f.MaxRequestBytes < 0 {
		p.add("federation", "key_validity, request_timeout and max_request_bytes must not be negative")
	}
	for i, ks := range f.TrustedKeyServers {
		if strings.TrimSpace(ks.ServerName) == "" {
			p.add(fmt.Sprintf("federation.trusted_key_servers[%d].server_name", i), "required")
		}
	}
}
