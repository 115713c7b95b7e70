package cluster

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// deleteMember sends DELETE /_ganglion/v1/members/{id} to h and returns the
// status and the JSON body.
func deleteMember(t *testing.T, h http.Handler, method, id, token string) (int, map[string]string) {
	t.Helper()
	req := httptest.NewRequest(method, membersPath+id, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var body map[string]string
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("%s %s: body %q is not a JSON object", method, id, rec.Body)
	}
	return rec.Code, body
}

func TestRemoveNodeHandlerRefusals(t *testing.T) {
	cfg := testConfig(t)
	cfg.Cluster.GossipKey = testGossipKey
	n := openLeader(t, cfg)
	defer n.Close()
	token, err := AdminToken(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := n.RemoveNodeHandler() // unrouted: the ID comes from the path
	cases := []struct {
		name, method, id, token string
		status                  int
		errcode                 string
	}{
		{"no token", http.MethodDelete, "node2", "", http.StatusUnauthorized, "M_MISSING_TOKEN"},
		{"wrong token", http.MethodDelete, "node2", token[1:] + "0", http.StatusUnauthorized, "M_UNKNOWN_TOKEN"},
		{"wrong method", http.MethodGet, "node2", token, http.StatusMethodNotAllowed, "M_UNRECOGNIZED"},
		{"unknown node", http.MethodDelete, "node2", token, http.StatusNotFound, "M_NOT_FOUND"},
		{"last voter", http.MethodDelete, cfg.Node.ID, token, http.StatusBadRequest, "M_INVALID_PARAM"},
		{"no node id", http.MethodDelete, "", token, http.StatusBadRequest, "M_INVALID_PARAM"},
	}
	for _, tc := range cases {
		status, body := deleteMember(t, h, tc.method, tc.id, tc.token)
		if status != tc.status || body["errcode"] != tc.errcode || body["error"] == "" {
			t.Errorf("%s: got %d %v, want %d %s", tc.name, status, body, tc.status, tc.errcode)
		}
	}

	// Without a gossip key there is no admin token: the endpoint is closed.
	cfg2 := testConfig(t)
	if _, err := AdminToken(cfg2); err == nil {
		t.Error("AdminToken without a gossip key succeeded")
	}
	n2 := openLeader(t, cfg2)
	defer n2.Close()
	if status, body := deleteMember(t, n2.RemoveNodeHandler(), http.MethodDelete, "node2", token); status != http.StatusForbidden {
		t.Errorf("no gossip key: got %d %v, want 403", status, body)
	}
}

// TestRemoveNodeOverHTTP removes a follower through the routed endpoint; a
// follower itself answers 503.
func TestRemoveNodeOverHTTP(t *testing.T) {
	c := newTestCluster(t)
	cfg1 := gossipConfig(t, "node1", testGossipKey)
	cfg1.Cluster.Bootstrap = true
	n1 := c.open(cfg1)
	n2 := c.open(gossipConfig(t, "node2", testGossipKey, cfg1.Cluster.GossipListen))
	c.open(gossipConfig(t, "node3", testGossipKey, cfg1.Cluster.GossipListen))
	waitFor(t, 10*time.Second, "three voters", func() bool { return hasVoters(n2, "node1", "node2", "node3") })
	token, _ := AdminToken(cfg1)

	route := func(n *Node) http.Handler {
		mux := http.NewServeMux()
		mux.Handle("DELETE /_ganglion/v1/members/{node_id}", n.RemoveNodeHandler())
		return mux
	}
	// Leadership may move under load: ask whoever leads now, and a node
	// that does not.
	var status int
	var body map[string]string
	for range 10 {
		leader := c.leader()
		follower := n1
		if leader == n1 {
			follower = n2
		}
		status, body = deleteMember(t, route(follower), http.MethodDelete, "node3", token)
		if status == http.StatusOK {
			break // it took over meanwhile
		}
		if status != http.StatusServiceUnavailable || body["error"] != "not the leader" {
			t.Fatalf("on a follower: got %d %v", status, body)
		}
		if status, body = deleteMember(t, route(leader), http.MethodDelete, "node3", token); status != http.StatusServiceUnavailable {
			break
		}
	}
	if status != http.StatusOK || body["removed"] != "node3" {
		t.Fatalf("on the leader: got %d %v", status, body)
	}
	waitFor(t, 5*time.Second, "node3 out of node2's configuration", func() bool { return hasVoters(n2, "node1", "node2") })
	// Still running and gossiping, it is not added back.
	holdsFor(t, 1500*time.Millisecond, "node3 not re-added", func() bool {
		return hasVoters(n1, "node1", "node2") && hasVoters(n2, "node1", "node2")
	})
}
