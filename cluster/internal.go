package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/ganglion/ganglion/fsm"
	"github.com/ganglion/ganglion/internal/matrixhttp"
)

// The internal server answers what other nodes send over the Raft port:
// forwarded client requests, forwarded proposals and read-index queries.
const (
	pathPropose   = "/_ganglion/internal/propose"
	pathReadIndex = "/_ganglion/internal/read_index"
)

// maxForwardedCommand bounds a forwarded proposal (media chunks are 512 KiB).
const maxForwardedCommand = 8 << 20

// ServeInternal starts serving other nodes' requests; client is the handler
// forwarded client requests run through (the client API). It stops with
// Close.
func (n *Node) ServeInternal(client http.Handler) {
	mux := http.NewServeMux()
	mux.HandleFunc(pathPropose, n.handleForwardedPropose)
	mux.HandleFunc(pathReadIndex, n.handleReadIndex)
	mux.Handle("/", n.leaderOnly(client))
	n.internal = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: n.log.Named("internal").StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true})}
	go func() { _ = n.internal.Serve(n.mux.forward) }()
}

// leaderOnly runs a forwarded client request if this node leads (waiting
// for a leadership change in progress to settle).
func (n *Node) leaderOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !n.awaitLeadership(leaderWait) {
			writeUnavailable(w, ErrUnavailable)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// proposeAnswer is the leader's answer to a forwarded proposal. The FSM's
// value is not carried: callers that need it run on the leader.
type proposeAnswer struct {
	Index uint64     `json:"index"`
	Error *fsm.Error `json:"error,omitempty"`
}

func (n *Node) handleForwardedPropose(w http.ResponseWriter, r *http.Request) {
	data, err := io.ReadAll(io.LimitReader(r.Body, maxForwardedCommand+1))
	if err != nil || len(data) > maxForwardedCommand {
		matrixhttp.WriteError(w, http.StatusRequestEntityTooLarge, "M_TOO_LARGE", "command too large")
		return
	}
	if !n.awaitLeadership(leaderWait) {
		writeUnavailable(w, ErrUnavailable)
		return
	}
	f := &Future{f: n.raft.Apply(data, applyTimeout)}
	_, idx, err := f.Wait(r.Context())
	ans := proposeAnswer{Index: idx}
	if err != nil {
		fe, ok := err.(*fsm.Error)
		if !ok {
			fe = ErrUnavailable
		}
		ans.Error = fe
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(ans)
}

// forwardPropose sends an encoded command to the leader at addr.
func (n *Node) forwardPropose(ctx context.Context, addr raft.ServerAddress, id raft.ServerID, data []byte) (uint64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go n.cancelOnLeaderChange(ctx, cancel, id)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+string(addr)+pathPropose, bytes.NewReader(data))
	if err != nil {
		return 0, err
	}
	resp, err := n.fwd.RoundTrip(req)
	if err != nil {
		n.log.Debug("forwarding a proposal failed", "leader", string(id), "error", err)
		return 0, ErrUnavailable
	}
	defer resp.Body.Close()
	var ans proposeAnswer
	if resp.StatusCode != http.StatusOK {
		return 0, ErrUnavailable
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&ans); err != nil {
		return 0, fmt.Errorf("leader's answer to a forwarded proposal: %w", err)
	}
	if ans.Error != nil {
		return ans.Index, ans.Error
	}
	return ans.Index, nil
}

// handleReadIndex confirms this node still leads and reports the index a
// follower must apply before it serves a read that starts now (see
// readIndex).
func (n *Node) handleReadIndex(w http.ResponseWriter, r *http.Request) {
	if !n.LeaderReady() {
		writeUnavailable(w, ErrUnavailable)
		return
	}
	if err := n.raft.VerifyLeader().Error(); err != nil {
		writeUnavailable(w, ErrUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]uint64{"index": n.store.AppliedIndex()})
}
