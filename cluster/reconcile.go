package cluster

import (
	"context"
	"errors"
	"time"

	"github.com/hashicorp/raft"
)

// Raft membership from gossip: forming a new cluster (bootstrap_expect,
// below) and reconciliation. Only the leader turns gossip members into voters.
// It adds alive members that are missing (or whose Raft address changed)
// and never removes anyone: a node that fails or flaps stays a voter until
// an operator removes it for good (RemoveNode).
const (
	reconcileInterval = 500 * time.Millisecond
	reconcileTimeout  = 5 * time.Second
	warnInterval      = 30 * time.Second
)

func (m *membership) reconcileLoop() {
	t := time.NewTicker(reconcileInterval)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
		case <-m.wake:
		}
		m.advertiseFormed()
		// LeaderReady: a new leader has applied everything committed before
		// its term, so a tombstone written under the old leader is seen.
		if m.n.LeaderReady() {
			m.reconcile()
		}
	}
}

// reconcile adds each alive gossip member that the Raft configuration lacks
// as a voter, one configuration change at a time (Raft allows no more).
func (m *membership) reconcile() {
	f := m.n.raft.GetConfiguration()
	if err := m.await(f); err != nil {
		return
	}
	byID := map[raft.ServerID]raft.Server{}
	byAddr := map[raft.ServerAddress]raft.ServerID{}
	for _, s := range f.Configuration().Servers {
		byID[s.ID] = s
		byAddr[s.Address] = s.ID
	}
	self := m.n.cfg.Node.ID
	for _, p := range m.snapshot() {
		if !p.alive || p.name == self || p.meta.RaftAddr == "" {
			continue
		}
		id, addr := raft.ServerID(p.name), raft.ServerAddress(p.meta.RaftAddr)
		s, known := byID[id]
		if known && s.Suffrage == raft.Voter && sameHostPort(string(s.Address), string(addr)) {
			continue
		}
		if m.isRemoved(p.name) {
			m.warnEvery("removed:"+p.name, warnInterval, "a node removed from the cluster is still gossiping; not adding it", "node_id", p.name)
			continue
		}
		if !known && p.meta.Formed {
			// Its log starts from another bootstrap (a joining node left
			// with cluster.bootstrap on, or an old data dir): replicating
			// over it would mix two histories.
			m.warnEvery("formed:"+p.name, warnInterval, "a node with Raft state of its own is not in the configuration; not adding it (empty its data_dir, set cluster.bootstrap: false, and restart it)",
				"node_id", p.name)
			continue
		}
		if other, taken := byAddr[addr]; taken && other != id {
			m.warnEvery("addr:"+p.name, warnInterval, "Raft address already belongs to another server; remove that one first",
				"node_id", p.name, "raft_addr", addr, "current_owner", other)
			continue
		}
		if known {
			m.log.Info("updating voter", "node_id", id, "raft_addr", addr, "was", s.Address, "suffrage", s.Suffrage)
		} else {
			m.log.Info("adding voter", "node_id", id, "raft_addr", addr)
		}
		if err := m.await(m.n.raft.AddVoter(id, addr, 0, reconcileTimeout)); err != nil {
			m.log.Warn("adding voter failed; will retry", "node_id", id, "error", err)
			return
		}
	}
}

// bootstrap_expect: a new cluster forms once gossip shows the expected
// number of fresh nodes configured alike. Every one of them then bootstraps
// Raft with the same configuration (the members sorted by ID), which Raft
// tolerates; whichever wins the first election leads the rest.
const bootstrapPoll = 100 * time.Millisecond

func (m *membership) bootstrapLoop() {
	expect := m.n.cfg.Cluster.BootstrapExpect
	t := time.NewTicker(bootstrapPoll)
	defer t.Stop()
	for {
		if m.hasRaftState() {
			m.log.Debug("raft state exists; no bootstrap needed")
			return
		}
		if conf, ok := m.bootstrapConfiguration(expect); ok {
			err := m.await(m.n.raft.BootstrapCluster(conf))
			switch {
			case err == nil:
				m.log.Info("bootstrapped a new cluster", "servers", len(conf.Servers))
			case errors.Is(err, raft.ErrCantBootstrap):
				m.log.Debug("raft state appeared before bootstrapping")
			case errors.Is(err, errStopping):
			default:
				m.log.Error("bootstrap failed", "error", err)
			}
			return
		}
		select {
		case <-m.stop:
			return
		case <-t.C:
		}
	}
}

// hasRaftState reports whether this node already belongs to a cluster: it
// has log entries or a configuration (restart, or a leader added it).
func (m *membership) hasRaftState() bool {
	if m.n.raft.LastIndex() > 0 {
		return true
	}
	f := m.n.raft.GetConfiguration()
	return m.await(f) == nil && len(f.Configuration().Servers) > 0
}

// bootstrapConfiguration is the configuration to bootstrap with, once
// exactly expect alive members with the same bootstrap_expect (this node
// among them) are known and none of the visible nodes belongs to a cluster
// already. A formed node means the cluster exists: this node waits for its
// leader to add it instead, because a second bootstrap would fork the log.
func (m *membership) bootstrapConfiguration(expect int) (raft.Configuration, bool) {
	self := m.n.cfg.Node.ID
	var servers []raft.Server
	haveSelf := false
	for _, p := range m.snapshot() { // sorted by ID: identical on every node
		if !p.alive {
			continue
		}
		if p.meta.Formed {
			m.warnEvery("formed", warnInterval, "a cluster already exists; waiting for its leader to add this node",
				"member_with_state", p.name)
			return raft.Configuration{}, false
		}
		if p.meta.Expect != expect || p.meta.RaftAddr == "" {
			continue
		}
		haveSelf = haveSelf || p.name == self
		servers = append(servers, raft.Server{
			ID: raft.ServerID(p.name), Address: raft.ServerAddress(p.meta.RaftAddr), Suffrage: raft.Voter,
		})
	}
	if !haveSelf || len(servers) < expect {
		return raft.Configuration{}, false
	}
	if len(servers) > expect {
		// Different nodes could pick different subsets: refuse to guess.
		m.warnEvery("too-many", warnInterval, "more fresh nodes than cluster.bootstrap_expect; not bootstrapping",
			"expect", expect, "seen", len(servers))
		return raft.Configuration{}, false
	}
	return raft.Configuration{Servers: servers}, true
}

// errStopping is returned by await when the node shuts down first.
var errStopping = errors.New("membership stopping")

// await waits for a Raft future unless the node stops first (a future can
// wait forever for a quorum that is gone, and Close must not). The waiting
// goroutine ends when Raft shuts down, which fails every pending future.
func (m *membership) await(f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-m.stop:
		return errStopping
	}
}

// waitFuture waits for f or ctx, whichever comes first.
func waitFuture(ctx context.Context, f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
