package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestDefault(t *testing.T) {
	c := Default()
	tests := []struct {
		name string
		got  any
		want any
	}{
		{"server_name", c.ServerName, "localhost:8008"},
		{"data_dir", c.DataDir, "./ganglion-data"},
		{"node.id", c.Node.ID, "node1"},
		{"node.client_listen", c.Node.ClientListen, "127.0.0.1:8008"},
		{"node.client_url", c.Node.ClientURL, "http://127.0.0.1:8008"},
		{"node.raft_listen", c.Node.RaftListen, "127.0.0.1:8300"},
		{"node.raft_advertise", c.Node.RaftAdvertise, "127.0.0.1:8300"},
		{"cluster.bootstrap", c.Cluster.Bootstrap, true},
		{"cluster.bootstrap_expect", c.Cluster.BootstrapExpect, 0},
		{"cluster.join", c.Cluster.Join, []string(nil)},
		{"cluster.gossip_listen", c.Cluster.GossipListen, ""},
		{"cluster.gossip_key", c.Cluster.GossipKey, ""},
		{"cluster.heartbeat_timeout", c.Cluster.HeartbeatTimeout.Duration, 500 * time.Millisecond},
		{"cluster.election_timeout", c.Cluster.ElectionTimeout.Duration, 500 * time.Millisecond},
		{"cluster.leader_lease_timeout", c.Cluster.LeaderLeaseTimeout.Duration, 500 * time.Millisecond},
		{"cluster.commit_timeout", c.Cluster.CommitTimeout.Duration, time.Millisecond},
		{"cluster.snapshot_threshold", c.Cluster.SnapshotThreshold, uint64(8192)},
		{"cluster.trailing_logs", c.Cluster.TrailingLogs, uint64(10240)},
		{"registration.enabled", c.Registration.Enabled, false},
		{"registration.shared_secret", c.Registration.SharedSecret, ""},
		{"limits.max_json_body_bytes", c.Limits.MaxJSONBodyBytes, int64(1048576)},
		{"rooms.default_version", c.Rooms.DefaultVersion, "12"},
		{"turn.uris", c.TURN.URIs, []string(nil)},
		{"turn.shared_secret", c.TURN.SharedSecret, ""},
		{"turn.user_lifetime", c.TURN.UserLifetime.Duration, time.Hour},
		{"logging.level", c.Logging.Level, "info"},
	}
	for _, tt := range tests {
		if !reflect.DeepEqual(tt.got, tt.want) {
			t.Errorf("%s = %#v, want %#v", tt.name, tt.got, tt.want)
		}
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Default().Validate() = %v", err)
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		wantErr string // substring; empty means success
		check   func(*Config) string
	}{
		{name: "empty document", yaml: "", check: func(c *Config) string {
			if !reflect.DeepEqual(c, Default()) {
				return "not the defaults"
			}
			return ""
		}},
		{name: "comments only", yaml: "# nothing\n"},
		{name: "unknown top-level key", yaml: "server_nam: example.org\n", wantErr: "field server_nam not found"},
		{name: "unknown nested key", yaml: "node:\n  idd: x\n", wantErr: "field idd not found"},
		{name: "wrong type", yaml: "limits:\n  max_json_body_bytes: lots\n", wantErr: "line 2: cannot unmarshal"},
		{name: "two documents", yaml: "server_name: a.org\n---\nserver_name: b.org\n", wantErr: "more than one document"},
		{name: "bad duration", yaml: "cluster:\n  heartbeat_timeout: 5\n", wantErr: "invalid duration"},
		{name: "all decode errors at once", yaml: "cluster:\n  heartbeat_timeout: 5\n  foo: 1\n  commit_timeout: [1s]\n",
			wantErr: "line 2: invalid duration \"5\" (write e.g. \"500ms\", \"2s\", \"1h\")\n" +
				"  line 3: field foo not found in type config.ClusterConfig\n" +
				"  line 4: duration must be a string"},
		{name: "invalid after decode", yaml: "logging:\n  level: loud\n", wantErr: "logging.level"},
		{name: "derived fields follow listen addresses",
			yaml: "node:\n  client_listen: 127.0.0.1:9008\n  raft_listen: 127.0.0.1:9300\n",
			check: func(c *Config) string {
				if c.Node.ClientURL != "http://127.0.0.1:9008" || c.Node.RaftAdvertise != "127.0.0.1:9300" {
					return "derived = " + c.Node.ClientURL + " " + c.Node.RaftAdvertise
				}
				return ""
			}},
		{name: "explicit derived fields kept",
			yaml: "node:\n  client_listen: 0.0.0.0:8008\n  client_url: https://m.example.org\n  raft_listen: 0.0.0.0:8300\n  raft_advertise: 10.0.0.1:8300\n",
			check: func(c *Config) string {
				if c.Node.ClientURL != "https://m.example.org" || c.Node.RaftAdvertise != "10.0.0.1:8300" {
					return "derived = " + c.Node.ClientURL + " " + c.Node.RaftAdvertise
				}
				return ""
			}},
		{name: "partial section keeps other defaults", yaml: "cluster:\n  bootstrap_expect: 3\n  bootstrap: false\n" +
			"  gossip_listen: 127.0.0.1:8301\n  gossip_key: MDEyMzQ1Njc4OWFiY2RlZg==\n",
			check: func(c *Config) string {
				if c.Cluster.BootstrapExpect != 3 || c.Cluster.Bootstrap || c.Cluster.TrailingLogs != 10240 ||
					c.Cluster.HeartbeatTimeout.Duration != 500*time.Millisecond {
					return "defaults lost"
				}
				return ""
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parse([]byte(tt.yaml), nil)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if tt.check != nil {
				if msg := tt.check(c); msg != "" {
					t.Error(msg)
				}
			}
		})
	}
}

func TestLoad(t *testing.T) {
	for _, name := range []string{envServerName, envDataDir, envNodeID, envClientListen, envRaftListen,
		envRegistrationEnabled, envRegistrationSharedSecret, envLogLevel} {
		if _, ok := os.LookupEnv(name); ok {
			t.Skipf("%s is set in the environment", name)
		}
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "ganglion.yaml")
	if err := os.WriteFile(path, []byte("server_name: example.org\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.ServerName != "example.org" {
		t.Errorf("ServerName = %q", c.ServerName)
	}

	t.Setenv(envLogLevel, "debug")
	if c, err = Load(path); err != nil || c.Logging.Level != "debug" {
		t.Errorf("Load with %s=debug: level %q, err %v", envLogLevel, c.Logging.Level, err)
	}

	if _, err := Load(filepath.Join(dir, "missing.yaml")); err == nil {
		t.Error("Load of a missing file succeeded")
	}
	if err := os.WriteFile(path, []byte("bogus: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("Load error %v does not name the file", err)
	}
}
