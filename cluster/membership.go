package cluster

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/memberlist"
)

// Gossip timings tuned for a LAN or loopback: a dead node is suspected
// within about a second and declared dead a couple of seconds later.
const (
	gossipInterval   = 100 * time.Millisecond
	probeInterval    = 500 * time.Millisecond
	probeTimeout     = 250 * time.Millisecond
	pushPullInterval = 5 * time.Second
	gossipTCPTimeout = 2 * time.Second
	leaveTimeout     = time.Second
	// stopWait bounds how long Close waits for the membership loops, which
	// may be waiting on a Raft future that a lost quorum never completes.
	stopWait = 3 * time.Second
)

// nodeMeta is what each node gossips about itself (memberlist caps it at
// 512 bytes).
type nodeMeta struct {
	ID        string `json:"id"`
	ClientURL string `json:"client_url"`
	RaftAddr  string `json:"raft_addr"`
	// Expect is the node's cluster.bootstrap_expect; Formed says the node
	// already has Raft state, so no one may bootstrap a new cluster with it.
	Expect int  `json:"expect,omitempty"`
	Formed bool `json:"formed,omitempty"`
}

// peer is the gossip view of one node (this one included).
type peer struct {
	name  string
	addr  string // gossip host:port
	meta  nodeMeta
	alive bool
}

// membership is the memberlist side of the node: discovery, liveness,
// metadata (client URL, Raft address), voter reconciliation on the leader
// and gossip of ephemeral data.
type membership struct {
	n     *Node
	log   hclog.Logger
	ml    *memberlist.Memberlist
	queue *memberlist.TransmitLimitedQueue

	mu        sync.RWMutex
	peers     map[string]*peer // by memberlist name, which is the node ID
	handlers  []func(msg []byte)
	formed    atomic.Bool // what this node last advertised
	lastWarns map[string]time.Time

	inbox    chan []byte   // received ephemeral messages, delivered in order
	wake     chan struct{} // nudges reconciliation when gossip changes
	stop     chan struct{}
	wg       sync.WaitGroup
	stopOnce sync.Once
}

// startMembership joins the gossip pool when cluster.gossip_listen is set.
func (n *Node) startMembership() error {
	if n.cfg.Cluster.GossipListen == "" {
		return nil
	}
	m := &membership{
		n:         n,
		log:       n.log.Named("gossip"),
		peers:     map[string]*peer{},
		lastWarns: map[string]time.Time{},
		inbox:     make(chan []byte, 1024),
		wake:      make(chan struct{}, 1),
		stop:      make(chan struct{}),
	}
	m.queue = &memberlist.TransmitLimitedQueue{NumNodes: m.numAlive, RetransmitMult: 3}
	mc, err := m.memberlistConfig()
	if err != nil {
		return err
	}
	m.formed.Store(n.raft.LastIndex() > 0)
	if m.ml, err = memberlist.Create(mc); err != nil {
		return fmt.Errorf("gossip: %w", err)
	}
	n.members = m
	m.log.Info("gossip started", "addr", m.ml.LocalNode().Address(), "encrypted", mc.EncryptionEnabled())
	m.goLoop(m.deliverLoop)
	m.goLoop(m.joinLoop)
	m.goLoop(m.reconcileLoop)
	if n.cfg.Cluster.BootstrapExpect > 0 {
		m.goLoop(m.bootstrapLoop)
	}
	return nil
}

func (m *membership) goLoop(fn func()) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		fn()
	}()
}

func (m *membership) memberlistConfig() (*memberlist.Config, error) {
	cfg := m.n.cfg
	host, portStr, err := net.SplitHostPort(cfg.Cluster.GossipListen)
	if err != nil {
		return nil, fmt.Errorf("cluster.gossip_listen: %w", err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("cluster.gossip_listen: bad port %q", portStr)
	}
	c := memberlist.DefaultLANConfig()
	c.Name = cfg.Node.ID
	c.BindAddr, c.BindPort, c.AdvertisePort = "0.0.0.0", port, port
	if host != "" {
		// memberlist wants IPs; an unspecified bind address lets it pick
		// a private address to advertise.
		ip := net.ParseIP(host)
		if ip == nil {
			a, err := net.ResolveIPAddr("ip", host)
			if err != nil {
				return nil, fmt.Errorf("cluster.gossip_listen: %w", err)
			}
			ip = a.IP
		}
		c.BindAddr = ip.String()
		if !ip.IsUnspecified() {
			c.AdvertiseAddr = ip.String()
		}
	}
	c.GossipInterval = gossipInterval
	c.ProbeInterval = probeInterval
	c.ProbeTimeout = probeTimeout
	c.PushPullInterval = pushPullInterval
	c.GossipToTheDeadTime = 10 * time.Second
	c.DeadNodeReclaimTime = 5 * time.Second // a node restarted on a new address
	c.TCPTimeout = gossipTCPTimeout
	if cfg.Cluster.GossipKey != "" {
		if c.SecretKey, err = base64.StdEncoding.DecodeString(cfg.Cluster.GossipKey); err != nil {
			return nil, fmt.Errorf("cluster.gossip_key: %w", err)
		}
	}
	c.Logger = m.log.StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true})
	c.Delegate = m
	c.Events = m
	return c, nil
}

// stopMembership leaves the gossip pool (graceful shutdown) and stops its loops.
func (n *Node) stopMembership() {
	m := n.members
	if m == nil {
		return
	}
	m.stopOnce.Do(func() {
		close(m.stop)
		if err := m.ml.Leave(leaveTimeout); err != nil {
			m.log.Warn("leaving the gossip pool", "error", err)
		}
		if err := m.ml.Shutdown(); err != nil {
			m.log.Warn("gossip shutdown", "error", err)
		}
		done := make(chan struct{})
		go func() { m.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(stopWait):
			m.log.Warn("membership loops still busy at shutdown")
		}
	})
}

// memberView reports what gossip knows of a Raft server: its client URL and
// whether it is alive. ok is false when gossip does not know the node.
func (n *Node) memberView(nodeID string) (clientURL string, alive bool, ok bool) {
	if nodeID == n.cfg.Node.ID {
		return n.cfg.Node.ClientURL, true, true
	}
	if n.members == nil {
		return "", false, false
	}
	p, ok := n.members.peer(nodeID)
	if !ok {
		return "", false, false
	}
	return p.meta.ClientURL, p.alive, true
}

// GossipAddr is the host:port other nodes join this one at ("" without gossip).
func (n *Node) GossipAddr() string {
	if n.members == nil {
		return ""
	}
	return n.members.ml.LocalNode().Address()
}

func (m *membership) peer(name string) (peer, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	p, ok := m.peers[name]
	if !ok {
		return peer{}, false
	}
	return *p, true
}

// snapshot lists the known peers (this node included) in name order.
func (m *membership) snapshot() []peer {
	m.mu.RLock()
	out := make([]peer, 0, len(m.peers))
	for _, p := range m.peers {
		out = append(out, *p)
	}
	m.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

func (m *membership) numAlive() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	alive := 0
	for _, p := range m.peers {
		if p.alive {
			alive++
		}
	}
	return alive
}

// NotifyJoin, NotifyLeave and NotifyUpdate (memberlist.EventDelegate) run
// under memberlist's lock: record and return, never call back into it.
func (m *membership) NotifyJoin(node *memberlist.Node)   { m.observe(node, true) }
func (m *membership) NotifyUpdate(node *memberlist.Node) { m.observe(node, true) }
func (m *membership) NotifyLeave(node *memberlist.Node)  { m.observe(node, false) }

func (m *membership) observe(node *memberlist.Node, alive bool) {
	p := &peer{name: node.Name, addr: node.Address(), alive: alive}
	if err := json.Unmarshal(node.Meta, &p.meta); err != nil || p.meta.ID != node.Name {
		p.meta = nodeMeta{ID: node.Name}
	}
	m.mu.Lock()
	if old, ok := m.peers[node.Name]; ok && !alive && len(node.Meta) == 0 {
		p.meta = old.meta
	}
	m.peers[node.Name] = p
	m.mu.Unlock()
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// NodeMeta (memberlist.Delegate) is this node's metadata.
func (m *membership) NodeMeta(limit int) []byte {
	cfg := m.n.cfg
	meta := nodeMeta{ID: cfg.Node.ID, ClientURL: cfg.Node.ClientURL, RaftAddr: cfg.Node.RaftAdvertise,
		Expect: cfg.Cluster.BootstrapExpect, Formed: m.formed.Load()}
	b, _ := json.Marshal(meta)
	if len(b) > limit {
		meta.ClientURL = "" // too long to gossip; the Raft address matters more
		b, _ = json.Marshal(meta)
		m.log.Error("node metadata too long for gossip; leaving out client_url", "limit", limit)
	}
	return b
}

// LocalState and MergeRemoteState (memberlist.Delegate): everything this
// layer shares is in the node metadata or in broadcasts.
func (m *membership) LocalState(join bool) []byte            { return nil }
func (m *membership) MergeRemoteState(buf []byte, join bool) {}

// advertiseFormed re-gossips the metadata once this node has Raft state.
func (m *membership) advertiseFormed() {
	formed := m.n.raft.LastIndex() > 0
	if formed == m.formed.Load() {
		return
	}
	m.formed.Store(formed)
	if err := m.ml.UpdateNode(leaveTimeout); err != nil {
		m.log.Debug("updating node metadata", "error", err)
	}
}

// warnEvery logs a warning at most once per interval for the same key, for
// conditions a loop sees on every tick.
func (m *membership) warnEvery(key string, every time.Duration, msg string, args ...any) {
	m.mu.Lock()
	last, seen := m.lastWarns[key]
	now := time.Now()
	if seen && now.Sub(last) < every {
		m.mu.Unlock()
		return
	}
	m.lastWarns[key] = now
	m.mu.Unlock()
	m.log.Warn(msg, args...)
}
