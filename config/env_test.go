package config

import (
	"reflect"
	"strings"
	"testing"
)

func envMap(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func TestApplyEnv(t *testing.T) {
	tests := []struct {
		name    string
		start   func() *Config
		env     map[string]string
		check   func(*Config) string
		wantErr []string
	}{
		{
			name:  "nothing set",
			start: Default,
			env:   nil,
			check: func(c *Config) string {
				if !reflect.DeepEqual(c, Default()) {
					return "config changed"
				}
				return ""
			},
		},
		{
			name:  "every variable",
			start: Default,
			env: map[string]string{
				"GANGLION_SERVER_NAME":                "example.org",
				"GANGLION_DATA_DIR":                   "/var/lib/ganglion",
				"GANGLION_NODE_ID":                    "node2",
				"GANGLION_CLIENT_LISTEN":              "0.0.0.0:9008",
				"GANGLION_RAFT_LISTEN":                "10.0.0.2:9300",
				"GANGLION_REGISTRATION_ENABLED":       "true",
				"GANGLION_REGISTRATION_SHARED_SECRET": "hunter2",
				"GANGLION_LOG_LEVEL":                  "debug",
			},
			check: func(c *Config) string {
				got := []string{c.ServerName, c.DataDir, c.Node.ID, c.Node.ClientListen, c.Node.ClientURL,
					c.Node.RaftListen, c.Node.RaftAdvertise, c.Registration.SharedSecret, c.Logging.Level}
				want := []string{"example.org", "/var/lib/ganglion", "node2", "0.0.0.0:9008", "http://0.0.0.0:9008",
					"10.0.0.2:9300", "10.0.0.2:9300", "hunter2", "debug"}
				if strings.Join(got, " ") != strings.Join(want, " ") || !c.Registration.Enabled {
					return "got " + strings.Join(got, " ")
				}
				return ""
			},
		},
		{
			name: "explicit advertised addresses do not follow",
			start: func() *Config {
				c := Default()
				c.Node.ClientURL = "https://m.example.org"
				c.Node.RaftAdvertise = "10.0.0.9:8300"
				return c
			},
			env: map[string]string{"GANGLION_CLIENT_LISTEN": "0.0.0.0:9008", "GANGLION_RAFT_LISTEN": "0.0.0.0:9300"},
			check: func(c *Config) string {
				if c.Node.ClientURL != "https://m.example.org" || c.Node.RaftAdvertise != "10.0.0.9:8300" {
					return "advertised changed to " + c.Node.ClientURL + " " + c.Node.RaftAdvertise
				}
				return ""
			},
		},
		{
			name:  "registration disabled with 0",
			start: func() *Config { c := Default(); c.Registration.Enabled = true; return c },
			env:   map[string]string{"GANGLION_REGISTRATION_ENABLED": "0"},
			check: func(c *Config) string {
				if c.Registration.Enabled {
					return "still enabled"
				}
				return ""
			},
		},
		{
			name:  "empty value overrides",
			start: func() *Config { c := Default(); c.Registration.SharedSecret = "x"; return c },
			env:   map[string]string{"GANGLION_REGISTRATION_SHARED_SECRET": ""},
			check: func(c *Config) string {
				if c.Registration.SharedSecret != "" {
					return "secret not cleared"
				}
				return ""
			},
		},
		{
			name:    "bad bool, others still applied",
			start:   Default,
			env:     map[string]string{"GANGLION_REGISTRATION_ENABLED": "yes please", "GANGLION_NODE_ID": "n7"},
			wantErr: []string{"GANGLION_REGISTRATION_ENABLED", "yes please"},
			check: func(c *Config) string {
				if c.Node.ID != "n7" || c.Registration.Enabled {
					return "unexpected state"
				}
				return ""
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.start()
			err := c.ApplyEnv(envMap(tt.env))
			if len(tt.wantErr) == 0 && err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			for _, w := range tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("err = %v, want it to contain %q", err, w)
				}
			}
			if msg := tt.check(c); msg != "" {
				t.Error(msg)
			}
		})
	}
}

func TestParseAppliesEnvBeforeDerived(t *testing.T) {
	c, err := parse([]byte("node:\n  id: a\n"), envMap(map[string]string{
		"GANGLION_CLIENT_LISTEN": "127.0.0.2:8008",
		"GANGLION_NODE_ID":       "b",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Node.ID != "b" || c.Node.ClientURL != "http://127.0.0.2:8008" || c.Node.RaftAdvertise != "127.0.0.1:8300" {
		t.Errorf("got id %q client_url %q raft_advertise %q", c.Node.ID, c.Node.ClientURL, c.Node.RaftAdvertise)
	}
	if _, err := parse(nil, envMap(map[string]string{"GANGLION_LOG_LEVEL": "chatty"})); err == nil ||
		!strings.Contains(err.Error(), "logging.level") {
		t.Errorf("bad env value not validated: %v", err)
	}
}
