package e2e

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// newUser registers localpart with m.login.dummy and returns a logged-in client.
func newUser(t *testing.T, base, localpart string) *mautrix.Client {
	t.Helper()
	cli, err := mautrix.NewClient(base, "", "")
	if err != nil {
		t.Fatal(err)
	}
	cli.DefaultHTTPRetries = 0
	resp, err := cli.RegisterDummy(context.Background(), &mautrix.ReqRegister[any]{Username: localpart, Password: "pw-" + localpart})
	if err != nil {
		t.Fatalf("register %s: %v", localpart, err)
	}
	cli.UserID, cli.AccessToken, cli.DeviceID = resp.UserID, resp.AccessToken, resp.DeviceID
	return cli
}

func errcode(err error) string {
	var he mautrix.HTTPError
	if errors.As(err, &he) && he.RespError != nil {
		return he.RespError.ErrCode
	}
	return fmt.Sprintf("<%v>", err)
}

func sendText(ctx context.Context, cli *mautrix.Client, room id.RoomID, body, txn string) (id.EventID, error) {
	resp, err := cli.SendMessageEvent(ctx, room, event.EventMessage,
		&event.MessageEventContent{MsgType: event.MsgText, Body: body}, mautrix.ReqSendEvent{TransactionID: txn})
	if err != nil {
		return "", err
	}
	return resp.EventID, nil
}

// TestClientJourney is the core acceptance run: everything an app does,
// only through HTTP with the mautrix client.
func TestClientJourney(t *testing.T) {
	n := newNode(t)
	n.start()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	alice := newUser(t, n.URL, "alice")
	bob := newUser(t, n.URL, "bob")

	created, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Name: "Lobby", Topic: "chat here",
		RoomAliasName: "lobby", Invite: []id.UserID{bob.UserID}, Preset: "private_chat"})
	if err != nil {
		t.Fatal(err)
	}
	room := created.RoomID
	joined, err := bob.JoinRoom(ctx, "#lobby:e2e.test", nil)
	if err != nil || joined.RoomID != room {
		t.Fatalf("join by alias: %v %v", joined, err)
	}
	var name event.RoomNameEventContent
	if err := bob.StateEvent(ctx, room, event.StateRoomName, "", &name); err != nil || name.Name != "Lobby" {
		t.Fatalf("room name: %q %v", name.Name, err)
	}

	t.Run("long-poll wakes on each new message", func(t *testing.T) { longPollWakes(t, ctx, alice, bob, room) })

	sent := exchange(t, ctx, alice, bob, room, 1000)
	t.Run("paginate back and forth", func(t *testing.T) { paginateBoth(t, ctx, bob, room, sent) })

	t.Run("retried txnId returns the same event", func(t *testing.T) {
		first, err := sendText(ctx, alice, room, "once", "retry-me")
		if err != nil {
			t.Fatal(err)
		}
		again, err := sendText(ctx, alice, room, "once", "retry-me")
		if err != nil || again != first {
			t.Fatalf("retry gave %s (%v), want %s", again, err, first)
		}
	})

	t.Run("kick ban leave", func(t *testing.T) { kickBanLeave(t, ctx, n.URL, alice, bob, room) })
}

func longPollWakes(t *testing.T, ctx context.Context, alice, bob *mautrix.Client, room id.RoomID) {
	first, err := bob.SyncRequest(ctx, 0, "", "", false, "")
	if err != nil {
		t.Fatal(err)
	}
	since := first.NextBatch
	for i := 0; i < 20; i++ {
		type result struct {
			resp *mautrix.RespSync
			err  error
			at   time.Time
		}
		got := make(chan result, 1)
		go func() {
			r, err := bob.SyncRequest(ctx, 30000, since, "", false, "")
			got <- result{r, err, time.Now()}
		}()
		// Give the long-poll a moment to park; if it has not, the message
		// simply arrives in its first pass, which is also correct.
		time.Sleep(20 * time.Millisecond)
		evID, err := sendText(ctx, alice, room, fmt.Sprint("wake ", i), fmt.Sprint("wake-", i))
		if err != nil {
			t.Fatal(err)
		}
		sentAt := time.Now()
		select {
		case r := <-got:
			if r.err != nil {
				t.Fatal(r.err)
			}
			if !timelineHas(r.resp, room, evID) {
				// The sync may have returned something else first; the next
				// one must carry the message.
				r2, err := bob.SyncRequest(ctx, 30000, r.resp.NextBatch, "", false, "")
				if err != nil || !timelineHas(r2, room, evID) {
					t.Fatalf("message %d not delivered by long-poll: %v", i, err)
				}
				r.resp = r2
			}
			if wait := r.at.Sub(sentAt); wait > 5*time.Second {
				t.Fatalf("long-poll woke %v after the send", wait)
			}
			since = r.resp.NextBatch
		case <-time.After(20 * time.Second):
			t.Fatalf("long-poll did not wake for message %d", i)
		}
	}
}

func timelineHas(r *mautrix.RespSync, room id.RoomID, evID id.EventID) bool {
	jr, ok := r.Rooms.Join[room]
	if !ok {
		return false
	}
	for _, e := range jr.Timeline.Events {
		if e.ID == evID {
			return true
		}
	}
	return false
}

// exchange sends total messages, half from each user concurrently, and
// returns the acknowledged event IDs.
func exchange(t *testing.T, ctx context.Context, alice, bob *mautrix.Client, room id.RoomID, total int) map[id.EventID]string {
	var mu sync.Mutex
	sent := map[id.EventID]string{}
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for _, cli := range []*mautrix.Client{alice, bob} {
		wg.Add(1)
		go func(cli *mautrix.Client) {
			defer wg.Done()
			for i := 0; i < total/2; i++ {
				body := fmt.Sprintf("%s %d", cli.UserID, i)
				evID, err := sendText(ctx, cli, room, body, fmt.Sprint("msg-", i))
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				sent[evID] = body
				mu.Unlock()
			}
		}(cli)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(sent) != total {
		t.Fatalf("%d distinct event IDs for %d sends", len(sent), total)
	}
	return sent
}

func paginateBoth(t *testing.T, ctx context.Context, cli *mautrix.Client, room id.RoomID, sent map[id.EventID]string) {
	var backward []id.EventID
	from := ""
	for pages := 0; pages < 1000; pages++ {
		resp, err := cli.Messages(ctx, room, from, "", mautrix.DirectionBackward, nil, 37)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range resp.Chunk {
			backward = append(backward, e.ID)
		}
		if resp.End == "" || len(resp.Chunk) == 0 {
			break
		}
		from = resp.End
	}
	var forward []id.EventID
	from = ""
	for pages := 0; pages < 1000; pages++ {
		resp, err := cli.Messages(ctx, room, from, "", mautrix.DirectionForward, nil, 41)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range resp.Chunk {
			forward = append(forward, e.ID)
		}
		if resp.End == "" || len(resp.Chunk) == 0 {
			break
		}
		from = resp.End
	}
	if len(forward) != len(backward) {
		t.Fatalf("forward pagination saw %d events, backward %d", len(forward), len(backward))
	}
	seen := map[id.EventID]bool{}
	for i, evID := range forward {
		if seen[evID] {
			t.Fatalf("event %s paginated twice", evID)
		}
		seen[evID] = true
		if backward[len(backward)-1-i] != evID {
			t.Fatalf("orders differ at %d: forward %s, backward %s", i, evID, backward[len(backward)-1-i])
		}
	}
	for evID := range sent {
		if !seen[evID] {
			t.Fatalf("acknowledged event %s missing from pagination", evID)
		}
	}
}

func kickBanLeave(t *testing.T, ctx context.Context, base string, alice, bob *mautrix.Client, room id.RoomID) {
	if _, err := alice.KickUser(ctx, room, &mautrix.ReqKickUser{UserID: bob.UserID, Reason: "bye"}); err != nil {
		t.Fatal(err)
	}
	if _, err := sendText(ctx, bob, room, "still here?", "after-kick"); errcode(err) != "M_FORBIDDEN" {
		t.Fatalf("kicked user send: %v", err)
	}
	if _, err := bob.JoinRoomByID(ctx, room); errcode(err) != "M_FORBIDDEN" {
		t.Fatalf("kicked user rejoining an invite-only room: %v", err)
	}
	carol := newUser(t, base, "carol")
	if _, err := alice.BanUser(ctx, room, &mautrix.ReqBanUser{UserID: carol.UserID}); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.InviteUser(ctx, room, &mautrix.ReqInviteUser{UserID: carol.UserID}); errcode(err) != "M_FORBIDDEN" {
		t.Fatalf("inviting a banned user: %v", err)
	}
	if _, err := alice.UnbanUser(ctx, room, &mautrix.ReqUnbanUser{UserID: carol.UserID}); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.InviteUser(ctx, room, &mautrix.ReqInviteUser{UserID: carol.UserID}); err != nil {
		t.Fatal(err)
	}
	if _, err := carol.JoinRoomByID(ctx, room); err != nil {
		t.Fatal(err)
	}
	if _, err := carol.LeaveRoom(ctx, room); err != nil {
		t.Fatal(err)
	}
	members, err := alice.JoinedMembers(ctx, room)
	if err != nil {
		t.Fatal(err)
	}
	if _, in := members.Joined[carol.UserID]; in || len(members.Joined) != 1 {
		t.Fatalf("joined members after kick and leave: %v", members.Joined)
	}
}
