package chaos

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binPath is the ganglion binary every test starts, built once.
var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ganglion-chaos-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "ganglion")
	build := exec.Command("go", "build", "-o", binPath, "../cmd/ganglion")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building ganglion:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is one `ganglion serve` process, restartable on the same config and
// data directory. Only PIDs it started are ever signalled.
type proc struct {
	t       *testing.T
	id      string
	cfgPath string
	logPath string
	url     string

	mu     sync.Mutex
	cmd    *exec.Cmd
	done   chan struct{}
	paused bool
	starts int
}

// startAsync launches the process; ready waits for it to answer.
func (p *proc) startAsync() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil && !p.exited() {
		return fmt.Errorf("%s: start while running", p.id)
	}
	logFile, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	p.starts++
	fmt.Fprintf(logFile, "=== chaos: start %d of %s at %s\n", p.starts, p.id, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(binPath, "serve", "--config", p.cfgPath)
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

// restart starts the process again and waits until it answers.
func (p *proc) restart(timeout time.Duration) error {
	if err := p.startAsync(); err != nil {
		return err
	}
	return p.ready(timeout)
}

// exited reports whether the current process has ended; p.mu is held.
func (p *proc) exited() bool {
	select {
	case <-p.done:
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
			return fmt.Errorf("%s exited during start", p.id)
		case <-ctx.Done():
			return fmt.Errorf("%s did not answer within %v", p.id, timeout)
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// running reports whether the process is up (possibly paused).
func (p *proc) running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd != nil && !p.exited()
}

// kill sends SIGKILL, a crash rather than a clean stop, and waits for the exit.
func (p *proc) kill() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case <-done:
		return
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
}

// pause stops the process with SIGSTOP; resume continues it.
func (p *proc) pause() error { return p.signal(syscall.SIGSTOP, true) }

func (p *proc) resume() error { return p.signal(syscall.SIGCONT, false) }

func (p *proc) signal(sig syscall.Signal, paused bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.exited() {
		return fmt.Errorf("%s: %v to a process that is not running", p.id, sig)
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		return err
	}
	p.paused = paused
	return nil
}

// cleanup resumes and kills the process and, if the test failed, prints
// the tail of its log.
func (p *proc) cleanup() {
	p.mu.Lock()
	if p.paused && p.cmd != nil && !p.exited() {
		_ = p.cmd.Process.Signal(syscall.SIGCONT)
	}
	p.mu.Unlock()
	p.kill()
	if p.t.Failed() {
		p.t.Logf("--- last lines of %s's log (%s):\n%s", p.id, p.logPath, tail(p.logPath, 40))
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
