package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

type status struct {
	AppliedIndex      uint64 `json:"applied_index"`
	StoreIndexAtStart uint64 `json:"store_index_at_start"`
	AppliedSinceStart uint64 `json:"applied_since_start"`
	SkippedSinceStart uint64 `json:"skipped_since_start"`
}

func getStatus(t *testing.T, base string) status {
	t.Helper()
	resp, err := http.Get(base + "/_ganglion/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestSIGKILLUnderLoadLosesNothing kills the server while sends are in
// flight, restarts it on the same directory and checks that every
// acknowledged event, the account, its token and the room state survived,
// that unknown outcomes retried with their txnId land exactly once, and that
// the restart did not rebuild the store from scratch.
func TestSIGKILLUnderLoadLosesNothing(t *testing.T) {
	n := newNode(t)
	n.start()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	alice := newUser(t, n.URL, "crashy")
	created, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Name: "Durable", Preset: "private_chat"})
	if err != nil {
		t.Fatal(err)
	}
	room := created.RoomID

	const workers, perWorker = 8, 200
	var mu sync.Mutex
	acked := map[string]id.EventID{} // txnId -> event
	var unknown []string             // txnIds whose outcome the crash hid
	var ackCount atomic.Int64
	killed := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < perWorker; i++ {
				txn := fmt.Sprintf("c-%d-%d", w, i)
				evID, err := sendText(ctx, alice, room, txn, txn)
				mu.Lock()
				if err != nil {
					unknown = append(unknown, txn)
					mu.Unlock()
					return
				}
				acked[txn] = evID
				mu.Unlock()
				ackCount.Add(1)
			}
		}(w)
	}
	go func() {
		for ackCount.Load() < 300 {
			time.Sleep(5 * time.Millisecond)
		}
		n.Kill()
		close(killed)
	}()
	wg.Wait()
	<-killed
	t.Logf("%d sends acknowledged, %d cut off by the kill", len(acked), len(unknown))

	n.start()
	st := getStatus(t, n.URL)
	if st.StoreIndexAtStart < uint64(len(acked)) {
		t.Fatalf("store held index %d at restart for %d acknowledged sends: it was rebuilt, not reopened", st.StoreIndexAtStart, len(acked))
	}
	if st.AppliedSinceStart > 100 {
		t.Fatalf("restart re-applied %d entries; only the few the store lacked should be", st.AppliedSinceStart)
	}
	if who, err := alice.Whoami(ctx); err != nil || who.UserID != alice.UserID {
		t.Fatalf("token after restart: %v %v", who, err)
	}
	var name event.RoomNameEventContent
	if err := alice.StateEvent(ctx, room, event.StateRoomName, "", &name); err != nil || name.Name != "Durable" {
		t.Fatalf("room state after restart: %q %v", name.Name, err)
	}
	for txn, evID := range acked {
		if _, err := alice.GetEvent(ctx, room, evID); err != nil {
			t.Fatalf("acknowledged event %s (%s) lost: %v", evID, txn, err)
		}
	}
	for _, txn := range unknown {
		if _, err := sendText(ctx, alice, room, txn, txn); err != nil {
			t.Fatalf("retry of %s after restart: %v", txn, err)
		}
	}
	// Every transaction is in the room exactly once.
	count := map[string]int{}
	from := ""
	for pages := 0; pages < 500; pages++ {
		resp, err := alice.Messages(ctx, room, from, "", mautrix.DirectionBackward, nil, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range resp.Chunk {
			if body, ok := e.Content.Raw["body"].(string); ok && e.Type == event.EventMessage {
				count[body]++
			}
		}
		if resp.End == "" || len(resp.Chunk) == 0 {
			break
		}
		from = resp.End
	}
	for txn := range acked {
		if count[txn] != 1 {
			t.Errorf("acknowledged %s appears %d times", txn, count[txn])
		}
	}
	for _, txn := range unknown {
		if count[txn] != 1 {
			t.Errorf("retried %s appears %d times", txn, count[txn])
		}
	}
}
