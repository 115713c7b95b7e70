package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Minimums that hashicorp/raft v1.7.3 ValidateConfig enforces; checking them
// here reports them together with every other problem, before raft starts.
const (
	raftMinTimeout       = 5 * time.Millisecond
	raftMinCommitTimeout = time.Millisecond
)

// roomVersions are the room versions Ganglion can create by default.
var roomVersions = []string{"10", "11", "12"}

var logLevels = []string{"trace", "debug", "info", "warn", "error"}

// problems collects "field: problem" errors.
type problems []error

func (p *problems) add(field, format string, args ...any) {
	*p = append(*p, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
}

// check records err, if any, against field.
func (p *problems) check(field string, err error) {
	if err != nil {
		p.add(field, "%v", err)
	}
}

// Validate checks the whole configuration and reports every problem at once:
// the result is nil or an errors.Join of one "field: problem" error per
// problem, so its Error() lists them one per line.
func (c *Config) Validate() error {
	var p problems

	if c.ServerName == "" {
		p.add("server_name", "required")
	} else {
		p.check("server_name", checkServerName(c.ServerName))
	}
	if strings.TrimSpace(c.DataDir) == "" {
		p.add("data_dir", "required")
	}

	c.validateNode(&p)
	c.validateCluster(&p)
	c.validateFederation(&p)

	if c.Limits.MaxJSONBodyBytes <= 0 {
		p.add("limits.max_json_body_bytes", "must be positive, got %d", c.Limits.MaxJSONBodyBytes)
	}
	if !slices.Contains(roomVersions, c.Rooms.DefaultVersion) {
		p.add("rooms.default_version", "unknown room version %q (want one of %s)",
			c.Rooms.DefaultVersion, strings.Join(roomVersions, ", "))
	}

	needSecret := false
	for i, u := range c.TURN.URIs {
		scheme, _, _ := strings.Cut(u, ":")
		switch scheme {
		case "turn", "turns":
			needSecret = true
		case "stun", "stuns":
		default:
			p.add(fmt.Sprintf("turn.uris[%d]", i), "%q must start with turn:, turns:, stun: or stuns:", u)
			continue
		}
		if len(u) == len(scheme)+1 {
			p.add(fmt.Sprintf("turn.uris[%d]", i), "%q has no host", u)
		}
	}
	if needSecret && c.TURN.SharedSecret == "" {
		p.add("turn.shared_secret", "required when turn.uris lists a turn: or turns: server")
	}
	if c.TURN.UserLifetime.Duration <= 0 {
		p.add("turn.user_lifetime", "must be positive, got %s", c.TURN.UserLifetime)
	}

	if !slices.Contains(logLevels, c.Logging.Level) {
		p.add("logging.level", "unknown level %q (want one of %s)", c.Logging.Level, strings.Join(logLevels, ", "))
	}
	return errors.Join(p...)
}

func (c *Config) validateNode(p *problems) {
	n := &c.Node
	switch {
	case n.ID == "":
		p.add("node.id", "required")
	case strings.IndexFunc(n.ID, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }) >= 0:
		p.add("node.id", "%q must not contain spaces or control characters", n.ID)
	}
	p.check("node.client_listen", checkListen(n.ClientListen))
	p.check("node.client_url", checkClientURL(n.ClientURL))
	p.check("node.raft_listen", checkListen(n.RaftListen))
	p.check("node.raft_advertise", checkAdvertise(n.RaftAdvertise))
}

func (c *Config) validateCluster(p *problems) {
	cl := &c.Cluster
	c.validateGossip(p)
	if cl.BootstrapExpect < 0 || (cl.BootstrapExpect > 0 && cl.BootstrapExpect%2 == 0) {
		p.add("cluster.bootstrap_expect", "must be 0 or an odd number of nodes (1, 3, 5, ...), got %d", cl.BootstrapExpect)
	}
	for i, j := range cl.Join {
		p.check(fmt.Sprintf("cluster.join[%d]", i), checkAdvertise(j))
	}
	if cl.GossipListen != "" {
		p.check("cluster.gossip_listen", checkListen(cl.GossipListen))
	}
	if cl.GossipKey != "" {
		key, err := base64.StdEncoding.DecodeString(cl.GossipKey)
		switch {
		case err != nil:
			p.add("cluster.gossip_key", "not valid base64: %v", err)
		case len(key) != 16 && len(key) != 24 && len(key) != 32:
			p.add("cluster.gossip_key", "must decode to 16, 24 or 32 bytes, got %d", len(key))
		}
	}

	timeouts := []struct {
		field string
		d     time.Duration
		min   time.Duration
	}{
		{"cluster.heartbeat_timeout", cl.HeartbeatTimeout.Duration, raftMinTimeout},
		{"cluster.election_timeout", cl.ElectionTimeout.Duration, raftMinTimeout},
		{"cluster.leader_lease_timeout", cl.LeaderLeaseTimeout.Duration, raftMinTimeout},
		{"cluster.commit_timeout", cl.CommitTimeout.Duration, raftMinCommitTimeout},
	}
	allOK := true
	for _, t := range timeouts {
		switch {
		case t.d <= 0:
			p.add(t.field, "must be positive, got %s", Duration{t.d})
			allOK = false
		case t.d < t.min:
			p.add(t.field, "must be at least %s (the raft minimum), got %s", Duration{t.min}, Duration{t.d})
			allOK = false
		}
	}
	if allOK {
		// hashicorp/raft rejects these combinations too.
		if cl.LeaderLeaseTimeout.Duration > cl.HeartbeatTimeout.Duration {
			p.add("cluster.leader_lease_timeout", "%s must not exceed heartbeat_timeout (%s)",
				cl.LeaderLeaseTimeout, cl.HeartbeatTimeout)
		}
		if cl.ElectionTimeout.Duration < cl.HeartbeatTimeout.Duration {
			p.add("cluster.election_timeout", "%s must not be less than heartbeat_timeout (%s)",
				cl.ElectionTimeout, cl.HeartbeatTimeout)
		}
	}
	if cl.SnapshotThreshold == 0 {
		p.add("cluster.snapshot_threshold", "must be positive")
	}
	if cl.SnapshotInterval.Duration < 10*time.Millisecond {
		p.add("cluster.snapshot_interval", "must be at least 10ms, got %s", cl.SnapshotInterval)
	}
}

// checkServerName checks a Matrix server name: hostname / IPv4 / "[" IPv6
// "]", with an optional ":" port (appendices, "Server Name").
func checkServerName(s string) error {
	host, port, hasPort := s, "", false
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return fmt.Errorf("%q: missing ']' after IPv6 address", s)
		}
		host = s[1:end]
		if ip := net.ParseIP(host); ip == nil || !strings.Contains(host, ":") {
			return fmt.Errorf("%q: %q is not an IPv6 address", s, host)
		}
		rest := s[end+1:]
		if rest != "" {
			if rest[0] != ':' {
				return fmt.Errorf("%q: unexpected %q after IPv6 address", s, rest)
			}
			port, hasPort = rest[1:], true
		}
	} else {
		if i := strings.LastIndexByte(s, ':'); i >= 0 {
			host, port, hasPort = s[:i], s[i+1:], true
		}
		if err := checkHostname(host); err != nil {
			return fmt.Errorf("%q: %w", s, err)
		}
	}
	if hasPort {
		if len(port) < 1 || len(port) > 5 || strings.Trim(port, "0123456789") != "" {
			return fmt.Errorf("%q: port %q must be 1 to 5 digits", s, port)
		}
		if v, _ := strconv.Atoi(port); v < 1 || v > 65535 {
			return fmt.Errorf("%q: port %s out of range 1-65535", s, port)
		}
	}
	return nil
}

// checkHostname checks a DNS name or an IPv4 address (not bracketed IPv6).
func checkHostname(host string) error {
	if host == "" {
		return errors.New("empty hostname")
	}
	if len(host) > 255 {
		return fmt.Errorf("hostname longer than 255 characters")
	}
	for _, r := range host {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return fmt.Errorf("invalid character %q in hostname %q", r, host)
		}
	}
	if strings.Trim(host, "0123456789.") == "" && strings.Count(host, ".") == 3 && net.ParseIP(host) == nil {
		return fmt.Errorf("%q is not a valid IPv4 address", host)
	}
	return nil
}

// splitHostPort splits a host:port and checks the port is a number 0-65535
// and the host, when not empty and not an IP, a valid hostname.
func splitHostPort(s string) (host string, port uint64, err error) {
	if s == "" {
		return "", 0, errors.New("required (host:port)")
	}
	host, ps, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, fmt.Errorf("%q is not host:port", s)
	}
	port, err = strconv.ParseUint(ps, 10, 16)
	if err != nil {
		return "", 0, fmt.Errorf("%q: port %q is not a number 0-65535", s, ps)
	}
	if host != "" && net.ParseIP(host) == nil {
		if err := checkHostname(host); err != nil {
			return "", 0, fmt.Errorf("%q: %w", s, err)
		}
	}
	return host, port, nil
}

// checkListen checks an address to listen on: host:port, where an empty host
// means every interface and port 0 a port the system picks.
func checkListen(s string) error {
	_, _, err := splitHostPort(s)
	return err
}

// checkAdvertise checks an address other nodes dial: host:port with a host
// that is not empty or unspecified (0.0.0.0, ::) and a port that is not 0.
func checkAdvertise(s string) error {
	host, port, err := splitHostPort(s)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		return fmt.Errorf("%q: other nodes cannot dial an empty or unspecified host", s)
	}
	if port == 0 {
		return fmt.Errorf("%q: other nodes cannot dial port 0", s)
	}
	return nil
}

// checkClientURL checks the advertised client URL: absolute http(s) with a
// host.
func checkClientURL(s string) error {
	if s == "" {
		return errors.New("required")
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q is not a URL: %v", s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%q must start with http:// or https://", s)
	}
	if u.Hostname() == "" {
		return fmt.Errorf("%q has no host (set node.client_url when client_listen has no host)", s)
	}
	return nil
}
