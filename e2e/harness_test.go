// Package e2e drives real ganglion processes over HTTP, as users and
// operators do: the mautrix client as the app, SIGKILL as the crash.
package e2e

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ganglion/ganglion/config"
	"github.com/ganglion/ganglion/internal/proctest"
)

var binPath string

func TestMain(m *testing.M) { proctest.Main(m, "ganglion-e2e-bin", &binPath) }

// node is one single-node ganglion process.
type node struct{ *proctest.Proc }

// newNode writes a single-node config under a fresh directory.
func newNode(t *testing.T) *node {
	t.Helper()
	dir := t.TempDir()
	cfg := config.Default()
	cfg.ServerName = "e2e.test"
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.Node.ClientListen = proctest.FreeAddr(t, "127.0.0.1")
	cfg.Node.ClientURL = "http://" + cfg.Node.ClientListen
	cfg.Node.RaftListen = proctest.FreeAddr(t, "127.0.0.1")
	cfg.Node.RaftAdvertise = cfg.Node.RaftListen
	cfg.Registration.Enabled = true
	cfg.Logging.Level = "warn"
	raw, err := cfg.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	n := &node{&proctest.Proc{T: t, Bin: binPath, ID: "ganglion", CfgPath: filepath.Join(dir, "config.yaml"),
		LogPath: filepath.Join(dir, "ganglion.log"), URL: cfg.Node.ClientURL}}
	if err := os.WriteFile(n.CfgPath, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Cleanup(40) })
	return n
}

// start runs `ganglion serve` and waits until the client API answers.
func (n *node) start() {
	n.T.Helper()
	if err := n.Restart(60 * time.Second); err != nil {
		n.T.Fatal(err)
	}
}
