package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ganglion/ganglion/config"
)

// runDev starts a local cluster: each node is its own OS process running
// `ganglion serve` on a config written under DIR, so one can be killed
// alone (and restarted with `ganglion serve --config PATH`). Data survives
// a restart of dev with the same DIR.
func runDev(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	dir := fs.String("dir", "./ganglion-dev", "directory for configs and data")
	nodes := fs.Int("nodes", 3, "number of nodes, each its own process")
	serverName := fs.String("server-name", "", "server name (default localhost:<port>)")
	port := fs.Int("port", 8008, "client port of node 1; node k uses port+k-1 (Raft +100, gossip +200, federation +440)")
	restart := fs.Bool("restart", false, "restart a node that exits")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *nodes < 1 || *nodes > 9 {
		return errors.New("--nodes must be between 1 and 9")
	}
	name := *serverName
	if name == "" {
		// Other servers reach the cluster at node 1's federation port.
		name = "localhost:" + strconv.Itoa(devFederationPort(*port, 1))
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	key, err := devGossipKey(*dir, *nodes)
	if err != nil {
		return err
	}
	procs := make([]*devProc, *nodes)
	exited := make(chan *devProc, *nodes)
	defer func() { stopAll(procs) }()
	for k := 1; k <= *nodes; k++ {
		cfgPath, err := writeDevConfig(devLayout{dir: *dir, k: k, nodes: *nodes, serverName: name, port: *port, gossipKey: key})
		if err != nil {
			return err
		}
		p := &devProc{k: k, self: self, cfgPath: cfgPath, url: fmt.Sprintf("http://127.0.0.1:%d", *port+k-1),
			fedURL: fmt.Sprintf("https://127.0.0.1:%d", devFederationPort(*port, k)), serverName: name}
		if err := p.start(exited); err != nil {
			return err
		}
		procs[k-1] = p
	}
	// Nodes wait for each other to elect a leader: report each once it
	// knows one.
	for _, p := range procs {
		if err := waitHTTP(ctx, p.url+"/_ganglion/v1/status", 60*time.Second, hasLeader); err != nil {
			return fmt.Errorf("node %d did not come up (see %s): %w", p.k, p.logPath(), err)
		}
		p.announce()
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case p := <-exited:
			if !*restart {
				fmt.Printf("node %d exited (%v); restart it with: %s serve --config %s\n", p.k, p.err, self, p.cfgPath)
				continue
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
			}
			if err := p.start(exited); err != nil {
				return err
			}
			p.announce()
		}
	}
}

// hasLeader accepts a status answer that names a leader.
func hasLeader(body []byte) bool {
	var st struct {
		LeaderID string `json:"leader_id"`
	}
	return json.Unmarshal(body, &st) == nil && st.LeaderID != ""
}

// devLayout is where node k of a dev cluster listens and what it shares.
type devLayout struct {
	dir, serverName, gossipKey string
	k, nodes, port             int
}

// writeDevConfig writes node k's config once; an existing one is reused so
// a restart keeps its identity and data.
func writeDevConfig(l devLayout) (string, error) {
	nodeDir, err := filepath.Abs(filepath.Join(l.dir, fmt.Sprintf("node%d", l.k)))
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
	cfg.ServerName = l.serverName
	cfg.DataDir = filepath.Join(nodeDir, "data")
	cfg.Node.ID = fmt.Sprintf("node%d", l.k)
	cfg.Node.ClientListen = fmt.Sprintf("127.0.0.1:%d", l.port+l.k-1)
	cfg.Node.ClientURL = "http://" + cfg.Node.ClientListen
	cfg.Node.RaftListen = fmt.Sprintf("127.0.0.1:%d", l.port+100+l.k-1)
	cfg.Node.RaftAdvertise = cfg.Node.RaftListen
	cfg.Registration.Enabled = true
	// Federation over TLS with a certificate made in the data directory;
	// certificate checks are skipped for loopback peers only.
	cfg.Federation.Listen = fmt.Sprintf("127.0.0.1:%d", devFederationPort(l.port, l.k))
	cfg.Federation.DevCertificate = true
	cfg.Federation.InsecureSkipVerifyLoopback = true
	cfg.Federation.AllowPrivateAddresses = true
	if l.nodes > 1 {
		// Every node waits for the others, then all bootstrap alike.
		cfg.Cluster.Bootstrap = false
		cfg.Cluster.BootstrapExpect = l.nodes
		cfg.Cluster.GossipKey = l.gossipKey
		cfg.Cluster.GossipListen = fmt.Sprintf("127.0.0.1:%d", l.port+200+l.k-1)
		for j := 1; j <= l.nodes; j++ {
			if j != l.k {
				cfg.Cluster.Join = append(cfg.Cluster.Join, fmt.Sprintf("127.0.0.1:%d", l.port+200+j-1))
			}
		}
	}
	raw, err := cfg.Marshal()
	if err != nil {
		return "", err
	}
	return path, os.WriteFile(path, raw, 0o600)
}

// devFederationPort is node k's federation port: 8448 for node 1 with the
// default client port 8008.
func devFederationPort(port, k int) int { return port + 440 + k - 1 }

// devGossipKey makes the dev cluster's gossip key once and keeps it in DIR.
func devGossipKey(dir string, nodes int) (string, error) {
	if nodes == 1 {
		return "", nil
	}
	path := filepath.Join(dir, "gossip.key")
	if raw, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(raw)), nil
	}
	buf := make([]byte, 32)
	if _, err := rand.Read(buf); err != nil {
		return "", err
	}
	key := base64.StdEncoding.EncodeToString(buf)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	return key, os.WriteFile(path, []byte(key+"\n"), 0o600)
}

// waitHTTP polls url until it answers 200 with a body ok accepts.
func waitHTTP(ctx context.Context, url string, timeout time.Duration, ok func([]byte) bool) error {
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: 2 * time.Second}
	for time.Now().Before(deadline) {
		resp, err := client.Get(url)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && ok(body) {
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
