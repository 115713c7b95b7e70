package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestValidateReportsEveryProblem(t *testing.T) {
	c := Default()
	c.ServerName = ""
	c.DataDir = ""
	c.Node.ID = ""
	c.Node.ClientListen = "localhost"
	c.Node.ClientURL = "ftp://x"
	c.Node.RaftListen = "127.0.0.1:99999"
	c.Node.RaftAdvertise = "0.0.0.0:8300"
	c.Cluster.BootstrapExpect = 2
	c.Cluster.Join = []string{"10.0.0.2:8300", "nope"}
	c.Cluster.GossipListen = "bad"
	c.Cluster.GossipKey = "c2hvcnQ="
	c.Cluster.HeartbeatTimeout = Duration{0}
	c.Cluster.ElectionTimeout = Duration{-time.Second}
	c.Cluster.LeaderLeaseTimeout = Duration{time.Millisecond}
	c.Cluster.CommitTimeout = Duration{0}
	c.Cluster.SnapshotThreshold = 0
	c.Limits.MaxJSONBodyBytes = 0
	c.Rooms.DefaultVersion = "9"
	c.TURN.URIs = []string{"turn:turn.example.org", "http://x"}
	c.TURN.UserLifetime = Duration{-time.Minute}
	c.Logging.Level = "verbose"

	err := c.Validate()
	if err == nil {
		t.Fatal("Validate() = nil")
	}
	want := []string{
		"server_name: required",
		"data_dir: required",
		"node.id: required",
		"node.client_listen:",
		"node.client_url:",
		"node.raft_listen:",
		"node.raft_advertise:",
		"cluster.bootstrap:",
		"cluster.bootstrap_expect:",
		"cluster.join[1]:",
		"cluster.gossip_listen:",
		"cluster.gossip_key:",
		"cluster.heartbeat_timeout: must be positive",
		"cluster.election_timeout: must be positive",
		"cluster.leader_lease_timeout: must be at least 5ms",
		"cluster.commit_timeout: must be positive",
		"cluster.snapshot_threshold:",
		"limits.max_json_body_bytes:",
		"rooms.default_version:",
		"turn.uris[1]:",
		"turn.shared_secret:",
		"turn.user_lifetime:",
		"logging.level:",
	}
	msg := err.Error()
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("error lacks %q", w)
		}
	}
	lines := strings.Split(msg, "\n")
	if len(lines) != len(want) {
		t.Errorf("got %d lines, want %d:\n%s", len(lines), len(want), msg)
	}
	if u, ok := err.(interface{ Unwrap() []error }); !ok || len(u.Unwrap()) != len(want) {
		t.Errorf("error does not unwrap to %d errors", len(want))
	}
	if strings.Contains(msg, "cluster.join[0]") {
		t.Error("valid join entry reported")
	}
}

func TestValidateSingleProblems(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string // substring of the only error; empty means valid
	}{
		{"defaults", func(c *Config) {}, ""},
		{"bootstrap_expect 1", func(c *Config) { c.Cluster.BootstrapExpect = 1 }, ""},
		{"bootstrap_expect 5", func(c *Config) { gossipReady(c); c.Cluster.BootstrapExpect = 5 }, ""},
		{"bootstrap_expect 4", func(c *Config) { gossipReady(c); c.Cluster.BootstrapExpect = 4 }, "cluster.bootstrap_expect"},
		{"bootstrap_expect -1", func(c *Config) { c.Cluster.BootstrapExpect = -1 }, "cluster.bootstrap_expect"},
		{"gossip key 16", func(c *Config) { c.Cluster.GossipKey = "MDEyMzQ1Njc4OWFiY2RlZg==" }, ""},
		{"gossip key 24", func(c *Config) { c.Cluster.GossipKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3" }, ""},
		{"gossip key 32", func(c *Config) { c.Cluster.GossipKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" }, ""},
		{"gossip key 20", func(c *Config) { c.Cluster.GossipKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM=" }, "got 20"},
		{"gossip key not base64", func(c *Config) { c.Cluster.GossipKey = "not base64!" }, "not valid base64"},
		{"gossip listen set", func(c *Config) { c.Cluster.GossipListen = "127.0.0.1:7946" }, ""},
		{"listen on all interfaces", func(c *Config) { c.Node.ClientListen = ":8008"; c.Node.ClientURL = "http://a.example:8008" }, ""},
		{"client_url from bare port", func(c *Config) { c.Node.ClientListen = ":8008"; c.Node.ClientURL = "http://:8008" }, "has no host"},
		{"client_url https with path", func(c *Config) { c.Node.ClientURL = "https://m.example.org/prefix" }, ""},
		{"client_url empty", func(c *Config) { c.Node.ClientURL = "" }, "node.client_url: required"},
		{"listen port name", func(c *Config) { c.Node.ClientListen = "127.0.0.1:http" }, "node.client_listen"},
		{"listen ipv6", func(c *Config) { c.Node.RaftListen = "[::1]:8300"; c.Node.RaftAdvertise = "[::1]:8300" }, ""},
		{"advertise port 0", func(c *Config) { c.Node.RaftAdvertise = "127.0.0.1:0" }, "port 0"},
		{"advertise ipv6 unspecified", func(c *Config) { c.Node.RaftAdvertise = "[::]:8300" }, "unspecified"},
		{"advertise hostname", func(c *Config) { c.Node.RaftAdvertise = "node1.internal:8300" }, ""},
		{"join without port", func(c *Config) { gossipReady(c); c.Cluster.Join = []string{"10.0.0.2"} }, "cluster.join[0]"},
		{"node id with space", func(c *Config) { c.Node.ID = "node 1" }, "node.id"},
		{"election equals heartbeat", func(c *Config) {}, ""},
		{"election below heartbeat", func(c *Config) { c.Cluster.ElectionTimeout = Duration{100 * time.Millisecond} }, "cluster.election_timeout"},
		{"lease above heartbeat", func(c *Config) { c.Cluster.LeaderLeaseTimeout = Duration{time.Second} }, "cluster.leader_lease_timeout"},
		{"commit timeout 1ms", func(c *Config) { c.Cluster.CommitTimeout = Duration{time.Millisecond} }, ""},
		{"commit timeout 1us", func(c *Config) { c.Cluster.CommitTimeout = Duration{time.Microsecond} }, "at least 1ms"},
		{"room version 10", func(c *Config) { c.Rooms.DefaultVersion = "10" }, ""},
		{"room version 11", func(c *Config) { c.Rooms.DefaultVersion = "11" }, ""},
		{"room version 1", func(c *Config) { c.Rooms.DefaultVersion = "1" }, "rooms.default_version"},
		{"negative body limit", func(c *Config) { c.Limits.MaxJSONBodyBytes = -1 }, "limits.max_json_body_bytes"},
		{"stun only, no secret", func(c *Config) { c.TURN.URIs = []string{"stun:stun.example.org"} }, ""},
		{"turn with secret", func(c *Config) { c.TURN.URIs = []string{"turns:t.example.org:5349"}; c.TURN.SharedSecret = "s" }, ""},
		{"turn without host", func(c *Config) { c.TURN.URIs = []string{"turn:"}; c.TURN.SharedSecret = "s" }, "has no host"},
		{"log level trace", func(c *Config) { c.Logging.Level = "trace" }, ""},
		{"log level upper case", func(c *Config) { c.Logging.Level = "INFO" }, "logging.level"},
		{"data_dir blank", func(c *Config) { c.DataDir = "  " }, "data_dir: required"},
		{"bad server name", func(c *Config) { c.ServerName = "exa mple.org" }, "server_name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.mutate(c)
			err := c.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
			if n := strings.Count(err.Error(), "\n") + 1; n != 1 {
				t.Errorf("want one problem, got %d:\n%v", n, err)
			}
		})
	}
}

func TestCheckServerName(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{"example.org", true},
		{"localhost:8008", true},
		{"matrix.example.org:443", true},
		{"1.2.3.4", true},
		{"1.2.3.4:1234", true},
		{"[1234:5678::abcd]", true},
		{"[1234:5678::abcd]:5678", true},
		{"[::1]:8448", true},
		{"my-host", true},
		{"a.b.c.d.e", true},
		{"", false},
		{":8008", false},
		{"example.org:", false},
		{"example.org:0", false},
		{"example.org:65536", false},
		{"example.org:123456", false},
		{"example.org:80a", false},
		{"exa_mple.org", false},
		{"example.org/path", false},
		{"1.2.3.256", false},
		{"::1", false},
		{"[::1", false},
		{"[1.2.3.4]", false},
		{"[::1]x", false},
		{"[fe80::1%eth0]", false},
		{"https://example.org", false},
		{strings.Repeat("a", 256), false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			err := checkServerName(tt.in)
			if (err == nil) != tt.ok {
				t.Errorf("checkServerName(%q) = %v, want ok=%v", tt.in, err, tt.ok)
			}
		})
	}
}

func TestValidateErrorIsJoined(t *testing.T) {
	c := Default()
	c.Logging.Level = "x"
	c.Rooms.DefaultVersion = "x"
	err := c.Validate()
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) || len(joined.Unwrap()) != 2 {
		t.Fatalf("Validate() = %#v, want a join of 2 errors", err)
	}
}

// gossipReady gives c what a multi-node config needs besides the setting
// under test: a gossip address and key, and no single-node bootstrap.
func gossipReady(c *Config) {
	c.Cluster.GossipListen = "127.0.0.1:8301"
	c.Cluster.GossipKey = "MDEyMzQ1Njc4OWFiY2RlZg=="
	c.Cluster.Bootstrap = false
}
