package clientapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/ganglion/ganglion/cluster"
	"github.com/ganglion/ganglion/config"
	"github.com/ganglion/ganglion/rooms"
)

// testServer runs one in-process node (single-node Raft on a loopback
// port, store in a temp dir) behind httptest and returns its base URL.
func testServer(t *testing.T, mutate ...func(*config.Config)) string {
	t.Helper()
	base, _ := testServerAPI(t, mutate...)
	return base
}

// testServerAPI is testServer that also hands back the API, for tests that
// need the store or the room service directly.
func testServerAPI(t *testing.T, mutate ...func(*config.Config)) (string, *API) {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.ServerName = "test.local"
	cfg.Registration.Enabled = true
	cfg.Registration.SharedSecret = "s3cret"
	cfg.Node.RaftListen = freeAddr(t)
	cfg.Node.RaftAdvertise = cfg.Node.RaftListen
	// A lone node elects itself after one heartbeat timeout: keep it short
	// so each test starts in milliseconds.
	cfg.Cluster.HeartbeatTimeout.Duration = 50 * time.Millisecond
	cfg.Cluster.ElectionTimeout.Duration = 50 * time.Millisecond
	cfg.Cluster.LeaderLeaseTimeout.Duration = 50 * time.Millisecond
	for _, m := range mutate {
		m(cfg)
	}
	log := hclog.New(&hclog.LoggerOptions{Name: "test", Level: hclog.Warn})
	node, err := cluster.Open(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := node.WaitLeader(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	rs := rooms.New(node, cfg.ServerName, cfg.Rooms.DefaultVersion, log.Named("rooms"))
	if err := rs.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	api := New(cfg, node, rs, log.Named("clientapi"))
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(func() {
		srv.Close()
		node.Close()
	})
	return srv.URL, api
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// call sends a JSON request and decodes the JSON answer into a map.
func call(t *testing.T, method, url, token string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewBufferString(b)
	default:
		raw, _ := json.Marshal(b)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := map[string]any{}
	if len(raw) > 0 && json.Unmarshal(raw, &out) != nil {
		t.Fatalf("%s %s: non-JSON answer %d: %s", method, url, resp.StatusCode, raw)
	}
	return resp.StatusCode, out
}

// registerUser registers localpart with m.login.dummy and returns its token.
func registerUser(t *testing.T, base, localpart string) (userID, token string) {
	t.Helper()
	status, out := call(t, "POST", base+"/_matrix/client/v3/register", "", map[string]any{
		"username": localpart, "password": "pass-" + localpart, "auth": map[string]any{"type": "m.login.dummy"},
	})
	if status != 200 {
		t.Fatalf("register %s: %d %v", localpart, status, out)
	}
	return fmt.Sprint(out["user_id"]), fmt.Sprint(out["access_token"])
}
