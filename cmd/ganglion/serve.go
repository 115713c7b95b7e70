package main

import (
	"context"
	"errors"
	"flag"
	"net"
	"net/http"
	"os"
	"runtime/debug"
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
	startPprof(log.Named("pprof"))
	if os.Getenv("GOGC") == "" {
		// The heap is small next to the machine's memory (the store is
		// bbolt's mmap); collecting less often leaves more CPU for
		// requests and Apply. GOGC overrides it.
		debug.SetGCPercent(400)
	}
	node, err := cluster.Open(cfg, log)
	if err != nil {
		return err
	}
	defer node.Close()
	rs := rooms.New(node, cfg.ServerName, cfg.Rooms.DefaultVersion, log.Named("rooms"))
	// Room heads cached by a leader are valid only while it leads.
	node.OnLeadership(func(bool) { rs.ResetHeads() })
	// The signing key arrives once the cluster has a leader; until then the
	// node serves reads and answers writes with 503.
	go func() {
		if err := rs.Start(ctx); err != nil && ctx.Err() == nil {
			log.Error("loading the signing key", "error", err)
		}
	}()

	api := clientapi.New(cfg, node, rs, log.Named("clientapi"))
	// inner is what runs on the node that handles a request: the leader for
	// a forwarded write, this node otherwise.
	inner := http.NewServeMux()
	inner.Handle("/_ganglion/v1/members/{node_id}", node.RemoveNodeHandler())
	inner.Handle("/", api.Handler())
	if cfg.Federation.Enabled() {
		fed, fedSrv, err := startFederation(cfg, node, rs, api, inner, log.Named("federation"))
		if err != nil {
			return err
		}
		defer fedSrv.Close()
		sender := startSender(ctx, cfg, node, fed, api, log.Named("sender"))
		defer sender.Stop()
	}
	node.ServeInternal(inner)
	ln, err := net.Listen("tcp", cfg.Node.ClientListen)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/_ganglion/v1/status", node.StatusHandler())
	mux.Handle("/.well-known/matrix/client", wellKnownClient(cfg.Federation.WellKnownClient))
	mux.Handle("/", node.Middleware(inner))
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
	// A leader hands over first, so the cluster does not wait out an
	// election timeout; writes arriving meanwhile go to the new leader.
	node.TransferLeadership(5 * time.Second)
	shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		log.Warn("HTTP shutdown", "error", err)
	}
	return nil
}
