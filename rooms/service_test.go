package rooms

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"maunium.net/go/mautrix/id"

	"github.com/ganglion/ganglion/cluster"
	"github.com/ganglion/ganglion/config"
	"github.com/ganglion/ganglion/fsm"
)

func startService(t *testing.T) *Service {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.ServerName = "test.local"
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Node.RaftListen = l.Addr().String()
	cfg.Node.RaftAdvertise = cfg.Node.RaftListen
	l.Close()
	log := hclog.New(&hclog.LoggerOptions{Level: hclog.Warn})
	node, err := cluster.Open(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Close() })
	if err := node.WaitLeader(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	s := New(node, cfg.ServerName, "12", log)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestCreateRoomEveryVersion(t *testing.T) {
	s := startService(t)
	for _, ver := range []string{"10", "11", "12"} {
		t.Run("v"+ver, func(t *testing.T) {
			roomID, err := s.CreateRoom(t.Context(), CreateRoomRequest{Creator: "@alice:test.local",
				RoomVersion: ver, Preset: "public_chat", Name: "n", HasName: true, Invite: []string{"@bob:test.local"},
				AliasLocalpart: "room" + ver})
			if err != nil {
				t.Fatal(err)
			}
			var state map[[2]string]string
			_ = s.store.View(func(r *fsm.ReadTx) error {
				state = r.CurrentState(roomID)
				return nil
			})
			for _, k := range [][2]string{{"m.room.create", ""}, {"m.room.power_levels", ""}, {"m.room.name", ""},
				{"m.room.join_rules", ""}, {"m.room.member", "@bob:test.local"}, {"m.room.canonical_alias", ""}} {
				if state[k] == "" {
					t.Errorf("state %v missing", k)
				}
			}
			// Bob joins (public room) and both can send.
			if _, err := s.Membership(t.Context(), MembershipRequest{RoomID: roomID, Sender: "@bob:test.local",
				Target: "@bob:test.local", Membership: "join"}); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Send(t.Context(), SendRequest{RoomID: roomID, EventSpec: EventSpec{Type: "m.room.message",
				Sender: "@bob:test.local", Content: json.RawMessage(`{"body":"hi","msgtype":"m.text"}`)}}); err != nil {
				t.Fatal(err)
			}
			// A stranger cannot send.
			_, err = s.Send(t.Context(), SendRequest{RoomID: roomID, EventSpec: EventSpec{Type: "m.room.message",
				Sender: "@eve:test.local", Content: json.RawMessage(`{}`)}})
			if fe, ok := err.(*fsm.Error); !ok || fe.Errcode != "M_FORBIDDEN" {
				t.Fatalf("stranger send: %v", err)
			}
		})
	}
}

func TestConcurrentSendsPipelineInOneRoom(t *testing.T) {
	s := startService(t)
	roomID, err := s.CreateRoom(t.Context(), CreateRoomRequest{Creator: "@alice:test.local"})
	if err != nil {
		t.Fatal(err)
	}
	const senders, each = 16, 40
	var wg sync.WaitGroup
	errs := make(chan error, senders*each)
	for i := 0; i < senders; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for j := 0; j < each; j++ {
				_, err := s.Send(t.Context(), SendRequest{RoomID: roomID,
					Txn:       &fsm.TxnKey{UserID: "@alice:test.local", DeviceID: "D", Endpoint: "send", TxnID: fmt.Sprint(i, "-", j)},
					EventSpec: EventSpec{Type: "m.room.message", Sender: "@alice:test.local", Content: json.RawMessage(`{"body":"x"}`)}})
				if err != nil {
					errs <- err
				}
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	n := 0
	_ = s.store.View(func(r *fsm.ReadTx) error {
		r.RoomEvents(roomID, -1, true, 0, func(e *fsm.EventRecord) bool {
			if e.Type == "m.room.message" {
				n++
			}
			return true
		})
		room, _ := r.Room(roomID)
		if len(room.Extremities) != 1 {
			t.Errorf("extremities = %v, want one (a linear DAG)", room.Extremities)
		}
		return nil
	})
	if n != senders*each {
		t.Fatalf("stored %d messages, want %d", n, senders*each)
	}
	// A retried txn returns the first event and stores nothing new.
	k := &fsm.TxnKey{UserID: "@alice:test.local", DeviceID: "D", Endpoint: "send", TxnID: "0-0"}
	first, _ := s.txnEventID(k)
	again, err := s.Send(t.Context(), SendRequest{RoomID: roomID, Txn: k, EventSpec: EventSpec{Type: "m.room.message",
		Sender: "@alice:test.local", Content: json.RawMessage(`{"body":"x"}`)}})
	if err != nil || again != first {
		t.Fatalf("retry gave %s, %v; want %s", again, err, first)
	}
}

func TestConcurrentCreatesGetDistinctRooms(t *testing.T) {
	s := startService(t)
	const n = 20
	ids := make(chan string, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id, err := s.CreateRoom(t.Context(), CreateRoomRequest{Creator: "@alice:test.local"})
			if err != nil {
				t.Error(err)
			}
			ids <- id
		}()
	}
	wg.Wait()
	close(ids)
	seen := map[string]bool{}
	for id := range ids {
		if seen[id] {
			t.Fatalf("room %s created twice", id)
		}
		seen[id] = true
	}
}

// A head that ran ahead of the log (an event built but never committed)
// must not fail the next send: the builder reloads and rebuilds once.
func TestSendRecoversFromHeadAheadOfLog(t *testing.T) {
	s := startService(t)
	roomID, err := s.CreateRoom(t.Context(), CreateRoomRequest{Creator: "@alice:test.local"})
	if err != nil {
		t.Fatal(err)
	}
	h, err := s.lockHead(t.Context(), roomID)
	if err != nil {
		t.Fatal(err)
	}
	h.extremities = []id.EventID{"$never-committed"}
	h.mu.Unlock()
	evID, err := s.Send(t.Context(), SendRequest{RoomID: roomID, EventSpec: EventSpec{Type: "m.room.message",
		Sender: "@alice:test.local", Content: json.RawMessage(`{"body":"after"}`)}})
	if err != nil || evID == "" {
		t.Fatalf("send after a lost event: %q %v", evID, err)
	}
}

func TestContradictoryInitialStateIsInvalidRoomState(t *testing.T) {
	s := startService(t)
	_, err := s.CreateRoom(t.Context(), CreateRoomRequest{Creator: "@alice:test.local", RoomVersion: "11",
		Name: "n", HasName: true, PowerLevelOverride: json.RawMessage(`{"events":{"m.room.name":200}}`)})
	fe, ok := err.(*fsm.Error)
	if !ok || fe.Status != 400 || fe.Errcode != "M_INVALID_ROOM_STATE" {
		t.Fatalf("got %v, want 400 M_INVALID_ROOM_STATE", err)
	}
}
