package federation

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/ganglion/ganglion/cluster"
	"github.com/ganglion/ganglion/config"
	"github.com/ganglion/ganglion/fsm"
	"github.com/ganglion/ganglion/rooms"
)

const senderOrigin = "origin.test"

// senderNode is a single in-process node that leads, with the room service
// to build real events.
func senderNode(t *testing.T) (*cluster.Node, *rooms.Service) {
	t.Helper()
	return startNode(t, testNodeConfig(t, senderOrigin), senderLog())
}

// testNodeConfig is a single node named serverName on a free loopback Raft
// port, with short election timeouts.
func testNodeConfig(t *testing.T, serverName string) *config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.ServerName = serverName
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Node.RaftListen = l.Addr().String()
	cfg.Node.RaftAdvertise = cfg.Node.RaftListen
	l.Close()
	cfg.Cluster.HeartbeatTimeout.Duration = 50 * time.Millisecond
	cfg.Cluster.ElectionTimeout.Duration = 50 * time.Millisecond
	cfg.Cluster.LeaderLeaseTimeout.Duration = 50 * time.Millisecond
	return cfg
}

// openNode opens cfg's node (closed at cleanup) and waits until it leads.
func openNode(t *testing.T, cfg *config.Config, log hclog.Logger) *cluster.Node {
	t.Helper()
	node, err := cluster.Open(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Close() })
	if err := node.WaitLeader(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	return node
}

// startNode opens cfg's node and starts its room service.
func startNode(t *testing.T, cfg *config.Config, log hclog.Logger) (*cluster.Node, *rooms.Service) {
	t.Helper()
	node := openNode(t, cfg, log)
	rs := rooms.New(node, cfg.ServerName, "", log)
	if err := rs.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	return node, rs
}

func senderLog() hclog.Logger {
	if testing.Verbose() {
		return hclog.New(&hclog.LoggerOptions{Name: "test", Level: hclog.Debug})
	}
	return hclog.New(&hclog.LoggerOptions{Name: "test", Level: hclog.Warn, Output: io.Discard})
}

// newTestSender starts a sender with short backoffs; it stops at cleanup.
func newTestSender(t *testing.T, node *cluster.Node, remote TransactionSender) *Sender {
	t.Helper()
	s := NewSender(node, senderOrigin, remote, senderLog())
	s.MinBackoff, s.MaxBackoff, s.PollInterval = 20*time.Millisecond, 100*time.Millisecond, 50*time.Millisecond
	s.Start(t.Context())
	t.Cleanup(s.Stop)
	return s
}

// roomWithMessages creates a room of alice's and sends n messages; it
// returns their event IDs in order.
func roomWithMessages(t *testing.T, rs *rooms.Service, n int) []string {
	t.Helper()
	ctx := t.Context()
	alice := "@alice:" + senderOrigin
	roomID := mustCreateRoom(t, rs, rooms.CreateRoomRequest{Creator: alice, Preset: "public_chat"})
	ids := make([]string, 0, n)
	for i := range n {
		content := json.RawMessage(fmt.Sprintf(`{"msgtype":"m.text","body":"<b>message</b> %d & more"}`, i))
		id, err := rs.Send(ctx, rooms.SendRequest{RoomID: roomID, EventSpec: rooms.EventSpec{Type: "m.room.message", Sender: alice, Content: content}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

func enqueue(t *testing.T, node *cluster.Node, c fsm.FedEnqueueCmd) {
	t.Helper()
	if _, _, err := node.Propose(t.Context(), fsm.OpFedEnqueue, c); err != nil {
		t.Fatal(err)
	}
}

// storedPDUs maps each event's stored PDU to its event ID.
func storedPDUs(t *testing.T, node *cluster.Node, ids []string) map[string]string {
	t.Helper()
	out := map[string]string{}
	_ = node.Store().View(func(r *fsm.ReadTx) error {
		for _, id := range ids {
			ev, err := r.Event(id)
			if err != nil {
				t.Fatal(err)
			}
			out[string(ev.PDU)] = id
		}
		return nil
	})
	return out
}

// drained reports whether dest has no queued rows and nothing in flight.
func drained(node *cluster.Node, dest string) bool {
	var n int
	var inflight *fsm.InFlightTxn
	_ = node.Store().View(func(r *fsm.ReadTx) error {
		n, inflight = r.OutboxLen(dest, 0), r.InFlightTxn(dest)
		return nil
	})
	return n == 0 && inflight == nil
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// fakeRemote records every transaction put to it; fail decides the
// answer of the n-th put to a destination (nil: 200).
type fakeRemote struct {
	mu    sync.Mutex
	calls []fakeCall
	count map[string]int
	fail  func(dest string, n int) error
	block func(dest string, n int) <-chan struct{}
}

type fakeCall struct {
	dest, txnID string
	body        []byte
	ok          bool
	at          time.Time
}

func (f *fakeRemote) SendTransaction(ctx context.Context, dest, txnID string, body []byte) error {
	f.mu.Lock()
	if f.count == nil {
		f.count = map[string]int{}
	}
	n := f.count[dest]
	f.count[dest]++
	var err error
	if f.fail != nil {
		err = f.fail(dest, n)
	}
	var wait <-chan struct{}
	if f.block != nil {
		wait = f.block(dest, n)
	}
	f.calls = append(f.calls, fakeCall{dest: dest, txnID: txnID, body: append([]byte{}, body...), ok: err == nil, at: time.Now()})
	f.mu.Unlock()
	if wait != nil {
		select {
		case <-wait:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return err
}

// callsTo lists the puts to dest so far.
func (f *fakeRemote) callsTo(dest string) []fakeCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []fakeCall
	for _, c := range f.calls {
		if c.dest == dest {
			out = append(out, c)
		}
	}
	return out
}

func parseTxn(t *testing.T, body []byte) txnBody {
	t.Helper()
	var b txnBody
	if err := json.Unmarshal(body, &b); err != nil {
		t.Fatalf("transaction body: %v\n%s", err, body)
	}
	if b.Origin != senderOrigin || b.OriginServerTS == 0 || b.PDUs == nil {
		t.Fatalf("transaction lacks origin, origin_server_ts or pdus: %s", body)
	}
	if len(b.PDUs) > fsm.FedMaxTxnPDUs || len(b.EDUs) > fsm.FedMaxTxnEDUs {
		t.Fatalf("transaction of %d PDUs and %d EDUs", len(b.PDUs), len(b.EDUs))
	}
	return b
}
