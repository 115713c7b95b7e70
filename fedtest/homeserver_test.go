// Package fedtest runs two Ganglion homeservers with different server
// names as real processes on loopback and checks, through the Client-Server
// API only, that they federate: invites, joins, messages both ways, typing,
// receipts, backfill, a server that goes away and comes back, and a leader
// killed mid-exchange.
package fedtest

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ganglion/ganglion/config"
	"github.com/ganglion/ganglion/internal/proctest"
)

// binPath is the ganglion binary every test starts, built once.
var binPath string

func TestMain(m *testing.M) {
	// FEDTEST_BIN runs a prebuilt binary instead (e.g. of another checkout).
	if binPath = os.Getenv("FEDTEST_BIN"); binPath != "" {
		os.Exit(m.Run())
	}
	proctest.Main(m, "ganglion-fedtest-bin", &binPath)
}

// keepLog copies the whole log of a failed test's process into
// FEDTEST_LOGS, if set, since t.TempDir removes it.
func keepLog(p *proctest.Proc) {
	dir := os.Getenv("FEDTEST_LOGS")
	if dir == "" || !p.T.Failed() {
		return
	}
	dst := filepath.Join(dir, p.T.Name(), strings.ReplaceAll(p.ID, "/", "-")+".log")
	if raw, err := os.ReadFile(p.LogPath); err == nil && os.MkdirAll(filepath.Dir(dst), 0o700) == nil {
		_ = os.WriteFile(dst, raw, 0o600)
	}
}

// homeserver is one Ganglion server name: a single node or a three-node
// cluster, each node its own `ganglion serve` process. Other servers reach
// it at node 1's federation port, which its server name carries.
type homeserver struct {
	t     *testing.T
	label string // "A" or "B", for messages
	name  string // server name, "localhost:<node 1's federation port>"
	nodes []*proctest.Proc
}

// newHomeserver writes the configs of a homeserver of size nodes (1 or 3)
// without starting it.
func newHomeserver(t *testing.T, label string, size int) *homeserver {
	t.Helper()
	// Made before the cleanup below is registered, so that the cleanup
	// (which prints log tails) runs before the directory is removed.
	base := t.TempDir()
	h := &homeserver{t: t, label: label}
	t.Cleanup(func() {
		for _, p := range h.nodes {
			p.Cleanup(25)
			keepLog(p)
		}
	})
	fedPorts := make([]int, size)
	gossip := make([]string, size)
	for i := range fedPorts {
		fedPorts[i] = proctest.FreePort(t, "127.0.0.1")
		gossip[i] = proctest.FreeAddr(t, "127.0.0.1")
	}
	h.name = fmt.Sprintf("localhost:%d", fedPorts[0])
	gossipKey := make([]byte, 32)
	if _, err := rand.Read(gossipKey); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < size; i++ {
		id := fmt.Sprintf("node%d", i+1)
		dir := filepath.Join(base, id)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		cfg := config.Default()
		cfg.ServerName = h.name
		cfg.DataDir = filepath.Join(dir, "data")
		cfg.Node.ID = id
		cfg.Node.ClientListen = proctest.FreeAddr(t, "127.0.0.1")
		cfg.Node.ClientURL = "http://" + cfg.Node.ClientListen
		cfg.Node.RaftListen = proctest.FreeAddr(t, "127.0.0.1")
		cfg.Node.RaftAdvertise = cfg.Node.RaftListen
		cfg.Registration.Enabled = true
		cfg.Logging.Level = "info"
		cfg.Federation.Listen = fmt.Sprintf("127.0.0.1:%d", fedPorts[i])
		cfg.Federation.DevCertificate = true
		cfg.Federation.InsecureSkipVerifyLoopback = true
		cfg.Federation.AllowPrivateAddresses = true
		if size > 1 {
			// As `ganglion dev` does: every node waits for the others, then
			// all bootstrap alike.
			cfg.Cluster.Bootstrap = false
			cfg.Cluster.BootstrapExpect = size
			cfg.Cluster.GossipKey = base64.StdEncoding.EncodeToString(gossipKey)
			cfg.Cluster.GossipListen = gossip[i]
			for j := range gossip {
				if j != i {
					cfg.Cluster.Join = append(cfg.Cluster.Join, gossip[j])
				}
			}
		}
		raw, err := cfg.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		p := &proctest.Proc{T: t, Bin: binPath, ID: label + "/" + id, CfgPath: filepath.Join(dir, "config.yaml"),
			LogPath: filepath.Join(dir, "ganglion.log"), URL: cfg.Node.ClientURL}
		if err := os.WriteFile(p.CfgPath, raw, 0o600); err != nil {
			t.Fatal(err)
		}
		h.nodes = append(h.nodes, p)
	}
	return h
}

// start launches every node and waits until all of them answer and agree
// on a leader.
func (h *homeserver) start() {
	h.t.Helper()
	begin := time.Now()
	for _, p := range h.nodes {
		if err := p.Start(); err != nil {
			h.t.Fatal(err)
		}
	}
	h.waitUp(h.all(), 60*time.Second)
	h.t.Logf("%s (%s, %d node(s)) up in %v", h.label, h.name, len(h.nodes), time.Since(begin).Round(time.Millisecond))
}

// restart starts node i again on its config and data and waits for it.
func (h *homeserver) restart(i int) {
	h.t.Helper()
	if err := h.nodes[i].Start(); err != nil {
		h.t.Fatal(err)
	}
	h.waitUp([]int{i}, 60*time.Second)
}

// waitUp waits until each listed node answers and knows the leader the
// others listed know.
func (h *homeserver) waitUp(idx []int, timeout time.Duration) {
	h.t.Helper()
	ps := make([]*proctest.Proc, len(idx))
	for k, i := range idx {
		ps[k] = h.nodes[i]
	}
	if err := proctest.ReadyAll(ps, timeout); err != nil {
		h.t.Fatal(err)
	}
	if _, err := h.waitLeader(idx, timeout); err != nil {
		h.t.Fatal(err)
	}
}

func (h *homeserver) all() []int {
	out := make([]int, len(h.nodes))
	for i := range out {
		out[i] = i
	}
	return out
}

// urls are the client API base URLs of every node, node 1 first.
func (h *homeserver) urls() []string {
	out := make([]string, len(h.nodes))
	for i, p := range h.nodes {
		out[i] = p.URL
	}
	return out
}

func (h *homeserver) status(i int) (proctest.NodeStatus, error) {
	return proctest.Status(h.nodes[i].URL)
}

// waitLeader polls idx until one of them leads and all agree on it.
func (h *homeserver) waitLeader(idx []int, timeout time.Duration) (int, error) {
	leader := -1
	var last []string
	ok := proctest.Poll(timeout, 20*time.Millisecond, func() bool {
		leader, last = -1, last[:0]
		ids := map[string]bool{}
		for _, i := range idx {
			st, err := h.status(i)
			if err != nil {
				last = append(last, fmt.Sprintf("%s: %v", h.nodes[i].ID, err))
				return false
			}
			last = append(last, fmt.Sprintf("%s: %s leader=%q applied=%d", h.nodes[i].ID, st.State, st.LeaderID, st.AppliedIndex))
			ids[st.LeaderID] = true
			if st.State == "leader" {
				leader = i
			}
		}
		return leader >= 0 && len(ids) == 1
	})
	if !ok {
		return -1, fmt.Errorf("%s: no agreed leader among %v within %v: %s", h.label, idx, timeout, strings.Join(last, "; "))
	}
	return leader, nil
}
