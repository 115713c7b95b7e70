// Package cluster runs the Raft node that orders every durable change, and
// (with more than one node) finds peers and forwards writes to the leader.
package cluster

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"

	"github.com/ganglion/ganglion/config"
	"github.com/ganglion/ganglion/fsm"
)

// Node is one member of the Raft group with its FSM and store.
type Node struct {
	cfg       *config.Config
	log       hclog.Logger
	raft      *raft.Raft
	fsm       *fsm.FSM
	store     *fsm.Store
	logStore  *wal.WAL
	transport *raft.NetworkTransport
	mux       *mux
	members   *membership
	lead      leadership
	reads     readRounds
	fwd       *http.Transport // to the leader, over the Raft port
	internal  *http.Server    // what other nodes send over the Raft port
	done      chan struct{}
}

// Open starts the node: store, Raft log, snapshots, transport, and (for a
// fresh first node) the bootstrap configuration.
func Open(cfg *config.Config, log hclog.Logger) (*Node, error) {
	dir := cfg.DataDir
	if err := os.MkdirAll(filepath.Join(dir, "snapshots"), 0o700); err != nil {
		return nil, err
	}
	store, err := fsm.OpenStore(filepath.Join(dir, "state.db"))
	if err != nil {
		return nil, err
	}
	if store.Discarded {
		log.Warn("the store was written before the machine restarted and may have lost writes; rebuilding it from the newest snapshot and the Raft log")
	}
	n := &Node{cfg: cfg, log: log, store: store, done: make(chan struct{})}
	if err := n.start(); err != nil {
		n.Close()
		return nil, err
	}
	if err := n.startMembership(); err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

func (n *Node) start() error {
	cfg := n.cfg
	dir := cfg.DataDir
	snaps, err := raft.NewFileSnapshotStoreWithLogger(filepath.Join(dir, "snapshots"), 2, n.log.Named("snapshots"))
	if err != nil {
		return err
	}
	// A store that lags the newest snapshot (lost or replaced file) is
	// rebuilt from it; otherwise Raft replays only the entries it lacks.
	if err := restoreIfBehind(n.store, snaps, n.log); err != nil {
		return err
	}
	n.fsm = fsm.New(n.store, n.log.Named("fsm"))

	// raft-wal appends with one fsync per batch (bbolt needs two), which is
	// most of a send's latency.
	if err := os.MkdirAll(filepath.Join(dir, "wal"), 0o700); err != nil {
		return err
	}
	n.logStore, err = wal.Open(filepath.Join(dir, "wal"), wal.WithLogger(n.log.Named("wal")))
	if err != nil {
		return fmt.Errorf("open raft log: %w", err)
	}
	addr, err := net.ResolveTCPAddr("tcp", cfg.Node.RaftAdvertise)
	if err != nil {
		return fmt.Errorf("raft_advertise: %w", err)
	}
	n.mux, err = newMux(cfg.Node.RaftListen, addr, n.log.Named("transport"))
	if err != nil {
		return err
	}
	n.fwd = n.newForwardTransport()
	n.transport = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: n.mux.raft, MaxPool: 8, Timeout: 10 * time.Second, Logger: n.log.Named("transport"),
	})
	rc := raftConfig(cfg, n.log)
	leaderCh := make(chan bool, 16)
	rc.NotifyCh = leaderCh
	n.raft, err = raft.NewRaft(rc, n.fsm, n.logStore, n.logStore, snaps, n.transport)
	if err != nil {
		return fmt.Errorf("start raft: %w", err)
	}
	go n.watchLeadership(leaderCh)
	if cfg.Cluster.Bootstrap {
		has, err := raft.HasExistingState(n.logStore, n.logStore, snaps)
		if err != nil {
			return err
		}
		if !has {
			boot := raft.Configuration{Servers: []raft.Server{{
				ID: raft.ServerID(cfg.Node.ID), Address: n.transport.LocalAddr(), Suffrage: raft.Voter,
			}}}
			if err := n.raft.BootstrapCluster(boot).Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
				return fmt.Errorf("bootstrap: %w", err)
			}
		}
	}
	return nil
}

func raftConfig(cfg *config.Config, log hclog.Logger) *raft.Config {
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.Node.ID)
	rc.Logger = log.Named("raft")
	rc.HeartbeatTimeout = cfg.Cluster.HeartbeatTimeout.Duration
	rc.ElectionTimeout = cfg.Cluster.ElectionTimeout.Duration
	rc.LeaderLeaseTimeout = cfg.Cluster.LeaderLeaseTimeout.Duration
	rc.CommitTimeout = cfg.Cluster.CommitTimeout.Duration
	rc.SnapshotThreshold = cfg.Cluster.SnapshotThreshold
	rc.SnapshotInterval = cfg.Cluster.SnapshotInterval.Duration
	rc.TrailingLogs = cfg.Cluster.TrailingLogs
	rc.BatchApplyCh = true
	rc.MaxAppendEntries = 64 // media chunks are 512 KiB: bound what one append carries
	// The store is durable on its own (invariant 6); Raft must not restore a
	// snapshot over it at every start.
	rc.NoSnapshotRestoreOnStart = true
	return rc
}

func restoreIfBehind(store *fsm.Store, snaps raft.SnapshotStore, log hclog.Logger) error {
	list, err := snaps.List()
	if err != nil || len(list) == 0 {
		return err
	}
	latest := list[0]
	if store.AppliedIndex() >= latest.Index {
		return nil
	}
	log.Info("store is behind the newest snapshot; restoring it", "store_index", store.AppliedIndex(), "snapshot_index", latest.Index)
	_, rc, err := snaps.Open(latest.ID)
	if err != nil {
		return err
	}
	return fsm.New(store, log).Restore(rc)
}

// Store is the local read view.
func (n *Node) Store() *fsm.Store { return n.store }

// Notifier wakes readers as entries apply.
func (n *Node) Notifier() *fsm.Notifier { return n.fsm.Notifier() }

// IsLeader reports whether this node leads.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// Raft exposes the underlying Raft instance for status reporting.
func (n *Node) Raft() *raft.Raft { return n.raft }

// WaitLeader polls until some node leads (this one, for a single node).
func (n *Node) WaitLeader(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if addr, _ := n.raft.LeaderWithID(); addr != "" {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return errors.New("no leader elected in time")
}

// Close shuts Raft down and closes the stores.
func (n *Node) Close() error {
	var errs []error
	select {
	case <-n.done:
		return nil
	default:
		close(n.done)
	}
	n.stopMembership()
	if n.internal != nil {
		errs = append(errs, n.internal.Close())
	}
	if n.fwd != nil {
		n.fwd.CloseIdleConnections()
	}
	if n.raft != nil {
		errs = append(errs, n.raft.Shutdown().Error())
	}
	if n.transport != nil {
		errs = append(errs, n.transport.Close())
	}
	if n.logStore != nil {
		errs = append(errs, n.logStore.Close())
	}
	errs = append(errs, n.store.Close())
	return errors.Join(errs...)
}
