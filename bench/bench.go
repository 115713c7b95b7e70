// Package bench is a load generator for a Matrix homeserver. It talks to the
// public Client-Server API with plain net/http so that it measures exactly
// what a real client sees, and it works against any homeserver, not only
// Ganglion.
package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// config holds the parsed command line.
type config struct {
	hs             []string
	seq            int
	concMsgs       int
	rooms          int
	senders        int
	oneRoomSenders int
	oneRoomMsgs    int
	wake           int
	initRooms      int
	initMsgs       int
	timeout        time.Duration
	json           bool
}

// hsList implements a repeatable, comma-separated --hs flag. The first Set
// replaces the default so that "--hs X" does not also bench localhost.
type hsList struct {
	urls []string
	set  bool
}

func (l *hsList) String() string { return strings.Join(l.urls, ",") }

func (l *hsList) Set(v string) error {
	if !l.set {
		l.urls, l.set = nil, true
	}
	for _, u := range strings.Split(v, ",") {
		u = strings.TrimRight(strings.TrimSpace(u), "/")
		if u == "" {
			continue
		}
		if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			return fmt.Errorf("homeserver URL %q must start with http:// or https://", u)
		}
		l.urls = append(l.urls, u)
	}
	return nil
}

func parseFlags(args []string, out io.Writer) (*config, error) {
	cfg := &config{}
	hs := &hsList{urls: []string{"http://localhost:8008"}}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Var(hs, "hs", "homeserver base URL; repeatable or comma-separated (nodes of one homeserver)")
	fs.IntVar(&cfg.seq, "seq", 500, "sequential sends (scenario 1; 0 skips)")
	fs.IntVar(&cfg.concMsgs, "concurrent-msgs", 5000, "messages for the multi-room throughput test (scenario 2; 0 skips)")
	fs.IntVar(&cfg.rooms, "rooms", 50, "rooms for the multi-room throughput test")
	fs.IntVar(&cfg.senders, "senders", 64, "concurrent senders for the multi-room throughput test")
	fs.IntVar(&cfg.oneRoomSenders, "one-room-senders", 16, "concurrent senders in the single-room test")
	fs.IntVar(&cfg.oneRoomMsgs, "one-room-msgs", 3000, "messages for the single-room test (scenario 3; 0 skips)")
	fs.IntVar(&cfg.wake, "wake", 200, "sync wake-up samples (scenario 4; 0 skips)")
	fs.IntVar(&cfg.initRooms, "initial-rooms", 50, "rooms for the initial sync test (scenario 5; 0 skips)")
	fs.IntVar(&cfg.initMsgs, "initial-msgs", 20, "messages per room for the initial sync test")
	fs.DurationVar(&cfg.timeout, "timeout", 10*time.Minute, "overall time bound")
	fs.BoolVar(&cfg.json, "json", false, "also print a one-line JSON summary")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("bench: unexpected arguments %q", fs.Args())
	}
	cfg.hs = hs.urls
	return cfg, cfg.validate()
}

func (c *config) validate() error {
	if len(c.hs) == 0 {
		return errors.New("bench: at least one --hs is required")
	}
	for _, v := range []int{c.seq, c.concMsgs, c.rooms, c.senders, c.oneRoomSenders,
		c.oneRoomMsgs, c.wake, c.initRooms, c.initMsgs} {
		if v < 0 {
			return errors.New("bench: counts must not be negative")
		}
	}
	if c.concMsgs > 0 && (c.rooms < 1 || c.senders < 1) {
		return errors.New("bench: --rooms and --senders must be >= 1")
	}
	if c.oneRoomMsgs > 0 && c.oneRoomSenders < 1 {
		return errors.New("bench: --one-room-senders must be >= 1")
	}
	if c.timeout <= 0 {
		return errors.New("bench: --timeout must be positive")
	}
	return nil
}

// runner is the state shared by all scenarios of one run.
type runner struct {
	cfg   *config
	hc    *http.Client
	runID string       // random, so repeated runs never reuse usernames
	rr    atomic.Int64 // round-robin cursor over cfg.hs
	users atomic.Int64 // username counter
}

// Run parses args like a subcommand and writes a human-readable report to
// out. It returns an error for bad flags or when a scenario could not be
// completed (setup failure or timeout); the report is written either way.
func Run(ctx context.Context, args []string, out io.Writer) error {
	cfg, err := parseFlags(args, out)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()

	var id [6]byte
	if _, err := rand.Read(id[:]); err != nil {
		return err
	}
	r := &runner{cfg: cfg, hc: newHTTPClient(cfg), runID: hex.EncodeToString(id[:])}
	defer r.hc.CloseIdleConnections()

	fmt.Fprintf(out, "ganglion bench  hs=%s  run=%s  timeout=%s\n",
		strings.Join(cfg.hs, ","), r.runID, cfg.timeout)
	start := time.Now()
	scenarios := []struct {
		name string
		run  func(context.Context) *result
	}{
		{"sequential_send", r.sequential}, {"concurrent_send", r.concurrent},
		{"one_room_send", r.oneRoom}, {"sync_wakeup", r.wakeup}, {"initial_sync", r.initialSync},
	}
	var results []*result
	var aborted []string
	for i, sc := range scenarios {
		var res *result
		if err := ctx.Err(); err != nil {
			// Past the deadline a scenario could only fail its setup noisily.
			res = &result{Name: sc.name, Title: sc.name, Aborted: "not run: " + err.Error()}
		} else {
			res = sc.run(ctx)
		}
		res.Index = i + 1
		res.write(out)
		results = append(results, res)
		if res.Aborted != "" {
			aborted = append(aborted, fmt.Sprintf("%s: %s", res.Name, res.Aborted))
		}
	}
	total := time.Since(start)
	fmt.Fprintf(out, "total %.3fs\n", total.Seconds())

	if cfg.json {
		sum := struct {
			Homeservers []string  `json:"homeservers"`
			Run         string    `json:"run"`
			TotalMS     float64   `json:"total_ms"`
			Scenarios   []*result `json:"scenarios"`
		}{cfg.hs, r.runID, ms(total), results}
		b, err := json.Marshal(sum)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%s\n", b)
	}
	if len(aborted) > 0 {
		return fmt.Errorf("bench: %d scenario(s) aborted: %s", len(aborted), strings.Join(aborted, "; "))
	}
	return nil
}

// nextHS spreads clients round-robin over the configured nodes.
func (r *runner) nextHS() string {
	return r.cfg.hs[int(r.rr.Add(1)-1)%len(r.cfg.hs)]
}

// hsAt picks a fixed node, wrapping when fewer nodes were given.
func (r *runner) hsAt(i int) string { return r.cfg.hs[i%len(r.cfg.hs)] }
