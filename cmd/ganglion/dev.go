package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/ganglion/ganglion/config"
)

// runDev starts a local server: each node is its own OS process running
// `ganglion serve` on a config written under DIR, so one can be killed
// alone. Data survives a restart with the same DIR.
func runDev(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	dir := fs.String("dir", "./ganglion-dev", "directory for configs and data")
	nodes := fs.Int("nodes", 1, "number of nodes (1 until clustering lands)")
	serverName := fs.String("server-name", "", "server name (default localhost:<port>)")
	port := fs.Int("port", 8008, "client port of node 1; node k uses port+k-1")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *nodes != 1 {
		return errors.New("only --nodes 1 is supported until the cluster issue lands")
	}
	name := *serverName
	if name == "" {
		name = "localhost:" + strconv.Itoa(*port)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	var procs []*devProc
	exited := make(chan error, *nodes)
	defer func() { stopAll(procs) }()
	for k := 1; k <= *nodes; k++ {
		cfgPath, err := writeDevConfig(*dir, k, name, *port)
		if err != nil {
			return err
		}
		logFile, err := os.OpenFile(filepath.Join(filepath.Dir(cfgPath), "ganglion.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		defer logFile.Close()
		cmd := exec.Command(self, "serve", "--config", cfgPath)
		cmd.Stdout, cmd.Stderr = logFile, logFile
		if err := cmd.Start(); err != nil {
			return err
		}
		p := &devProc{cmd: cmd, done: make(chan struct{})}
		go func() { err := cmd.Wait(); close(p.done); exited <- err }()
		procs = append(procs, p)
		url := fmt.Sprintf("http://127.0.0.1:%d", *port+k-1)
		if err := waitHTTP(ctx, url+"/_matrix/client/versions", 60*time.Second); err != nil {
			return fmt.Errorf("node %d did not come up (see %s): %w", k, logFile.Name(), err)
		}
		fmt.Printf("node %d pid %d client %s config %s\n", k, cmd.Process.Pid, url, cfgPath)
	}
	select {
	case <-ctx.Done():
		return nil
	case err := <-exited:
		return fmt.Errorf("a node exited: %v", err)
	}
}

// writeDevConfig writes node k's config once; an existing one is reused so
// a restart keeps its identity and data.
func writeDevConfig(dir string, k int, serverName string, port int) (string, error) {
	nodeDir, err := filepath.Abs(filepath.Join(dir, fmt.Sprintf("node%d", k)))
	if err != nil {
		return "", err
	}
	path := filepath.Join(nodeDir, "config.yaml")
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	if err := os.MkdirAll(nodeDir, 0o700); err != nil {
		return "", err
	}
	cfg := config.Default()
	cfg.ServerName = serverName
	cfg.DataDir = filepath.Join(nodeDir, "data")
	cfg.Node.ID = fmt.Sprintf("node%d", k)
	cfg.Node.ClientListen = fmt.Sprintf("127.0.0.1:%d", port+k-1)
	cfg.Node.ClientURL = "http://" + cfg.Node.ClientListen
	cfg.Node.RaftListen = fmt.Sprintf("127.0.0.1:%d", port+100+k-1)
	cfg.Node.RaftAdvertise = cfg.Node.RaftListen
	cfg.Registration.Enabled = true
	raw, err := cfg.Marshal()
	if err != nil {
		return "", err
	}
	return path, os.WriteFile(path, raw, 0o600)
}

func waitHTTP(ctx context.Context, url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return errors.New("timed out")
}

// devProc is a node process and a channel closed when it exits.
type devProc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// stopAll asks every child to stop (SIGTERM) and waits a bounded time.
func stopAll(procs []*devProc) {
	for _, p := range procs {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, p := range procs {
		select {
		case <-p.done:
		case <-time.After(15 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
}
