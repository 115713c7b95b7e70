// Package fedtest runs two Ganglion homeservers with different server
// names as real processes on loopback and checks, through the Client-Server
// API only, that they federate: invites, joins, messages both ways, typing,
// receipts, backfill, a server that goes away and comes back, and a leader
// killed mid-exchange.
package fedtest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binPath is the ganglion binary every test starts, built once.
var binPath string

func TestMain(m *testing.M) {
	// FEDTEST_BIN runs a prebuilt binary instead (e.g. of another checkout).
	if binPath = os.Getenv("FEDTEST_BIN"); binPath != "" {
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "ganglion-fedtest-bin")
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

// proc is one `ganglion serve` process, restartable on the same config and
// data directory. Only the PIDs it started are ever signalled.
type proc struct {
	t       *testing.T
	id      string // e.g. "A/node1"
	cfgPath string
	logPath string
	url     string // client API base URL

	mu     sync.Mutex
	cmd    *exec.Cmd
	done   chan struct{}
	starts int
}

// start launches the process without waiting for it to answer.
func (p *proc) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil && !closed(p.done) {
		return fmt.Errorf("%s: start while running", p.id)
	}
	logFile, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	p.starts++
	fmt.Fprintf(logFile, "=== fedtest: start %d of %s at %s\n", p.starts, p.id, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(binPath, "serve", "--config", p.cfgPath)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); logFile.Close(); close(done) }()
	p.cmd, p.done = cmd, done
	return nil
}

func closed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// ready polls the client API until it answers 200, the process exits or
// the timeout passes.
func (p *proc) ready(timeout time.Duration) error {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.url+"/_matrix/client/versions", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-done:
			return fmt.Errorf("%s exited during start:\n%s", p.id, tail(p.logPath, 30))
		case <-ctx.Done():
			return fmt.Errorf("%s did not answer within %v", p.id, timeout)
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// running reports whether the process is up.
func (p *proc) running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd != nil && !closed(p.done)
}

// kill sends SIGKILL, a crash rather than a clean stop, and waits for the exit.
func (p *proc) kill() { p.signalAndWait(syscall.SIGKILL, 0) }

// stop sends SIGTERM and waits up to 20 s before killing.
func (p *proc) stop() { p.signalAndWait(syscall.SIGTERM, 20*time.Second) }

func (p *proc) signalAndWait(sig syscall.Signal, grace time.Duration) {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil || closed(done) {
		return
	}
	_ = cmd.Process.Signal(sig)
	if grace <= 0 {
		<-done
		return
	}
	select {
	case <-done:
	case <-time.After(grace):
		p.t.Errorf("%s did not stop within %v of %v", p.id, grace, sig)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-done
	}
}

// cleanup kills the process and, if the test failed, prints its log's tail.
func (p *proc) cleanup() {
	p.kill()
	if !p.t.Failed() {
		return
	}
	p.t.Logf("--- last lines of %s's log (%s):\n%s", p.id, p.logPath, tail(p.logPath, 25))
	// FEDTEST_LOGS keeps whole logs of failed tests, which t.TempDir removes.
	if dir := os.Getenv("FEDTEST_LOGS"); dir != "" {
		dst := filepath.Join(dir, p.t.Name(), strings.ReplaceAll(p.id, "/", "-")+".log")
		if raw, err := os.ReadFile(p.logPath); err == nil && os.MkdirAll(filepath.Dir(dst), 0o700) == nil {
			_ = os.WriteFile(dst, raw, 0o600)
		}
	}
}

// tail returns the last n lines of the file at path.
func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// poll calls cond every interval until it returns true or timeout passes.
func poll(timeout, interval time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(interval)
	}
}

var (
	portsMu sync.Mutex
	ports   = map[int]bool{} // handed out in this run, never handed out twice
)

// freePort returns a loopback TCP port that was free a moment ago, whose
// UDP twin is free too (memberlist gossips on both).
func freePort(t *testing.T) int {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for i := 0; i < 50; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		l.Close()
		if err == nil {
			u.Close()
			if !ports[port] {
				ports[port] = true
				return port
			}
		}
	}
	t.Fatal("no free port")
	return 0
}
