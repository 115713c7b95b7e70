package config

// validateGossip checks the discovery settings of a multi-node cluster. A
// node that joins others, or waits for bootstrap_expect > 1 peers, needs
// gossip and the shared key (memberlist encrypts with it, so a node without
// the key cannot join), and must not bootstrap a cluster on its own.
func (c *Config) validateGossip(p *problems) {
	cl := &c.Cluster
	multi := len(cl.Join) > 0 || cl.BootstrapExpect > 1
	if !multi {
		return
	}
	why := "required when cluster.join is set or cluster.bootstrap_expect is more than 1"
	if cl.GossipListen == "" {
		p.add("cluster.gossip_listen", "%s", why)
	}
	if cl.GossipKey == "" {
		p.add("cluster.gossip_key", "%s (a node without the key cannot join)", why)
	}
	// bootstrap starts a one-node cluster on a fresh data dir at once; a
	// joining node that did so would lead a separate cluster of its own.
	if cl.Bootstrap && cl.BootstrapExpect > 1 {
		p.add("cluster.bootstrap", "must be false when cluster.bootstrap_expect is more than 1 (the nodes bootstrap together)")
	} else if cl.Bootstrap && len(cl.Join) > 0 {
		p.add("cluster.bootstrap", "must be false on a node that joins others (only the first node of a new cluster bootstraps, with no join list)")
	}
	if _, port, err := splitHostPort(cl.GossipListen); err == nil && port != 0 &&
		(cl.GossipListen == c.Node.RaftListen || cl.GossipListen == c.Node.ClientListen) {
		p.add("cluster.gossip_listen", "%q is already node.raft_listen or node.client_listen", cl.GossipListen)
	}
}
