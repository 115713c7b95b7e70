package main

import (
	"context"
	"errors"
	"flag"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/ganglion/ganglion/clientapi"
	"github.com/ganglion/ganglion/cluster"
	"github.com/ganglion/ganglion/config"
	"github.com/ganglion/ganglion/rooms"
)

func runServe(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	path := fs.String("config", "", "path to the YAML configuration")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *path == "" {
		return errors.New("serve needs --config FILE (see `ganglion generate-config`)")
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	return serve(ctx, cfg)
}

// serve runs one node until ctx ends, then stops cleanly: the HTTP server
// finishes in-flight requests before Raft and the stores close.
func serve(ctx context.Context, cfg *config.Config) error {
	log := hclog.New(&hclog.LoggerOptions{Name: "ganglion", Level: hclog.LevelFromString(cfg.Logging.Level),
		Output: os.Stderr, TimeFormat: time.RFC3339Nano})
	log = log.With("node", cfg.Node.ID)
	node, err := cluster.Open(cfg, log)
	if err != nil {
		return err
	}
	defer node.Close()
	// Serve once a leader is known, so the first writes do not fail while
	// the election that follows every start settles.
	if err := node.WaitLeader(10 * time.Second); err != nil {
		log.Warn("no leader yet; serving anyway", "error", err)
	}
	rs := rooms.New(node, cfg.ServerName, cfg.Rooms.DefaultVersion, log.Named("rooms"))
	startCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	err = rs.Start(startCtx)
	cancel()
	if err != nil {
		return err
	}
	go resetHeadsOnLeadershipChange(ctx, node, rs)

	api := clientapi.New(cfg, node, rs, log.Named("clientapi"))
	ln, err := net.Listen("tcp", cfg.Node.ClientListen)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/_ganglion/v1/status", node.StatusHandler())
	mux.Handle("/", api.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: log.Named("http").StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true})}
	log.Info("serving client API", "listen", ln.Addr().String(), "server_name", cfg.ServerName)
	errCh := make(chan error, 1)
	go func() { errCh <- srv.Serve(ln) }()
	select {
	case err := <-errCh:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		log.Warn("HTTP shutdown", "error", err)
	}
	return nil
}

// Room heads cached by a leader are only valid while it leads.
func resetHeadsOnLeadershipChange(ctx context.Context, node *cluster.Node, rs *rooms.Service) {
	for {
		select {
		case <-ctx.Done():
			return
		case leader := <-node.LeaderCh():
			if leader {
				// Build only on a store that has every committed entry.
				_ = node.Barrier(30 * time.Second)
			}
			rs.ResetHeads()
		}
	}
}
