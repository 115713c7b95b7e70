package cluster

import (
	"context"
	"net"
	"net/http"
	"net/http/httputil"
	"time"

	"github.com/hashicorp/raft"

	"github.com/ganglion/ganglion/fsm"
	"github.com/ganglion/ganglion/internal/matrixhttp"
)

// Writes reach the leader whichever node a client talks to (Nomad-style
// forwarding): a follower relays the whole HTTP request to the leader over
// the Raft port and relays the answer. The client's next read on any node
// sees the write because every read first passes a read barrier
// (readindex.go); the relay itself does not wait for this node to apply.

// leaderWatchEvery is how often a forwarded request checks that its target
// still leads; a request to a deposed or unreachable leader is cut short.
const leaderWatchEvery = 50 * time.Millisecond

func (n *Node) newForwardTransport() *http.Transport {
	return &http.Transport{
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			ctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			return n.mux.dial(ctx, addr, tagForward)
		},
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
	}
}

// writeTarget waits up to d for a ready leader: this node (self true) or
// another (its Raft address). An empty address and false means none.
func (n *Node) writeTarget(d time.Duration) (addr raft.ServerAddress, id raft.ServerID, self bool) {
	deadline := time.Now().Add(d)
	for {
		if n.LeaderReady() {
			return "", "", true
		}
		addr, id = n.raft.LeaderWithID()
		if id != "" && string(id) != n.cfg.Node.ID {
			return addr, id, false
		}
		if time.Now().After(deadline) {
			return "", "", false
		}
		select {
		case <-n.done:
			return "", "", false
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Middleware serves client requests on any node: writes go to the leader,
// reads are served locally once this node has caught up with the leader.
func (n *Node) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodOptions:
			next.ServeHTTP(w, r)
			return
		case http.MethodGet, http.MethodHead:
			n.ReadBarrier(r.Context())
			next.ServeHTTP(w, r)
			return
		}
		addr, id, self := n.writeTarget(leaderWait)
		switch {
		case self:
			next.ServeHTTP(w, r)
		case addr == "":
			writeUnavailable(w, ErrUnavailable)
		default:
			n.forwardRequest(w, r, addr, id)
		}
	})
}

// forwardRequest relays r to the leader at addr and its answer back.
func (n *Node) forwardRequest(w http.ResponseWriter, r *http.Request, addr raft.ServerAddress, id raft.ServerID) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	go n.cancelOnLeaderChange(ctx, cancel, id)
	proxy := &httputil.ReverseProxy{
		Transport: n.fwd,
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = string(addr)
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if r.Context().Err() != nil && ctx.Err() == nil {
				return // the client went away
			}
			n.log.Debug("forwarding to the leader failed", "leader", string(id), "error", err)
			writeUnavailable(w, ErrUnavailable)
		},
	}
	proxy.ServeHTTP(w, r.WithContext(ctx))
}

// cancelOnLeaderChange ends a forwarded request when its target stops being
// the leader this node knows, so a cut-off node answers within about one
// heartbeat timeout instead of hanging on a dead connection.
func (n *Node) cancelOnLeaderChange(ctx context.Context, cancel context.CancelFunc, id raft.ServerID) {
	t := time.NewTicker(leaderWatchEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, cur := n.raft.LeaderWithID(); cur != id {
				cancel()
				return
			}
		}
	}
}

func writeUnavailable(w http.ResponseWriter, e *fsm.Error) {
	matrixhttp.WriteError(w, e.Status, e.Errcode, e.Message)
}
