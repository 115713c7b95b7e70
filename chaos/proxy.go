// Package chaos holds process-level fault tests of a three-node Ganglion
// cluster: SIGKILL, SIGSTOP and network cuts under client load, with the
// histories checked by porcupine.
//
// This file is the one non-test part: a loopback TCP proxy that sits in front
// of every node's Raft address. Nodes dial each other from their own loopback
// IP, so the proxy knows both ends of every connection and can cut any link.
// Gossip is not proxied.
package chaos

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Network fronts each node's Raft listener with a proxy and decides, per
// (source node, destination node) pair, whether traffic flows.
type Network struct {
	mu      sync.Mutex
	byIP    map[string]string // source IP -> node ID
	cut     map[[2]string]bool
	proxies []*proxy
	conns   map[*link]struct{}
	closed  bool
	// unknownSources counts connections from an IP that is no node's: a
	// node dialling from the wrong address would escape every cut.
	unknownSources atomic.Int64
}

// link is one proxied connection (or one held in the blackhole).
type link struct {
	from, to string
	client   net.Conn
	upstream net.Conn // nil while held
	held     bool
}

type proxy struct {
	node   string
	target string
	ln     net.Listener
}

// NewNetwork returns a network with no nodes and no cuts.
func NewNetwork() *Network {
	return &Network{byIP: map[string]string{}, cut: map[[2]string]bool{}, conns: map[*link]struct{}{}}
}

// AddNode registers node id, whose outgoing connections come from srcIP and
// whose Raft listener is target, and starts its proxy on 127.0.0.1. The
// returned address is what the node advertises as its Raft address.
func (n *Network) AddNode(id, srcIP, target string) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	p := &proxy{node: id, target: target, ln: ln}
	n.mu.Lock()
	n.byIP[srcIP] = id
	n.proxies = append(n.proxies, p)
	n.mu.Unlock()
	go n.accept(p)
	return ln.Addr().String(), nil
}

// UnknownSources reports how many connections came from no node's IP.
func (n *Network) UnknownSources() int64 { return n.unknownSources.Load() }

// Isolate cuts node id off from every other node, both directions. Open
// connections on the cut links are closed; new ones are accepted and then
// hang, as they would behind a dead switch.
func (n *Network) Isolate(id string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for other := range n.nodeSet() {
		if other != id {
			n.cut[[2]string{id, other}] = true
			n.cut[[2]string{other, id}] = true
		}
	}
	n.cut[[2]string{"", id}] = true // an unknown source cannot reach it either
	for l := range n.conns {
		if n.cut[[2]string{l.from, l.to}] {
			n.dropLocked(l)
		}
	}
}

// Heal restores every link and closes the blackholed connections, so their
// dialers notice and reconnect.
func (n *Network) Heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cut = map[[2]string]bool{}
	for l := range n.conns {
		if l.held {
			n.dropLocked(l)
		}
	}
}

// Close stops every proxy and closes every connection.
func (n *Network) Close() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.closed = true
	for _, p := range n.proxies {
		p.ln.Close()
	}
	for l := range n.conns {
		n.dropLocked(l)
	}
}

func (n *Network) nodeSet() map[string]bool {
	set := map[string]bool{}
	for _, id := range n.byIP {
		set[id] = true
	}
	return set
}

func (n *Network) dropLocked(l *link) {
	l.client.Close()
	if l.upstream != nil {
		l.upstream.Close()
	}
	delete(n.conns, l)
}

func (n *Network) accept(p *proxy) {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // listener closed
		}
		go n.serve(p, c)
	}
}

func (n *Network) serve(p *proxy, c net.Conn) {
	srcIP := c.RemoteAddr().(*net.TCPAddr).IP.String()
	n.mu.Lock()
	from, known := n.byIP[srcIP]
	if !known {
		n.unknownSources.Add(1)
	}
	l := &link{from: from, to: p.node, client: c}
	if n.closed {
		n.mu.Unlock()
		c.Close()
		return
	}
	n.conns[l] = struct{}{}
	if n.cut[[2]string{from, p.node}] {
		l.held = true // blackhole: keep it open, forward nothing
		n.mu.Unlock()
		return
	}
	n.mu.Unlock()

	up, err := net.DialTimeout("tcp", p.target, 2*time.Second)
	n.mu.Lock()
	if _, live := n.conns[l]; !live || err != nil {
		// Cut while dialling, or the node is down: the dialer sees a reset.
		if err == nil {
			up.Close()
		}
		if live {
			n.dropLocked(l)
		}
		n.mu.Unlock()
		return
	}
	l.upstream = up
	n.mu.Unlock()

	done := make(chan struct{}, 2)
	pump := func(dst, src net.Conn) {
		if _, err := io.Copy(dst, src); err == nil {
			// A clean EOF: pass the half-close on.
			if tc, ok := dst.(*net.TCPConn); ok {
				_ = tc.CloseWrite()
			}
		} else {
			// A reset or a cut: end both directions.
			src.Close()
			dst.Close()
		}
		done <- struct{}{}
	}
	go pump(up, c)
	go pump(c, up)
	<-done
	<-done
	n.mu.Lock()
	if _, live := n.conns[l]; live {
		n.dropLocked(l)
	}
	n.mu.Unlock()
}
