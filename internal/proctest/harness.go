package proctest

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// BuildBinary builds cmd/ganglion (found at ../cmd/ganglion from a test
// package's directory) into a fresh temporary directory. cleanup removes
// that directory; on error it has already been removed.
func BuildBinary(tmpPattern string) (path string, cleanup func(), err error) {
	dir, err := os.MkdirTemp("", tmpPattern)
	if err != nil {
		return "", nil, err
	}
	cleanup = func() { os.RemoveAll(dir) }
	path = filepath.Join(dir, "ganglion")
	build := exec.Command("go", "build", "-o", path, "../cmd/ganglion")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		cleanup()
		return "", nil, fmt.Errorf("building ganglion: %w", err)
	}
	return path, cleanup, nil
}

// Main is a test package's TestMain: it builds the binary once into *bin,
// runs the tests and removes the binary. os.Exit skips deferred calls,
// hence the explicit cleanup before it.
func Main(m *testing.M, tmpPattern string, bin *string) {
	path, cleanup, err := BuildBinary(tmpPattern)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	*bin = path
	code := m.Run()
	cleanup()
	os.Exit(code)
}

// Poll calls cond every interval until it returns true or timeout passes.
func Poll(timeout, interval time.Duration, cond func() bool) bool {
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
	ports   = map[string]bool{} // "ip:port" handed out in this run, never twice
)

// FreePort returns a TCP port on ip that was free a moment ago and whose
// UDP twin is free too (memberlist gossips on both). A port is handed out
// at most once per run, so two configs written before either process
// listens cannot collide.
func FreePort(t *testing.T, ip string) int {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for i := 0; i < 50; i++ {
		l, err := net.Listen("tcp", ip+":0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		addr := fmt.Sprintf("%s:%d", ip, port)
		u, err := net.ListenPacket("udp", addr)
		l.Close()
		if err == nil {
			u.Close()
			if !ports[addr] {
				ports[addr] = true
				return port
			}
		}
	}
	t.Fatal("no free port")
	return 0
}

// FreeAddr is "ip:port" for a FreePort on ip.
func FreeAddr(t *testing.T, ip string) string {
	t.Helper()
	return fmt.Sprintf("%s:%d", ip, FreePort(t, ip))
}

// NodeStatus is GET /_ganglion/v1/status.
type NodeStatus struct {
	NodeID          string `json:"node_id"`
	State           string `json:"state"`
	LeaderID        string `json:"leader_id"`
	LeaderClientURL string `json:"leader_client_url"`
	AppliedIndex    uint64 `json:"applied_index"`
	CommitIndex     uint64 `json:"commit_index"`
	LastLogIndex    uint64 `json:"last_log_index"`
	Members         []struct {
		NodeID    string `json:"node_id"`
		ClientURL string `json:"client_url"`
		RaftAddr  string `json:"raft_addr"`
		Voter     bool   `json:"voter"`
		Alive     bool   `json:"alive"`
	} `json:"members"`
}

// statusClient bounds a status read, so a paused or cut-off node shows as
// an error rather than stalling a poll loop.
var statusClient = &http.Client{Timeout: time.Second}

// Status reads the node status at the client API base URL.
func Status(base string) (NodeStatus, error) {
	var st NodeStatus
	resp, err := statusClient.Get(base + "/_ganglion/v1/status")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("status %d", resp.StatusCode)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}
