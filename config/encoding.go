package config

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"text/template"
	"time"

	"gopkg.in/yaml.v3"
)

const (
	ms   = time.Millisecond
	hour = time.Hour
)

// Duration is a time.Duration written in YAML as a Go duration string such
// as "500ms", "2s" or "1h30m". A number without a unit is rejected, except 0.
type Duration struct{ time.Duration }

// UnmarshalYAML reads a duration string. Its errors are *yaml.TypeError, so
// the decoder goes on and reports them together with the other type errors
// and unknown keys of the document.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return &yaml.TypeError{Errors: []string{
			fmt.Sprintf("line %d: duration must be a string such as \"500ms\"", n.Line)}}
	}
	v, err := parseDuration(n.Value)
	if err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %v", n.Line, err)}}
	}
	d.Duration = v
	return nil
}

// MarshalYAML writes the duration as its shortest string, e.g. "1h", "500ms".
func (d Duration) MarshalYAML() (any, error) {
	return d.String(), nil
}

// String returns the duration without trailing zero units ("1h", not
// "1h0m0s").
func (d Duration) String() string {
	s := d.Duration.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("empty duration (write e.g. \"500ms\")")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q (write e.g. \"500ms\", \"2s\", \"1h\")", s)
	}
	return v, nil
}

// Marshal returns c as YAML, which Parse reads back to an equal Config.
func (c *Config) Marshal() ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(c); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// defaultTemplate is the commented default configuration. It is filled from
// base(), so its values are always the defaults; node.client_url and
// node.raft_advertise are left empty so that they follow the listen addresses.
var defaultTemplate = template.Must(template.New("config").
	Funcs(template.FuncMap{"q": strconv.Quote}).
	Parse(`# Ganglion configuration. Every key is optional: the values below are the defaults.
# Unknown keys are an error. Durations are written like "5ms", "500ms", "2s", "1h".
# Environment overrides: GANGLION_SERVER_NAME, GANGLION_DATA_DIR, GANGLION_NODE_ID,
# GANGLION_CLIENT_LISTEN, GANGLION_RAFT_LISTEN, GANGLION_REGISTRATION_ENABLED,
# GANGLION_REGISTRATION_SHARED_SECRET, GANGLION_LOG_LEVEL.

# Matrix server name of the whole cluster (hostname, IPv4 or [IPv6], optional :port).
server_name: {{q .ServerName}}
# Directory holding this node's Raft log, snapshots and state store.
data_dir: {{q .DataDir}}

# This node.
node:
  # Raft ID of this node, unique within the cluster.
  id: {{q .Node.ID}}
  # host:port the Client-Server API listens on.
  client_listen: {{q .Node.ClientListen}}
  # URL at which other nodes reach this node's client API; empty means "http://" + client_listen.
  client_url: ""
  # host:port the Raft transport listens on.
  raft_listen: {{q .Node.RaftListen}}
  # host:port other nodes dial for Raft; empty means raft_listen.
  raft_advertise: ""

# Raft and discovery.
cluster:
  # Bootstrap a new cluster from this node when it has no Raft state yet.
  bootstrap: {{.Cluster.Bootstrap}}
  # Wait for this many nodes (0 or odd: 1, 3, 5, ...) before bootstrapping; 0 bootstraps alone.
  bootstrap_expect: {{.Cluster.BootstrapExpect}}
  # host:port of existing cluster members to join.
  join: []
  # host:port for memberlist gossip (discovery, typing, presence); empty disables gossip.
  gossip_listen: {{q .Cluster.GossipListen}}
  # Base64 of a 16, 24 or 32 byte key encrypting gossip; empty sends gossip in clear.
  gossip_key: {{q .Cluster.GossipKey}}
  # Time without leader contact before a follower becomes a candidate (at least 5ms).
  heartbeat_timeout: {{q .Cluster.HeartbeatTimeout.String}}
  # Time a candidate waits before starting a new election (at least heartbeat_timeout).
  election_timeout: {{q .Cluster.ElectionTimeout.String}}
  # Time a leader stays leader without contact from a quorum (at most heartbeat_timeout).
  leader_lease_timeout: {{q .Cluster.LeaderLeaseTimeout.String}}
  # Time without an Apply before the leader sends an empty heartbeat entry (at least 1ms).
  commit_timeout: {{q .Cluster.CommitTimeout.String}}
  # Number of new log entries that triggers a snapshot.
  snapshot_threshold: {{.Cluster.SnapshotThreshold}}
  # How often the snapshot threshold is checked (at least 10ms).
  snapshot_interval: {{q .Cluster.SnapshotInterval.String}}
  # Number of log entries kept after a snapshot, for followers that lag behind.
  trailing_logs: {{.Cluster.TrailingLogs}}

# Account registration.
registration:
  # Allow open registration through /_matrix/client/v3/register.
  enabled: {{.Registration.Enabled}}
  # Secret for /_synapse/admin/v1/register; empty disables that endpoint.
  shared_secret: {{q .Registration.SharedSecret}}

# Request limits.
limits:
  # Largest JSON request body accepted, in bytes.
  max_json_body_bytes: {{.Limits.MaxJSONBodyBytes}}

# Rooms.
rooms:
  # Room version of new rooms when the client does not ask for one: "10", "11" or "12".
  default_version: {{q .Rooms.DefaultVersion}}

# TURN servers for VoIP (/_matrix/client/v3/voip/turnServer).
turn:
  # TURN/STUN URIs handed to clients, e.g. "turn:turn.example.org:3478?transport=udp".
  uris: []
  # Shared secret (coturn use-auth-secret) for time-limited TURN credentials.
  shared_secret: {{q .TURN.SharedSecret}}
  # How long the TURN credentials handed to a client stay valid.
  user_lifetime: {{q .TURN.UserLifetime.String}}

# Federation (Server-Server API). An empty listen disables it.
federation:
  # host:port of the federation TLS listener, e.g. "0.0.0.0:8448".
  listen: ""
  # PEM certificate chain for that listener.
  tls_cert: ""
  # PEM private key for that listener.
  tls_key: ""
  # Make a self-signed certificate in data_dir instead (development only).
  dev_certificate: false
  # How long the server keys we publish stay valid (1h to 168h).
  key_validity: "24h0m0s"
  # Notaries asked for other servers' keys, e.g.
  # - {server_name: example.org, verify_keys: {"ed25519:auto": "base64..."}}
  trusted_key_servers: []
  # PEM files of CAs trusted besides the system roots.
  extra_ca_files: []
  # Skip certificate checks for peers on loopback addresses (development only).
  insecure_skip_verify_loopback: false
  # Let outbound requests reach loopback, private and link-local addresses.
  allow_private_addresses: false
  # Largest inbound federation request body, in bytes.
  max_request_bytes: 16777216
  # Time bound of one outbound federation request.
  request_timeout: "1m0s"
  # Served as m.server at /.well-known/matrix/server (delegation), e.g. "fed.example.org:443".
  well_known_server: ""
  # Served as m.homeserver.base_url at /.well-known/matrix/client.
  well_known_client: ""

# Logging.
logging:
  # Log level: trace, debug, info, warn or error.
  level: {{q .Logging.Level}}
`))

// GenerateDefault returns a commented YAML configuration holding every key at
// its default value. Parse accepts it and returns a Config equal to Default().
func GenerateDefault() string {
	var b strings.Builder
	if err := defaultTemplate.Execute(&b, base()); err != nil {
		panic("config: default template: " + err.Error())
	}
	return b.String()
}
