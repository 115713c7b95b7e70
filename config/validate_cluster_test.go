package config

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateGossipRules(t *testing.T) {
	const key = "AAAAAAAAAAAAAAAAAAAAAA=="
	cases := []struct {
		name string
		edit func(c *Config)
		want []string // substrings of the problems, in order; none means valid
	}{
		{"single node needs no gossip", func(c *Config) {}, nil},
		{"join without gossip", func(c *Config) {
			c.Cluster.Bootstrap = false
			c.Cluster.Join = []string{"10.0.0.2:7946"}
		}, []string{"cluster.gossip_listen: required", "cluster.gossip_key: required"}},
		{"bootstrap_expect 3 without key", func(c *Config) {
			c.Cluster.Bootstrap = false
			c.Cluster.BootstrapExpect = 3
			c.Cluster.GossipListen = "127.0.0.1:7946"
		}, []string{"cluster.gossip_key: required"}},
		{"bootstrap with bootstrap_expect", func(c *Config) {
			c.Cluster.BootstrapExpect = 3
			c.Cluster.GossipListen = "127.0.0.1:7946"
			c.Cluster.GossipKey = key
		}, []string{"cluster.bootstrap: must be false when cluster.bootstrap_expect"}},
		{"bootstrap on a joining node", func(c *Config) {
			c.Cluster.Join = []string{"10.0.0.2:7946"}
			c.Cluster.GossipListen = "127.0.0.1:7946"
			c.Cluster.GossipKey = key
		}, []string{"cluster.bootstrap: must be false on a node that joins"}},
		{"bootstrap_expect 1 is a single node", func(c *Config) { c.Cluster.BootstrapExpect = 1 }, nil},
		{"complete", func(c *Config) {
			c.Cluster.Bootstrap = false
			c.Cluster.Join = []string{"10.0.0.2:7946"}
			c.Cluster.GossipListen = "0.0.0.0:7946"
			c.Cluster.GossipKey = key
		}, nil},
		{"gossip on the raft port", func(c *Config) {
			c.Cluster.Bootstrap = false
			c.Cluster.Join = []string{"10.0.0.2:7946"}
			c.Cluster.GossipListen = c.Node.RaftListen
			c.Cluster.GossipKey = key
		}, []string{"cluster.gossip_listen: \"127.0.0.1:8300\" is already"}},
		{"port 0 may repeat", func(c *Config) {
			c.Node.RaftListen = "127.0.0.1:0"
			c.Cluster.Bootstrap = false
			c.Cluster.Join = []string{"10.0.0.2:7946"}
			c.Cluster.GossipListen = "127.0.0.1:0"
			c.Cluster.GossipKey = key
		}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.edit(c)
			var p problems
			c.validateGossip(&p)
			if len(p) != len(tc.want) {
				t.Fatalf("got %d problems, want %d: %v", len(p), len(tc.want), errors.Join(p...))
			}
			for i, w := range tc.want {
				if !strings.Contains(p[i].Error(), w) {
					t.Errorf("problem %d = %q, want it to contain %q", i, p[i], w)
				}
			}
		})
	}
}
