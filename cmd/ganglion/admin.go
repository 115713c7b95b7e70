package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ganglion/ganglion/cluster"
	"github.com/ganglion/ganglion/config"
)

// runRemoveNode removes a node from the cluster for good: it stops being a
// Raft voter and is not added back if it returns. Any node's client URL
// will do (a follower forwards to the leader); the admin token is derived
// from the cluster's gossip key in the config.
func runRemoveNode(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("remove-node", flag.ContinueOnError)
	path := fs.String("config", "", "path to any node's YAML configuration (for the gossip key and URL)")
	target := fs.String("url", "", "client URL of a running node (default: node.client_url from the config)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *path == "" || fs.NArg() != 1 {
		return errors.New("usage: ganglion remove-node --config FILE [--url URL] NODE_ID")
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	token, err := cluster.AdminToken(cfg)
	if err != nil {
		return err
	}
	base := *target
	if base == "" {
		base = cfg.Node.ClientURL
	}
	u := strings.TrimSuffix(base, "/") + "/_ganglion/v1/members/" + url.PathEscape(fs.Arg(0))
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("remove-node: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	fmt.Printf("removed %s\n", fs.Arg(0))
	return nil
}
