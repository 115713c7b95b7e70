package cluster

import (
	"bytes"
	"net"
	"time"

	"github.com/hashicorp/memberlist"
)

// Ephemeral data (typing, presence heartbeats) travels by gossip, never
// through the Raft log (DESIGN.md invariant 1).
const (
	// maxGossipMsg is the largest message that rides a gossip packet
	// (memberlist packs broadcasts into 1400-byte UDP packets, less headers
	// and encryption); larger ones are sent to each peer over TCP.
	maxGossipMsg = 1000
	// maxQueuedBroadcasts bounds the queue when peers are slow or gone: old
	// typing and presence news is worthless.
	maxQueuedBroadcasts = 512
)

// BroadcastEphemeral sends msg to every other node within a gossip round or
// two. It is not delivered to this node (the caller applies it locally),
// may arrive more than once, and may be lost: handlers must be idempotent
// and the data must expire on its own. A queued message is replaced only by
// an identical one; use BroadcastEphemeralKey when a newer message must
// replace an older one. Without gossip (a single node) it does nothing.
func (n *Node) BroadcastEphemeral(msg []byte) {
	n.BroadcastEphemeralKey(string(msg), msg)
}

// BroadcastEphemeralKey is BroadcastEphemeral where a message replaces any
// still-queued message with the same key, so that a retransmission of older
// news (typing started) cannot arrive after newer news (typing stopped).
// Keys such as "typing|room|user" or "presence|user" fit.
func (n *Node) BroadcastEphemeralKey(key string, msg []byte) {
	m := n.members
	if m == nil || len(msg) == 0 {
		return
	}
	if m.numAlive() < 2 {
		return // no one to tell; queued news would be stale when someone joins
	}
	msg = bytes.Clone(msg)
	if len(msg) > maxGossipMsg {
		m.sendDirect(msg)
		return
	}
	m.queue.QueueBroadcast(&ephemeralBroadcast{key: key, msg: msg})
	if m.queue.NumQueued() > maxQueuedBroadcasts {
		m.queue.Prune(maxQueuedBroadcasts)
	}
}

// OnEphemeral registers fn to receive every ephemeral message other nodes
// broadcast. fn runs on one delivery goroutine, in arrival order, and must
// not block for long. Without gossip nothing ever arrives.
func (n *Node) OnEphemeral(fn func(msg []byte)) {
	m := n.members
	if m == nil || fn == nil {
		return
	}
	m.mu.Lock()
	m.handlers = append(m.handlers, fn)
	m.mu.Unlock()
}

// sendDirect sends a message too large for a gossip packet to each alive
// peer over TCP, in the background.
func (m *membership) sendDirect(msg []byte) {
	self := m.n.cfg.Node.ID
	var targets []*memberlist.Node
	for _, p := range m.snapshot() {
		if p.alive && p.name != self {
			targets = append(targets, m.nodeAt(p))
		}
	}
	// Not tracked by m.wg: it may start while Close waits, and memberlist
	// refuses sends once shut down.
	go func() {
		for _, t := range targets {
			select {
			case <-m.stop:
				return
			default:
			}
			if err := m.ml.SendReliable(t, msg); err != nil {
				m.log.Debug("sending ephemeral message", "to", t.Name, "error", err)
			}
		}
	}()
}

// nodeAt rebuilds a memberlist.Node (name and address are all SendReliable
// uses) from our copy, instead of touching memberlist's own records.
func (m *membership) nodeAt(p peer) *memberlist.Node {
	node := &memberlist.Node{Name: p.name}
	if ua, err := net.ResolveUDPAddr("udp", p.addr); err == nil {
		node.Addr, node.Port = ua.IP, uint16(ua.Port)
	}
	return node
}

// GetBroadcasts (memberlist.Delegate) hands queued messages to a gossip packet.
func (m *membership) GetBroadcasts(overhead, limit int) [][]byte {
	return m.queue.GetBroadcasts(overhead, limit)
}

// NotifyMsg (memberlist.Delegate) receives a message; memberlist reuses
// the buffer and must not be blocked, so it is copied and queued.
func (m *membership) NotifyMsg(b []byte) {
	if len(b) == 0 {
		return
	}
	select {
	case m.inbox <- bytes.Clone(b):
	default:
		m.warnEvery("inbox-full", 10*time.Second, "ephemeral inbox full; dropping messages")
	}
}

func (m *membership) deliverLoop() {
	for {
		select {
		case <-m.stop:
			return
		case msg := <-m.inbox:
			m.mu.RLock()
			handlers := m.handlers
			m.mu.RUnlock()
			for _, fn := range handlers {
				fn(msg)
			}
		}
	}
}

// ephemeralBroadcast is one queued message. Only a message with the same
// key replaces it; other messages never invalidate each other.
type ephemeralBroadcast struct {
	key string
	msg []byte
}

func (b *ephemeralBroadcast) Name() string    { return "eph:" + b.key }
func (b *ephemeralBroadcast) Message() []byte { return b.msg }
func (b *ephemeralBroadcast) Finished()       {}

func (b *ephemeralBroadcast) Invalidates(other memberlist.Broadcast) bool {
	o, ok := other.(*ephemeralBroadcast)
	return ok && o.key == b.key
}

var _ memberlist.NamedBroadcast = (*ephemeralBroadcast)(nil)
