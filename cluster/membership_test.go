package cluster

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/ganglion/ganglion/config"
	"github.com/ganglion/ganglion/fsm"
)

func TestBootstrapExpectFormsThreeVoters(t *testing.T) {
	c := newTestCluster(t)
	ids := nodeIDs(3)
	cfgs := make([]*config.Config, 3)
	var seeds []string
	for i, id := range ids {
		cfgs[i] = gossipConfig(t, id, testGossipKey)
		cfgs[i].Cluster.BootstrapExpect = 3
		seeds = append(seeds, cfgs[i].Cluster.GossipListen)
	}
	nodes := make([]*Node, 3)
	for i, cfg := range cfgs {
		cfg.Cluster.Join = seeds // the same list everywhere, this node's own address included
		nodes[i] = c.open(cfg)
	}
	leader := c.leader()
	for _, n := range nodes {
		waitFor(t, 10*time.Second, "three voters on "+n.cfg.Node.ID, func() bool { return hasVoters(n, ids...) })
	}
	_, idx, err := leader.Propose(context.Background(), fsm.OpRoomForget, fsm.ForgetCmd{UserID: "@u:x", RoomID: "!r:x"})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		waitApplied(t, n, idx)
	}
}

// TestJoinReconcileAndRemove walks a node's life: it starts before its seed,
// is added as a voter by the leader, stays a voter while down, is removed
// for good and is not added back when it returns. A node with the wrong key
// never gets in.
func TestJoinReconcileAndRemove(t *testing.T) {
	c := newTestCluster(t)
	cfg1 := gossipConfig(t, "node1", testGossipKey)
	cfg1.Cluster.Bootstrap = true
	seed := cfg1.Cluster.GossipListen
	cfg2 := gossipConfig(t, "node2", testGossipKey, seed)
	cfg3 := gossipConfig(t, "node3", testGossipKey, seed)

	n2 := c.open(cfg2) // before its seed exists
	n1 := c.open(cfg1)
	c.open(cfg3)
	if c.leader() != n1 {
		t.Fatal("node1, the only bootstrapped voter, should lead")
	}
	for _, n := range []*Node{n1, n2} {
		waitFor(t, 10*time.Second, "three voters on "+n.cfg.Node.ID, func() bool { return hasVoters(n, "node1", "node2", "node3") })
	}

	t.Run("status shows gossip metadata", func(t *testing.T) {
		waitFor(t, 5*time.Second, "every member alive in node2's status", func() bool {
			st := n2.Status()
			if len(st.Members) != 3 || st.LeaderClientURL != cfg1.Node.ClientURL {
				return false
			}
			for _, m := range st.Members {
				if !m.Alive || !m.Voter || m.ClientURL != "http://"+m.NodeID+".test:8008" {
					return false
				}
			}
			return true
		})
	})

	t.Run("wrong key or own cluster never added", func(t *testing.T) {
		n4 := c.open(gossipConfig(t, "node4", wrongGossipKey, seed))
		defer c.close("node4")
		// node5 bootstrapped a cluster of its own: its log cannot be merged.
		cfg5 := gossipConfig(t, "node5", testGossipKey, seed)
		cfg5.Cluster.Bootstrap = true
		c.open(cfg5)
		defer c.close("node5")
		waitFor(t, 5*time.Second, "node1 to see node5 with Raft state", func() bool {
			p, ok := n1.members.peer("node5")
			return ok && p.alive && p.meta.Formed
		})
		holdsFor(t, 2*time.Second, "node4 and node5 kept out", func() bool {
			_, _, known := n1.memberView("node4")
			return !known && n4.members.numAlive() == 1 && hasVoters(n1, "node1", "node2", "node3")
		})
	})

	// A follower goes down: it stays a voter.
	c.close("node3")
	waitFor(t, 10*time.Second, "node1 to see node3 gone", func() bool {
		_, alive, known := n1.memberView("node3")
		return known && !alive
	})
	holdsFor(t, 1500*time.Millisecond, "node3 still a voter while down", func() bool {
		return hasVoters(n1, "node1", "node2", "node3") && hasVoters(n2, "node1", "node2", "node3")
	})

	// Removed for good: out of the configuration, tombstoned everywhere.
	c.remove("node3")
	for _, n := range []*Node{n1, n2} {
		waitFor(t, 5*time.Second, n.cfg.Node.ID+" to apply the removal", func() bool {
			return hasVoters(n, "node1", "node2") && n.members.isRemoved("node3")
		})
	}
	c.remove("node3") // again: a no-op, not an error

	// It comes back and gossips again, but is not re-added.
	c.open(cfg3)
	waitFor(t, 10*time.Second, "node1 to see node3 alive again", func() bool {
		_, alive, _ := n1.memberView("node3")
		return alive
	})
	holdsFor(t, 1500*time.Millisecond, "node3 not re-added", func() bool {
		return hasVoters(n1, "node1", "node2") && hasVoters(n2, "node1", "node2")
	})
}

func TestEphemeralBroadcastReachesEveryNode(t *testing.T) {
	c := newTestCluster(t)
	cfg1 := gossipConfig(t, "node1", testGossipKey)
	cfg1.Cluster.Bootstrap = true
	n1 := c.open(cfg1)
	n2 := c.open(gossipConfig(t, "node2", testGossipKey, cfg1.Cluster.GossipListen))
	n3 := c.open(gossipConfig(t, "node3", testGossipKey, cfg1.Cluster.GossipListen))
	for _, n := range []*Node{n1, n2, n3} {
		waitFor(t, 10*time.Second, "gossip to see three nodes", func() bool { return n.members.numAlive() == 3 })
	}
	got := map[string]chan []byte{}
	for _, n := range []*Node{n1, n3} {
		ch := make(chan []byte, 16)
		got[n.cfg.Node.ID] = ch
		n.OnEphemeral(func(msg []byte) { ch <- msg })
	}
	small := []byte(`{"type":"m.typing","room_id":"!r:x","user_ids":["@a:x"]}`)
	large := []byte(`{"type":"m.presence","status_msg":"` + strings.Repeat("x", 3000) + `"}`)
	for _, msg := range [][]byte{small, large} {
		n2.BroadcastEphemeral(msg)
		for id, ch := range got {
			waitMsg(t, id, ch, msg)
		}
	}

	// Without gossip there is no one to tell: a no-op, not a panic.
	single := openLeader(t, testConfig(t))
	defer single.Close()
	single.BroadcastEphemeral(small)
	single.OnEphemeral(func([]byte) {})
}

// waitMsg waits for want on ch, skipping duplicates of earlier messages
// (gossip may deliver a message more than once).
func waitMsg(t *testing.T, id string, ch <-chan []byte, want []byte) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case msg := <-ch:
			if bytes.Equal(msg, want) {
				return
			}
		case <-timeout:
			t.Fatalf("%s did not receive a %d-byte message", id, len(want))
		}
	}
}

func TestEphemeralQueueReplacesOnlySameKey(t *testing.T) {
	q := &memberlist.TransmitLimitedQueue{NumNodes: func() int { return 3 }, RetransmitMult: 3}
	q.QueueBroadcast(&ephemeralBroadcast{key: "typing|!r|@a", msg: []byte("a typing")})
	q.QueueBroadcast(&ephemeralBroadcast{key: "typing|!r|@b", msg: []byte("b typing")})
	q.QueueBroadcast(&ephemeralBroadcast{key: "typing|!r|@a", msg: []byte("a stopped")})
	var got []string
	for _, b := range q.GetBroadcasts(0, 1400) {
		got = append(got, string(b))
	}
	slices.Sort(got)
	if want := []string{"a stopped", "b typing"}; !slices.Equal(got, want) {
		t.Fatalf("queued %q, want %q", got, want)
	}
}
