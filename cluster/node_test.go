package cluster

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/ganglion/ganglion/config"
	"github.com/ganglion/ganglion/fsm"
)

func testConfig(t *testing.T) *config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Node.RaftListen = l.Addr().String()
	cfg.Node.RaftAdvertise = cfg.Node.RaftListen
	l.Close()
	return cfg
}

func openLeader(t *testing.T, cfg *config.Config) *Node {
	t.Helper()
	n, err := Open(cfg, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !n.IsLeader() {
		if time.Now().After(deadline) {
			n.Close()
			t.Fatal("no leadership within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return n
}

func proposeForgets(t *testing.T, n *Node, count int) {
	t.Helper()
	for i := 0; i < count; i++ {
		_, _, err := n.Propose(context.Background(), fsm.OpRoomForget, fsm.ForgetCmd{UserID: "@u:x", RoomID: "!r" + string(rune('a'+i%26)) + ":x"})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// waitApplied polls until the store reaches index.
func waitApplied(t *testing.T, n *Node, index uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if !n.Notifier().WaitApplied(ctx, index) {
		t.Fatalf("store stuck at %d, want %d", n.Store().AppliedIndex(), index)
	}
}

func TestRestartReplaysOnlyWhatTheStoreLacks(t *testing.T) {
	cfg := testConfig(t)
	n := openLeader(t, cfg)
	proposeForgets(t, n, 40)
	last := n.Store().AppliedIndex()
	n.Close()

	n = openLeader(t, cfg)
	defer n.Close()
	waitApplied(t, n, last)
	start, applied, _ := n.fsm.Counters()
	if start != last {
		t.Fatalf("store reopened at %d, want %d (it must not be rebuilt)", start, last)
	}
	// Only the new leader's own entries (no-op, configuration) apply.
	if applied > 3 {
		t.Fatalf("restart applied %d entries again", applied)
	}
}

func TestStoreFromAnotherBootIsRebuiltFromTheLog(t *testing.T) {
	if currentBoot() == "" {
		t.Skip("no boot id on this system: the store syncs every commit instead")
	}
	cfg := testConfig(t)
	n := openLeader(t, cfg)
	proposeForgets(t, n, 30)
	if err := n.raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	proposeForgets(t, n, 30)
	last := n.Store().AppliedIndex()
	var forgotten bool
	_ = n.Store().View(func(r *fsm.ReadTx) error { forgotten = r.Forgotten("@u:x", "!rd:x"); return nil })
	n.Close()
	if !forgotten {
		t.Fatal("setup: forget not applied")
	}
	// Pretend the machine rebooted since the store was written.
	marker := filepath.Join(cfg.DataDir, "state.db.boot")
	if err := os.WriteFile(marker, []byte("another-boot\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	n = openLeader(t, cfg)
	defer n.Close()
	if !n.Store().Discarded {
		t.Fatal("a store from another boot was trusted")
	}
	waitApplied(t, n, last)
	_ = n.Store().View(func(r *fsm.ReadTx) error { forgotten = r.Forgotten("@u:x", "!rd:x"); return nil })
	if !forgotten {
		t.Fatal("rebuilt store lacks applied state")
	}
}

func currentBoot() string {
	b, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	return string(b)
}
