package cluster

import (
	"net"
	"time"

	"github.com/ganglion/ganglion/fsm"
)

// Joining: a node may start before its seeds, so it retries with a bounded
// backoff until one answers. Afterwards it keeps knocking on the addresses
// of members it has lost (memberlist forgets dead nodes and never dials
// them again), so a healed partition or a restarted node rejoins the pool.
const (
	joinBackoffMin = 100 * time.Millisecond
	joinBackoffMax = 5 * time.Second
	rejoinInterval = 2 * time.Second
)

func (m *membership) joinLoop() {
	seeds := m.seeds()
	backoff := joinBackoffMin
	for len(seeds) > 0 {
		n, err := m.ml.Join(seeds)
		if n > 0 {
			m.log.Info("joined the gossip pool", "contacted", n)
			break
		}
		m.log.Debug("no seed answered yet; retrying", "seeds", seeds, "in", backoff, "error", err)
		if !m.sleep(backoff) {
			return
		}
		backoff = min(backoff*2, joinBackoffMax)
	}
	for m.sleep(rejoinInterval) {
		if addrs := m.lostAddrs(seeds); len(addrs) > 0 {
			if n, _ := m.ml.Join(addrs); n > 0 {
				m.log.Info("rejoined lost gossip members", "contacted", n)
			}
		}
	}
}

// sleep waits d and reports false if the node is stopping.
func (m *membership) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-m.stop:
		return false
	case <-t.C:
		return true
	}
}

// seeds is cluster.join without this node's own gossip address (the same
// list may be given to every node).
func (m *membership) seeds() []string {
	self := m.ml.LocalNode().Address()
	selfListen := m.n.cfg.Cluster.GossipListen
	var out []string
	for _, s := range m.n.cfg.Cluster.Join {
		if s == self || s == selfListen || sameHostPort(s, self) {
			continue
		}
		out = append(out, s)
	}
	return out
}

// lostAddrs lists the gossip addresses of members that are not alive (and
// were not removed for good); the seeds too when no other member is alive.
func (m *membership) lostAddrs(seeds []string) []string {
	self := m.n.cfg.Node.ID
	var lost []string
	others := 0
	for _, p := range m.snapshot() {
		switch {
		case p.name == self:
		case p.alive:
			others++
		case !m.isRemoved(p.name):
			lost = append(lost, p.addr)
		}
	}
	if others == 0 {
		lost = append(lost, seeds...)
	}
	return lost
}

// isRemoved reports whether the node was removed from the cluster for good.
func (m *membership) isRemoved(nodeID string) bool { return m.n.isNodeRemoved(nodeID) }

func (n *Node) isNodeRemoved(nodeID string) bool {
	removed := false
	_ = n.store.View(func(rt *fsm.ReadTx) error {
		removed = rt.IsNodeRemoved(nodeID)
		return nil
	})
	return removed
}

// sameHostPort compares two host:port strings after resolving the hosts.
func sameHostPort(a, b string) bool {
	if a == b {
		return true
	}
	ta, errA := net.ResolveTCPAddr("tcp", a)
	tb, errB := net.ResolveTCPAddr("tcp", b)
	return errA == nil && errB == nil && ta.Port == tb.Port && ta.IP.Equal(tb.IP)
}
