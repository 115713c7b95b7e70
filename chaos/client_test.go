package chaos

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ganglion/ganglion/internal/proctest"
)

// The Matrix client calls the chaos tests make, each one attempt over
// proctest.Call, so a test sees the exact status and timing of every try.

// user is a registered account with one device.
type user struct {
	id, token, device string
}

// unknownOutcome reports whether a write that failed with err may still
// have been applied: the connection broke, the request timed out, or the
// server answered 5xx.
func unknownOutcome(err error) bool {
	if err == nil {
		return false
	}
	if ae, ok := err.(*proctest.APIError); ok {
		return ae.Status >= 500
	}
	return true
}

func withTimeout(d time.Duration, f func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return f(ctx)
}

// register creates localpart (no password: nothing to bcrypt) with the
// dummy auth flow.
func register(ctx context.Context, base, localpart string) (*user, error) {
	var resp struct {
		UserID      string `json:"user_id"`
		AccessToken string `json:"access_token"`
		DeviceID    string `json:"device_id"`
	}
	body := map[string]any{"username": localpart, "auth": map[string]string{"type": "m.login.dummy"}}
	if err := proctest.Call(ctx, http.MethodPost, base, proctest.ClientAPI+"/register", "", body, &resp); err != nil {
		return nil, fmt.Errorf("register %s: %w", localpart, err)
	}
	return &user{id: resp.UserID, token: resp.AccessToken, device: resp.DeviceID}, nil
}

func createRoom(ctx context.Context, base string, u *user, name string) (string, error) {
	var resp struct {
		RoomID string `json:"room_id"`
	}
	body := map[string]any{"name": name, "preset": "public_chat"}
	err := proctest.Call(ctx, http.MethodPost, base, proctest.ClientAPI+"/createRoom", u.token, body, &resp)
	return resp.RoomID, err
}

func joinRoom(ctx context.Context, base string, u *user, room string) error {
	return proctest.Call(ctx, http.MethodPost, base, proctest.ClientAPI+"/rooms/"+url.PathEscape(room)+"/join", u.token, map[string]any{}, nil)
}

// sendMessage is one attempt at PUT .../send/m.room.message/{txnId}.
func sendMessage(ctx context.Context, base string, u *user, room, txn, body string) (string, error) {
	var resp struct {
		EventID string `json:"event_id"`
	}
	path := fmt.Sprintf("%s/rooms/%s/send/m.room.message/%s", proctest.ClientAPI, url.PathEscape(room), url.PathEscape(txn))
	err := proctest.Call(ctx, http.MethodPut, base, path, u.token, map[string]string{"msgtype": "m.text", "body": body}, &resp)
	return resp.EventID, err
}

// syncFilter keeps incremental syncs small but gap-free most of the time.
const syncFilter = `{"room":{"timeline":{"limit":100},"state":{"lazy_load_members":true}},"presence":{"types":[]}}`

func syncOnce(ctx context.Context, base string, u *user, since string) (*proctest.SyncResponse, error) {
	q := url.Values{"timeout": {"0"}, "filter": {syncFilter}}
	if since != "" {
		q.Set("since", since)
	}
	var resp proctest.SyncResponse
	err := proctest.Call(ctx, http.MethodGet, base, proctest.ClientAPI+"/sync?"+q.Encode(), u.token, nil, &resp)
	return &resp, err
}

// messages is one page of GET /rooms/{roomId}/messages.
func messages(ctx context.Context, base string, u *user, room, dir, from, to string, limit int) (*proctest.MessagesPage, error) {
	q := url.Values{"dir": {dir}, "limit": {fmt.Sprint(limit)}}
	if from != "" {
		q.Set("from", from)
	}
	if to != "" {
		q.Set("to", to)
	}
	var page proctest.MessagesPage
	err := proctest.Call(ctx, http.MethodGet, base, proctest.ClientAPI+"/rooms/"+url.PathEscape(room)+"/messages?"+q.Encode(), u.token, nil, &page)
	return &page, err
}

// fullTimeline pages forward through a room's whole history on one node.
func fullTimeline(ctx context.Context, base string, u *user, room string) ([]proctest.ClientEvent, error) {
	var all []proctest.ClientEvent
	from := ""
	for pages := 0; pages < 200; pages++ {
		page, err := messages(ctx, base, u, room, "f", from, "", 1000)
		if err != nil {
			return nil, err
		}
		all = append(all, page.Chunk...)
		if page.End == "" || len(page.Chunk) == 0 {
			return all, nil
		}
		from = page.End
	}
	return nil, fmt.Errorf("room %s: more than 200 pages", room)
}

// roomState returns the current state as "type|state_key|event_id" lines.
func roomState(ctx context.Context, base string, u *user, room string) ([]string, error) {
	var events []proctest.ClientEvent
	if err := proctest.Call(ctx, http.MethodGet, base, proctest.ClientAPI+"/rooms/"+url.PathEscape(room)+"/state", u.token, nil, &events); err != nil {
		return nil, err
	}
	return proctest.StateLines(events), nil
}

// tokenPos is the stream position a sync token covers ("s<pos>_..."),
// or -1 if the token has another shape.
func tokenPos(tok string) int64 {
	var pos int64
	rest, ok := strings.CutPrefix(tok, "s")
	if !ok {
		return -1
	}
	digits, _, _ := strings.Cut(rest, "_")
	if _, err := fmt.Sscan(digits, &pos); err != nil {
		return -1
	}
	return pos
}
