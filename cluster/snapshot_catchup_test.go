package cluster

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ganglion/ganglion/config"
	"github.com/ganglion/ganglion/fsm"
)

// A follower that was down while the leader compacted its log past what the
// follower has catches up by installing a snapshot, then the log, and ends
// with a store identical to the leader's.
func TestLaggingFollowerCatchesUpFromASnapshot(t *testing.T) {
	c := newTestCluster(t)
	var cfgs []*config.Config
	for i := 1; i <= 3; i++ {
		cfg := gossipConfig(t, fmt.Sprintf("node%d", i), testGossipKey)
		cfg.Cluster.BootstrapExpect = 3
		cfg.Cluster.SnapshotThreshold = 64
		cfg.Cluster.TrailingLogs = 16
		cfgs = append(cfgs, cfg)
	}
	for _, cfg := range cfgs {
		for _, other := range cfgs {
			if other != cfg {
				cfg.Cluster.Join = append(cfg.Cluster.Join, other.Cluster.GossipListen)
			}
		}
		c.open(cfg)
	}
	leader := c.leader()
	waitFor(t, 10*time.Second, "a ready leader", leader.LeaderReady)
	var lagging *config.Config
	for _, cfg := range cfgs {
		if cfg.Node.ID != leader.cfg.Node.ID {
			lagging = cfg
			break
		}
	}
	c.close(lagging.Node.ID)

	// Enough writes that the log the follower needs is compacted away.
	for i := range 300 {
		_, _, err := leader.Propose(context.Background(), fsm.OpRoomForget,
			fsm.ForgetCmd{UserID: fmt.Sprintf("@u%d:x", i), RoomID: "!r:x"})
		if err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	if err := leader.raft.Snapshot().Error(); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	first, err := leader.logStore.FirstIndex()
	if err != nil {
		t.Fatal(err)
	}
	back := c.open(lagging)
	if back.store.AppliedIndex() >= first {
		t.Fatalf("the follower already has index %d; the log starts at %d: no snapshot needed", back.store.AppliedIndex(), first)
	}
	target := leader.store.AppliedIndex()
	waitFor(t, 30*time.Second, "the follower to catch up", func() bool { return back.store.AppliedIndex() >= target })
	want, err := leader.store.StateHash()
	if err != nil {
		t.Fatal(err)
	}
	// The leader may apply more (no-ops); compare once both stand still.
	waitFor(t, 10*time.Second, "identical stores", func() bool {
		got, err := back.store.StateHash()
		want, _ = leader.store.StateHash()
		return err == nil && got == want && back.store.AppliedIndex() == leader.store.AppliedIndex()
	})
}
