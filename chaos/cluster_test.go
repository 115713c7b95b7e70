package chaos

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ganglion/ganglion/config"
	"github.com/ganglion/ganglion/internal/proctest"
)

const serverName = "chaos.test"

// binPath is the ganglion binary every test starts, built once.
var binPath string

func TestMain(m *testing.M) { proctest.Main(m, "ganglion-chaos-bin", &binPath) }

// nodeIPs are the loopback addresses nodes listen on for Raft and gossip
// and dial from, so the proxy can tell them apart.
var nodeIPs = []string{"127.0.0.11", "127.0.0.12", "127.0.0.13"}

// cluster is three ganglion processes forming one homeserver, with every
// Raft address behind the test's proxy.
type cluster struct {
	t     *testing.T
	net   *Network
	nodes []*proctest.Proc
}

type clusterOptions struct {
	// bootstrapExpect forms the cluster with cluster.bootstrap_expect: 3 on
	// every node instead of cluster.bootstrap on node1.
	bootstrapExpect bool
}

// newCluster writes the three configs and starts the proxies, not the nodes.
func newCluster(t *testing.T, opts clusterOptions) *cluster {
	t.Helper()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	// Made before the cleanup below is registered, so that cleanup (which
	// prints log tails) runs before the directory is removed.
	base := t.TempDir()
	c := &cluster{t: t, net: NewNetwork()}
	t.Cleanup(func() {
		for _, p := range c.nodes {
			p.Cleanup(40)
		}
		c.net.Close()
	})
	gossip := make([]string, len(nodeIPs))
	for i, ip := range nodeIPs {
		gossip[i] = proctest.FreeAddr(t, ip)
	}
	for i, ip := range nodeIPs {
		id := fmt.Sprintf("node%d", i+1)
		dir := filepath.Join(base, id)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		raftListen := proctest.FreeAddr(t, ip)
		advertise, err := c.net.AddNode(id, ip, raftListen)
		if err != nil {
			t.Fatal(err)
		}
		cfg := config.Default()
		cfg.ServerName = serverName
		cfg.DataDir = filepath.Join(dir, "data")
		cfg.Node.ID = id
		cfg.Node.ClientListen = proctest.FreeAddr(t, "127.0.0.1")
		cfg.Node.ClientURL = "http://" + cfg.Node.ClientListen
		cfg.Node.RaftListen = raftListen
		cfg.Node.RaftAdvertise = advertise
		cfg.Cluster.GossipListen = gossip[i]
		cfg.Cluster.GossipKey = base64.StdEncoding.EncodeToString(key)
		cfg.Cluster.Join = []string{gossip[0]}
		if i == 0 {
			cfg.Cluster.Join = nil
		}
		cfg.Cluster.Bootstrap = i == 0 && !opts.bootstrapExpect
		if opts.bootstrapExpect {
			cfg.Cluster.BootstrapExpect = 3
			cfg.Cluster.Join = []string{gossip[0], gossip[1], gossip[2]}
		}
		cfg.Registration.Enabled = true
		cfg.Logging.Level = "info"
		raw, err := cfg.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		p := &proctest.Proc{T: t, Bin: binPath, ID: id, CfgPath: filepath.Join(dir, "config.yaml"),
			LogPath: filepath.Join(dir, "ganglion.log"), URL: cfg.Node.ClientURL}
		if err := os.WriteFile(p.CfgPath, raw, 0o600); err != nil {
			t.Fatal(err)
		}
		c.nodes = append(c.nodes, p)
	}
	return c
}

// start launches every node and waits until all three are voters that
// agree on one leader.
func (c *cluster) start() {
	c.t.Helper()
	begin := time.Now()
	for _, p := range c.nodes {
		if err := p.Start(); err != nil {
			c.t.Fatal(err)
		}
	}
	c.waitReady(c.all(), 30*time.Second)
	if !proctest.Poll(30*time.Second, 50*time.Millisecond, c.formed) {
		c.t.Fatalf("the cluster did not form within 30s: %v", c.describe())
	}
	c.t.Logf("cluster formed in %v", time.Since(begin).Round(time.Millisecond))
}

func (c *cluster) all() []int { return []int{0, 1, 2} }

// waitReady waits, in parallel, until each listed node answers.
func (c *cluster) waitReady(idx []int, timeout time.Duration) {
	c.t.Helper()
	ps := make([]*proctest.Proc, len(idx))
	for k, i := range idx {
		ps[k] = c.nodes[i]
	}
	if err := proctest.ReadyAll(ps, timeout); err != nil {
		c.t.Fatal(err)
	}
}

// formed reports whether every node sees all three voters and the same leader.
func (c *cluster) formed() bool {
	leader := ""
	for i := range c.nodes {
		st, err := c.status(i)
		if err != nil || st.LeaderID == "" || (leader != "" && st.LeaderID != leader) {
			return false
		}
		leader = st.LeaderID
		voters := 0
		for _, m := range st.Members {
			if m.Voter {
				voters++
			}
		}
		if voters != len(c.nodes) {
			return false
		}
	}
	return true
}

var errNoLeader = errors.New("no leader")

func (c *cluster) status(i int) (proctest.NodeStatus, error) {
	return proctest.Status(c.nodes[i].URL)
}

// describe summarizes every node's status for failure messages.
func (c *cluster) describe() string {
	out := ""
	for i := range c.nodes {
		st, err := c.status(i)
		if err != nil {
			out += fmt.Sprintf("\n  %s: %v", c.nodes[i].ID, err)
			continue
		}
		out += fmt.Sprintf("\n  %s: %s leader=%q applied=%d commit=%d last=%d members=%d",
			st.NodeID, st.State, st.LeaderID, st.AppliedIndex, st.CommitIndex, st.LastLogIndex, len(st.Members))
	}
	return out
}

// leader returns the index of the node that reports itself leader among
// idx, and whether the others listed agree.
func (c *cluster) leader(idx []int) (int, bool) {
	found, agree := -1, true
	ids := map[string]bool{}
	for _, i := range idx {
		st, err := c.status(i)
		if err != nil {
			agree = false
			continue
		}
		ids[st.LeaderID] = true
		if st.State == "leader" {
			found = i
		}
	}
	return found, agree && len(ids) == 1
}

// waitLeader polls idx until one of them leads and all of them agree,
// returning the leader and how long it took.
func (c *cluster) waitLeader(idx []int, timeout time.Duration) (int, time.Duration, error) {
	begin := time.Now()
	got := -1
	ok := proctest.Poll(timeout, 10*time.Millisecond, func() bool {
		l, agree := c.leader(idx)
		got = l
		return l >= 0 && agree
	})
	if !ok {
		return got, time.Since(begin), fmt.Errorf("%w among %v after %v:%s", errNoLeader, idx, timeout, c.describe())
	}
	return got, time.Since(begin), nil
}

// waitConverged waits until every node reports the same applied, commit
// and last log index, twice in a row, and returns the applied index.
//
// It does not require applied == commit: the Raft no-op a new leader
// appends and Barrier entries never reach the FSM, so a cluster that has
// not written since its last election shows applied < commit
// (TestIdleReadsAfterLeaderChange covers that).
func (c *cluster) waitConverged(timeout time.Duration) uint64 {
	c.t.Helper()
	var last [3]uint64
	stable := 0
	ok := proctest.Poll(timeout, 50*time.Millisecond, func() bool {
		var cur [3]uint64
		for i := range c.nodes {
			st, err := c.status(i)
			if err != nil {
				stable = 0
				return false
			}
			now := [3]uint64{st.AppliedIndex, st.CommitIndex, st.LastLogIndex}
			if i > 0 && now != cur {
				stable = 0
				return false
			}
			cur = now
		}
		if cur == last {
			stable++
		} else {
			last, stable = cur, 1
		}
		return stable >= 2
	})
	if !ok {
		c.t.Fatalf("nodes did not converge within %v:%s", timeout, c.describe())
	}
	return last[0]
}

func (c *cluster) urls() []string {
	out := make([]string, len(c.nodes))
	for i, p := range c.nodes {
		out[i] = p.URL
	}
	return out
}
