package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ganglion/ganglion/config"
	"github.com/ganglion/ganglion/fsm"
)

// servedNode is a node with its client-facing test server: POST /write
// proposes a command on whichever node handles it and answers that node's
// ID and the index; GET /applied answers the node's applied index.
type servedNode struct {
	n   *Node
	srv *httptest.Server
}

func serveTestNode(t *testing.T, n *Node) *servedNode {
	t.Helper()
	inner := http.NewServeMux()
	inner.HandleFunc("POST /write", func(w http.ResponseWriter, r *http.Request) {
		_, idx, err := n.Propose(r.Context(), fsm.OpRoomForget, fsm.ForgetCmd{UserID: "@u:x", RoomID: "!r:x"})
		if err != nil {
			writeUnavailable(w, ErrUnavailable)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"node": n.cfg.Node.ID, "index": idx})
	})
	inner.HandleFunc("GET /applied", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"node": n.cfg.Node.ID, "index": n.store.AppliedIndex()})
	})
	n.ServeInternal(inner)
	srv := httptest.NewServer(n.Middleware(inner))
	t.Cleanup(srv.Close)
	return &servedNode{n: n, srv: srv}
}

func (s *servedNode) do(t *testing.T, method, path string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, s.srv.URL+path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

// threeServedNodes forms a three-node cluster (bootstrap_expect 3) and
// serves each node.
func threeServedNodes(t *testing.T) (*testCluster, []*servedNode) {
	t.Helper()
	c := newTestCluster(t)
	var cfgs []*config.Config
	for i := 1; i <= 3; i++ {
		cfg := gossipConfig(t, fmt.Sprintf("node%d", i), testGossipKey)
		cfg.Cluster.BootstrapExpect = 3
		cfgs = append(cfgs, cfg)
	}
	for _, cfg := range cfgs {
		for _, other := range cfgs {
			if other != cfg {
				cfg.Cluster.Join = append(cfg.Cluster.Join, other.Cluster.GossipListen)
			}
		}
	}
	var out []*servedNode
	for _, cfg := range cfgs {
		out = append(out, serveTestNode(t, c.open(cfg)))
	}
	waitFor(t, 20*time.Second, "a ready leader", func() bool {
		for _, s := range out {
			if s.n.LeaderReady() {
				return true
			}
		}
		return false
	})
	return c, out
}

func split(nodes []*servedNode) (leader *servedNode, followers []*servedNode) {
	for _, s := range nodes {
		if s.n.LeaderReady() {
			leader = s
		} else {
			followers = append(followers, s)
		}
	}
	return leader, followers
}

func TestFollowerForwardsWritesAndReadsSeeThem(t *testing.T) {
	_, nodes := threeServedNodes(t)
	leader, followers := split(nodes)
	if leader == nil || len(followers) != 2 {
		t.Fatal("expected one leader and two followers")
	}
	for i := range 50 {
		writer, reader := followers[i%2], followers[(i+1)%2]
		status, body := writer.do(t, http.MethodPost, "/write")
		if status != http.StatusOK || body["node"] != leader.n.cfg.Node.ID {
			t.Fatalf("write %d via %s: status %d body %v (want it run on the leader)", i, writer.n.cfg.Node.ID, status, body)
		}
		written := body["index"].(float64)
		// The read barrier makes the other follower apply the write before
		// it answers, however fresh the write is.
		status, body = reader.do(t, http.MethodGet, "/applied")
		if status != http.StatusOK || body["node"] != reader.n.cfg.Node.ID || body["index"].(float64) < written {
			t.Fatalf("read %d on %s after write at %v: status %d body %v", i, reader.n.cfg.Node.ID, written, status, body)
		}
	}
}

func TestProposeOnFollowerIsForwarded(t *testing.T) {
	_, nodes := threeServedNodes(t)
	_, followers := split(nodes)
	_, idx, err := followers[0].n.Propose(context.Background(), fsm.OpRoomForget, fsm.ForgetCmd{UserID: "@f:x", RoomID: "!f:x"})
	if err != nil || idx == 0 {
		t.Fatalf("forwarded propose: index %d, error %v", idx, err)
	}
	// A refusal comes back as the FSM's error, not as unavailability.
	_, _, err = followers[0].n.Propose(context.Background(), fsm.OpRoomForget, fsm.ForgetCmd{})
	var fe *fsm.Error
	if err == nil || !asFSMError(err, &fe) || fe.Status != http.StatusBadRequest {
		t.Fatalf("forwarded refusal: %v", err)
	}
}

func asFSMError(err error, out **fsm.Error) bool {
	fe, ok := err.(*fsm.Error)
	*out = fe
	return ok && fe != ErrUnavailable
}

func TestCutOffNodeRefusesWritesQuickly(t *testing.T) {
	c, nodes := threeServedNodes(t)
	leader, followers := split(nodes)
	lone := followers[0]
	// Leave the follower alone: the leader and the other follower go.
	c.close(leader.n.cfg.Node.ID)
	c.close(followers[1].n.cfg.Node.ID)
	start := time.Now()
	status, body := lone.do(t, http.MethodPost, "/write")
	took := time.Since(start)
	if status != http.StatusServiceUnavailable || body["errcode"] != "M_UNKNOWN" ||
		!strings.Contains(fmt.Sprint(body["error"]), "quorum") {
		t.Fatalf("write on a cut-off node: status %d body %v", status, body)
	}
	if took > 2*time.Second {
		t.Fatalf("write on a cut-off node took %s, want under 2s", took)
	}
	// Reads stay available from the local store.
	if status, _ := lone.do(t, http.MethodGet, "/applied"); status != http.StatusOK {
		t.Fatalf("read on a cut-off node: status %d", status)
	}
}
