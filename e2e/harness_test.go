// Package e2e drives real ganglion processes over HTTP, as users and
// operators do: the mautrix client as the app, SIGKILL as the crash.
package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/ganglion/ganglion/config"
)

var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ganglion-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "ganglion")
	build := exec.Command("go", "build", "-o", binPath, "../cmd/ganglion")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building ganglion:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// node is one ganglion process.
type node struct {
	t       *testing.T
	cfgPath string
	logPath string
	url     string
	cmd     *exec.Cmd
	done    chan struct{}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// newNode writes a single-node config under a fresh directory.
func newNode(t *testing.T) *node {
	t.Helper()
	dir := t.TempDir()
	cfg := config.Default()
	cfg.ServerName = "e2e.test"
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.Node.ClientListen = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cfg.Node.ClientURL = "http://" + cfg.Node.ClientListen
	cfg.Node.RaftListen = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cfg.Node.RaftAdvertise = cfg.Node.RaftListen
	cfg.Registration.Enabled = true
	cfg.Logging.Level = "warn"
	raw, err := cfg.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	n := &node{t: t, cfgPath: filepath.Join(dir, "config.yaml"), logPath: filepath.Join(dir, "ganglion.log"),
		url: cfg.Node.ClientURL}
	if err := os.WriteFile(n.cfgPath, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.kill)
	return n
}

// start runs `ganglion serve` and waits until the client API answers.
func (n *node) start() {
	n.t.Helper()
	logFile, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		n.t.Fatal(err)
	}
	n.cmd = exec.Command(binPath, "serve", "--config", n.cfgPath)
	n.cmd.Stdout, n.cmd.Stderr = logFile, logFile
	if err := n.cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
	n.done = make(chan struct{})
	go func() { _ = n.cmd.Wait(); logFile.Close(); close(n.done) }()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		resp, err := http.Get(n.url + "/_matrix/client/versions")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		select {
		case <-n.done:
			log, _ := os.ReadFile(n.logPath)
			n.t.Fatalf("ganglion exited during start:\n%s", log)
		case <-ctx.Done():
			n.t.Fatal("ganglion did not answer within 60s")
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// kill sends SIGKILL (a crash, not a clean stop) and waits for the exit.
func (n *node) kill() {
	if n.cmd == nil || n.cmd.Process == nil {
		return
	}
	select {
	case <-n.done:
		return
	default:
	}
	_ = n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.done
}

// stop sends SIGTERM and waits (bounded) for a clean exit.
func (n *node) stop() {
	n.t.Helper()
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.done:
	case <-time.After(20 * time.Second):
		n.t.Error("ganglion did not stop within 20s of SIGTERM")
		n.kill()
	}
}
