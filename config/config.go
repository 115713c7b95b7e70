// Package config holds Ganglion's YAML configuration: the defaults, loading
// (strict: an unknown key is an error), environment overrides, and a
// validation that reports every problem at once.
//
// Loading runs in this order: start from the defaults, decode the YAML over
// them, apply the GANGLION_* environment overrides, fill the derived fields
// (node.client_url and node.raft_advertise follow the listen addresses unless
// set), then Validate.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	"gopkg.in/yaml.v3"
)

// Config is the whole configuration of one Ganglion node.
type Config struct {
	ServerName   string             `yaml:"server_name"` // required, e.g. "localhost:8008" or "example.org"
	DataDir      string             `yaml:"data_dir"`    // required
	Node         NodeConfig         `yaml:"node"`
	Cluster      ClusterConfig      `yaml:"cluster"`
	Registration RegistrationConfig `yaml:"registration"`
	Limits       LimitsConfig       `yaml:"limits"`
	Rooms        RoomsConfig        `yaml:"rooms"`
	TURN         TURNConfig         `yaml:"turn"`
	Federation   FederationConfig   `yaml:"federation"`
	Logging      LoggingConfig      `yaml:"logging"`
}

// NodeConfig describes this node: its Raft ID and the addresses it listens on
// and advertises.
type NodeConfig struct {
	ID            string `yaml:"id"`             // default "node1"
	ClientListen  string `yaml:"client_listen"`  // host:port, default "127.0.0.1:8008"
	ClientURL     string `yaml:"client_url"`     // advertised; default "http://"+ClientListen
	RaftListen    string `yaml:"raft_listen"`    // host:port, default "127.0.0.1:8300"
	RaftAdvertise string `yaml:"raft_advertise"` // default = RaftListen
}

// ClusterConfig holds the Raft and discovery settings.
type ClusterConfig struct {
	Bootstrap          bool     `yaml:"bootstrap"`            // default true
	BootstrapExpect    int      `yaml:"bootstrap_expect"`     // default 0
	Join               []string `yaml:"join"`                 // host:port of peers to join
	GossipListen       string   `yaml:"gossip_listen"`        // default "" (no gossip)
	GossipKey          string   `yaml:"gossip_key"`           // base64 of 16/24/32 bytes when set
	HeartbeatTimeout   Duration `yaml:"heartbeat_timeout"`    // default 500ms
	ElectionTimeout    Duration `yaml:"election_timeout"`     // default 500ms
	LeaderLeaseTimeout Duration `yaml:"leader_lease_timeout"` // default 500ms
	CommitTimeout      Duration `yaml:"commit_timeout"`       // default 1ms: how soon followers learn a commit
	SnapshotThreshold  uint64   `yaml:"snapshot_threshold"`   // default 8192
	SnapshotInterval   Duration `yaml:"snapshot_interval"`    // default 2m: how often the threshold is checked
	TrailingLogs       uint64   `yaml:"trailing_logs"`        // default 10240
}

// RegistrationConfig controls who may create accounts.
type RegistrationConfig struct {
	Enabled      bool   `yaml:"enabled"`       // default false
	SharedSecret string `yaml:"shared_secret"` // for /_synapse/admin/v1/register; empty disables it
}

// LimitsConfig bounds what clients may send.
type LimitsConfig struct {
	MaxJSONBodyBytes int64 `yaml:"max_json_body_bytes"` // default 1048576
}

// RoomsConfig holds room defaults.
type RoomsConfig struct {
	DefaultVersion string `yaml:"default_version"` // default "12"; one of "10","11","12"
}

// TURNConfig holds the TURN servers handed to VoIP clients.
type TURNConfig struct {
	URIs         []string `yaml:"uris"`
	SharedSecret string   `yaml:"shared_secret"`
	UserLifetime Duration `yaml:"user_lifetime"` // default 1h
}

// LoggingConfig holds the log settings.
type LoggingConfig struct {
	Level string `yaml:"level"` // trace|debug|info|warn|error, default "info"
}

// base returns the defaults without the derived fields (ClientURL and
// RaftAdvertise), so that decoding a changed listen address over it lets the
// derived fields follow.
func base() *Config {
	return &Config{
		ServerName: "localhost:8008",
		DataDir:    "./ganglion-data",
		Node: NodeConfig{
			ID:           "node1",
			ClientListen: "127.0.0.1:8008",
			RaftListen:   "127.0.0.1:8300",
		},
		Cluster: ClusterConfig{
			Bootstrap:          true,
			HeartbeatTimeout:   Duration{500 * ms},
			ElectionTimeout:    Duration{500 * ms},
			LeaderLeaseTimeout: Duration{500 * ms},
			CommitTimeout:      Duration{1 * ms},
			SnapshotThreshold:  8192,
			SnapshotInterval:   Duration{2 * 60 * 1000 * ms},
			TrailingLogs:       10240,
		},
		Limits: LimitsConfig{MaxJSONBodyBytes: 1 << 20},
		Rooms:  RoomsConfig{DefaultVersion: "12"},
		TURN:   TURNConfig{UserLifetime: Duration{hour}},
		Federation: FederationConfig{KeyValidity: Duration{24 * hour}, MaxRequestBytes: 16 << 20,
			RequestTimeout: Duration{60 * 1000 * ms}},
		Logging: LoggingConfig{
			Level: "info",
		},
	}
}

// Default returns a configuration with every default filled in, including the
// derived node.client_url and node.raft_advertise.
//
// The derived fields are plain values: a caller that changes
// Node.ClientListen or Node.RaftListen on the result must also set (or clear
// and re-derive by re-parsing) Node.ClientURL and Node.RaftAdvertise.
func Default() *Config {
	c := base()
	c.fillDerived()
	return c
}

// Load reads the YAML file at path and returns the configuration it
// describes, with the GANGLION_* environment overrides applied and validated.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := parse(data, os.LookupEnv)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// Parse is Load without the file: it decodes data over the defaults, applies
// the GANGLION_* environment overrides and validates the result.
func Parse(data []byte) (*Config, error) {
	return parse(data, os.LookupEnv)
}

// parse does the work of Parse with lookup as the environment; a nil lookup
// applies no overrides.
func parse(data []byte, lookup func(string) (string, bool)) (*Config, error) {
	c := base()
	if err := decodeStrict(data, c); err != nil {
		return nil, err
	}
	if lookup != nil {
		if err := c.ApplyEnv(lookup); err != nil {
			return nil, err
		}
	}
	c.fillDerived()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// decodeStrict decodes one YAML document over c; unknown keys are errors. An
// empty document leaves c unchanged.
func decodeStrict(data []byte, c *Config) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		return err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return err
		}
		return errors.New("yaml: more than one document")
	}
	return nil
}

// fillDerived fills the fields whose defaults come from other fields and
// normalizes empty lists to nil.
func (c *Config) fillDerived() {
	if c.Node.ClientURL == "" {
		c.Node.ClientURL = derivedClientURL(c.Node.ClientListen)
	}
	if c.Node.RaftAdvertise == "" {
		c.Node.RaftAdvertise = c.Node.RaftListen
	}
	if len(c.Cluster.Join) == 0 {
		c.Cluster.Join = nil
	}
	if len(c.TURN.URIs) == 0 {
		c.TURN.URIs = nil
	}
	if len(c.Federation.TrustedKeyServers) == 0 {
		c.Federation.TrustedKeyServers = nil
	}
	if len(c.Federation.ExtraCAFiles) == 0 {
		c.Federation.ExtraCAFiles = nil
	}
}

func derivedClientURL(listen string) string {
	return "http://" + listen
}

// The environment variables ApplyEnv reads.
const (
	envServerName                = "GANGLION_SERVER_NAME"
	envDataDir                   = "GANGLION_DATA_DIR"
	envNodeID                    = "GANGLION_NODE_ID"
	envClientListen              = "GANGLION_CLIENT_LISTEN"
	envRaftListen                = "GANGLION_RAFT_LISTEN"
	envRegistrationEnabled       = "GANGLION_REGISTRATION_ENABLED"
	envRegistrationSharedSecret  = "GANGLION_REGISTRATION_SHARED_SECRET"
	envLogLevel                  = "GANGLION_LOG_LEVEL"
	envRegistrationEnabledFormat = "true/false, 1/0, t/f"
)

// ApplyEnv overrides fields from the environment as seen through lookup
// (os.LookupEnv when lookup is nil). A variable that is set overrides its
// field even when its value is empty; Validate then judges the result.
//
// GANGLION_REGISTRATION_ENABLED must be a boolean (strconv.ParseBool). When
// GANGLION_CLIENT_LISTEN or GANGLION_RAFT_LISTEN changes a listen address,
// node.client_url or node.raft_advertise follows it if it was empty or still
// equal to the value derived from the old address.
//
// Every malformed variable is reported; the others are still applied.
func (c *Config) ApplyEnv(lookup func(string) (string, bool)) error {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	str := func(name string, field *string) {
		if v, ok := lookup(name); ok {
			*field = v
		}
	}
	var errs []error

	str(envServerName, &c.ServerName)
	str(envDataDir, &c.DataDir)
	str(envNodeID, &c.Node.ID)

	if v, ok := lookup(envClientListen); ok {
		follow := c.Node.ClientURL == "" || c.Node.ClientURL == derivedClientURL(c.Node.ClientListen)
		c.Node.ClientListen = v
		if follow {
			c.Node.ClientURL = derivedClientURL(v)
		}
	}
	if v, ok := lookup(envRaftListen); ok {
		follow := c.Node.RaftAdvertise == "" || c.Node.RaftAdvertise == c.Node.RaftListen
		c.Node.RaftListen = v
		if follow {
			c.Node.RaftAdvertise = v
		}
	}

	if v, ok := lookup(envRegistrationEnabled); ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %q is not a boolean (%s)", envRegistrationEnabled, v, envRegistrationEnabledFormat))
		} else {
			c.Registration.Enabled = b
		}
	}
	str(envRegistrationSharedSecret, &c.Registration.SharedSecret)
	str(envLogLevel, &c.Logging.Level)

	return errors.Join(errs...)
}
