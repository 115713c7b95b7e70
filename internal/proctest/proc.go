// Package proctest runs real `ganglion serve` processes for the
// process-level test suites (e2e, chaos, fedtest): it builds the binary
// once, starts, signals and restarts processes with per-process log files,
// and talks to them over a small Matrix client that reports every
// failure's exact endpoint, status and body.
package proctest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Proc is one `ganglion serve --config CfgPath` process, restartable on
// the same config and data directory. Only PIDs it started are ever
// signalled, so a test never touches another test's (or a user's) server.
type Proc struct {
	T       *testing.T
	Bin     string // the ganglion binary
	ID      string // e.g. "node1" or "A/node1", for messages
	CfgPath string
	LogPath string // stdout and stderr of every start, appended
	URL     string // client API base URL

	mu     sync.Mutex
	cmd    *exec.Cmd
	done   chan struct{} // closed when the current process has exited
	paused bool
	starts int
}

// Start launches the process without waiting for it to answer.
func (p *Proc) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil && !closed(p.done) {
		return fmt.Errorf("%s: start while running", p.ID)
	}
	logFile, err := os.OpenFile(p.LogPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	p.starts++
	// Marks each start in the shared log, so a restart's lines are findable.
	fmt.Fprintf(logFile, "=== proctest: start %d of %s at %s\n", p.starts, p.ID, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(p.Bin, "serve", "--config", p.CfgPath)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); logFile.Close(); close(done) }()
	p.cmd, p.done, p.paused = cmd, done, false
	return nil
}

// Restart starts the process again and waits until it answers.
func (p *Proc) Restart(timeout time.Duration) error {
	if err := p.Start(); err != nil {
		return err
	}
	return p.Ready(timeout)
}

func closed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// Ready polls the client API until it answers 200, the process exits or
// the timeout passes.
func (p *Proc) Ready(timeout time.Duration) error {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.URL+"/_matrix/client/versions", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-done:
			return fmt.Errorf("%s exited during start:\n%s", p.ID, Tail(p.LogPath, 30))
		case <-ctx.Done():
			return fmt.Errorf("%s did not answer within %v", p.ID, timeout)
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// ReadyAll waits, in parallel, until each of ps answers, and joins the
// errors of those that did not.
func ReadyAll(ps []*Proc, timeout time.Duration) error {
	errs := make([]error, len(ps))
	var wg sync.WaitGroup
	for i, p := range ps {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = p.Ready(timeout) }()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Running reports whether the process is up (possibly paused).
func (p *Proc) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd != nil && !closed(p.done)
}

// Kill sends SIGKILL, a crash rather than a clean stop, and waits for the exit.
func (p *Proc) Kill() { p.signalAndWait(syscall.SIGKILL, 0) }

// Stop sends SIGTERM and waits up to grace for a clean exit before killing.
func (p *Proc) Stop(grace time.Duration) { p.signalAndWait(syscall.SIGTERM, grace) }

func (p *Proc) signalAndWait(sig syscall.Signal, grace time.Duration) {
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
		p.T.Errorf("%s did not stop within %v of %v", p.ID, grace, sig)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-done
	}
}

// Pause freezes the process with SIGSTOP (a stalled, not a dead, node);
// Resume continues it.
func (p *Proc) Pause() error { return p.signal(syscall.SIGSTOP, true) }

func (p *Proc) Resume() error { return p.signal(syscall.SIGCONT, false) }

func (p *Proc) signal(sig syscall.Signal, paused bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || closed(p.done) {
		return fmt.Errorf("%s: %v to a process that is not running", p.ID, sig)
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		return err
	}
	p.paused = paused
	return nil
}

// Cleanup resumes and kills the process and, if the test failed, logs the
// last tailLines lines of its log (t.TempDir removes the file soon after).
func (p *Proc) Cleanup(tailLines int) {
	p.mu.Lock()
	if p.paused && p.cmd != nil && !closed(p.done) {
		// A stopped process would not act on SIGKILL until continued.
		_ = p.cmd.Process.Signal(syscall.SIGCONT)
	}
	p.mu.Unlock()
	p.Kill()
	if p.T.Failed() {
		p.T.Logf("--- last lines of %s's log (%s):\n%s", p.ID, p.LogPath, Tail(p.LogPath, tailLines))
	}
}

// Tail returns the last n lines of the file at path.
func Tail(path string, n int) string {
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
