package cluster

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/ganglion/ganglion/config"
)

// Keys for the in-process cluster tests (base64 of 16 bytes).
const (
	testGossipKey  = "MDEyMzQ1Njc4OWFiY2RlZg==" // "0123456789abcdef"
	wrongGossipKey = "ZmVkY2JhOTg3NjU0MzIxMA==" // "fedcba9876543210"
)

// freeGossipAddr finds a loopback port free for both TCP and UDP, as
// memberlist binds both.
func freeGossipAddr(t *testing.T) string {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		u, err := net.ListenPacket("udp", addr)
		l.Close()
		if err == nil {
			u.Close()
			return addr
		}
	}
	t.Fatal("no free gossip port")
	return ""
}

// gossipConfig is a fast-timing node config with gossip on a fixed loopback
// port (fixed so that a restarted node comes back at the same address).
func gossipConfig(t *testing.T, id, key string, join ...string) *config.Config {
	t.Helper()
	cfg := testConfig(t)
	cfg.Node.ID = id
	cfg.Node.ClientURL = "http://" + id + ".test:8008"
	cfg.Cluster.Bootstrap = false
	cfg.Cluster.GossipListen = freeGossipAddr(t)
	cfg.Cluster.GossipKey = key
	cfg.Cluster.Join = join
	// Fast, but with room for a loaded 2-core machine: at 100 ms leaders
	// stepped down mid-test when other test binaries hogged the CPU.
	cfg.Cluster.HeartbeatTimeout = config.Duration{Duration: 200 * time.Millisecond}
	cfg.Cluster.ElectionTimeout = config.Duration{Duration: 200 * time.Millisecond}
	cfg.Cluster.LeaderLeaseTimeout = config.Duration{Duration: 100 * time.Millisecond}
	return cfg
}

// testCluster owns the nodes a test opens and closes them at the end.
type testCluster struct {
	t     *testing.T
	mu    sync.Mutex
	nodes map[string]*Node
}

func newTestCluster(t *testing.T) *testCluster {
	c := &testCluster{t: t, nodes: map[string]*Node{}}
	t.Cleanup(func() {
		for id := range c.nodes {
			c.close(id)
		}
	})
	return c
}

func testLogger(name string) hclog.Logger {
	if os.Getenv("CLUSTER_TEST_LOG") == "" {
		return hclog.NewNullLogger()
	}
	return hclog.New(&hclog.LoggerOptions{Name: name, Level: hclog.Debug, Output: os.Stderr})
}

func (c *testCluster) open(cfg *config.Config) *Node {
	c.t.Helper()
	n, err := Open(cfg, testLogger(cfg.Node.ID))
	if err != nil {
		c.t.Fatalf("open %s: %v", cfg.Node.ID, err)
	}
	c.mu.Lock()
	c.nodes[cfg.Node.ID] = n
	c.mu.Unlock()
	return n
}

func (c *testCluster) close(id string) {
	c.mu.Lock()
	n := c.nodes[id]
	delete(c.nodes, id)
	c.mu.Unlock()
	if n != nil {
		n.Close()
	}
}

// leader waits for one of the open nodes to lead and returns it.
func (c *testCluster) leader() *Node {
	c.t.Helper()
	var found *Node
	waitFor(c.t, 10*time.Second, "a leader", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, n := range c.nodes {
			if n.IsLeader() {
				found = n
				return true
			}
		}
		return false
	})
	return found
}

// remove removes id through whichever node leads, retrying while the
// leadership moves (fast test timeouts make that possible under load).
func (c *testCluster) remove(id string) {
	c.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := c.leader().RemoveNode(context.Background(), id)
		if err == nil {
			return
		}
		if (err != ErrNotLeader && err != ErrUnavailable) || time.Now().After(deadline) {
			c.t.Fatalf("remove %s: %v", id, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitFor polls cond until it holds or fails the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// holdsFor checks cond on every poll for the whole window: for things that
// must never happen (a removed node re-added, a keyless node joining).
func holdsFor(t *testing.T, window time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(window)
	for time.Now().Before(deadline) {
		if !cond() {
			t.Fatalf("%s stopped holding", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// voters is the node's Raft configuration: voter ID -> address.
func voters(n *Node) map[string]string {
	out := map[string]string{}
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return out
	}
	for _, s := range f.Configuration().Servers {
		if s.Suffrage == raft.Voter {
			out[string(s.ID)] = string(s.Address)
		}
	}
	return out
}

// hasVoters reports whether n's configuration has exactly these voters.
func hasVoters(n *Node, ids ...string) bool {
	v := voters(n)
	if len(v) != len(ids) {
		return false
	}
	for _, id := range ids {
		if _, ok := v[id]; !ok {
			return false
		}
	}
	return true
}

func nodeIDs(k int) []string {
	out := make([]string, k)
	for i := range out {
		out[i] = "node" + strconv.Itoa(i+1)
	}
	return out
}

func describe(n *Node) string {
	return fmt.Sprintf("%s voters=%v state=%s", n.cfg.Node.ID, voters(n), n.raft.State())
}
