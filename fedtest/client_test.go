package fedtest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ganglion/ganglion/internal/proctest"
)

// The fedtest client: each user talks to one homeserver through any of its
// nodes over proctest.Call, retrying a request while its outcome is unknown.

// unknownOutcome reports whether a request that failed with err may still
// have taken effect (or may succeed when repeated): the connection broke,
// the attempt timed out, or the server answered 5xx or 429.
func unknownOutcome(err error) bool {
	if err == nil {
		return false
	}
	var ae *proctest.APIError
	if errors.As(err, &ae) {
		return ae.Status >= 500 || ae.Status == http.StatusTooManyRequests
	}
	return true
}

// user is a registered account with one device, talking to one homeserver
// through any of its nodes: it moves to the next node when one stops
// answering, as a client behind a load balancer would.
type user struct {
	id, token, device string
	hs                *homeserver

	mu    sync.Mutex
	bases []string
	cur   int

	attempts, unknown atomic.Int64 // requests made; those with an unknown outcome
}

func (u *user) base() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.bases[u.cur]
}

// failover moves to the next node after a failed attempt on base.
func (u *user) failover(base string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.bases[u.cur] == base {
		u.cur = (u.cur + 1) % len(u.bases)
	}
}

// do is one attempt of an authenticated client API request (path below
// /_matrix/client/v3), bounded to 15 s.
func (u *user) do(ctx context.Context, method, path string, body, out any) error {
	base := u.base()
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	err := proctest.Call(ctx, method, base, proctest.ClientAPI+path, u.token, body, out)
	u.attempts.Add(1)
	if unknownOutcome(err) {
		u.unknown.Add(1)
		u.failover(base)
	}
	return err
}

// retry repeats one request, unchanged (so a send keeps its txnId), while
// the outcome is unknown, until ctx ends or giveUp passes.
func (u *user) retry(ctx context.Context, giveUp time.Duration, method, path string, body, out any) error {
	deadline := time.Now().Add(giveUp)
	for attempt := 0; ; attempt++ {
		err := u.do(ctx, method, path, body, out)
		if !unknownOutcome(err) || time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		wait := time.Duration(50*(attempt+1)) * time.Millisecond
		var ae *proctest.APIError
		if errors.As(err, &ae) && ae.RetryAfterMS > 0 {
			wait = time.Duration(ae.RetryAfterMS) * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(min(wait, time.Second)):
		}
	}
}

// register creates localpart on hs (no password, dummy auth) and returns
// the user, retrying while a fresh server still answers 503.
func register(ctx context.Context, hs *homeserver, localpart string) (*user, error) {
	var resp struct {
		UserID      string `json:"user_id"`
		AccessToken string `json:"access_token"`
		DeviceID    string `json:"device_id"`
	}
	u := &user{hs: hs, bases: hs.urls()}
	body := map[string]any{"username": localpart, "auth": map[string]string{"type": "m.login.dummy"}}
	deadline := time.Now().Add(30 * time.Second)
	for {
		base := u.base()
		err := proctest.Call(ctx, http.MethodPost, base, proctest.ClientAPI+"/register", "", body, &resp)
		if err == nil {
			u.id, u.token, u.device = resp.UserID, resp.AccessToken, resp.DeviceID
			return u, nil
		}
		if !unknownOutcome(err) || time.Now().After(deadline) {
			return nil, fmt.Errorf("register %s on %s: %w", localpart, hs.label, err)
		}
		u.failover(base)
		time.Sleep(100 * time.Millisecond)
	}
}

func roomPath(room string) string { return "/rooms/" + url.PathEscape(room) }

func (u *user) createRoom(ctx context.Context, name string) (string, error) {
	var resp struct {
		RoomID string `json:"room_id"`
	}
	body := map[string]any{"name": name, "preset": "public_chat"}
	err := u.retry(ctx, 20*time.Second, http.MethodPost, "/createRoom", body, &resp)
	return resp.RoomID, err
}

func (u *user) invite(ctx context.Context, room, userID string) error {
	return u.retry(ctx, 20*time.Second, http.MethodPost, roomPath(room)+"/invite", map[string]any{"user_id": userID}, nil)
}

// join is POST /join/{roomIdOrAlias} with the servers to try (via, and the
// deprecated server_name that older servers read).
func (u *user) join(ctx context.Context, room string, via ...string) error {
	q := url.Values{}
	for _, s := range via {
		q.Add("via", s)
		q.Add("server_name", s)
	}
	path := "/join/" + url.PathEscape(room)
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	return u.retry(ctx, 30*time.Second, http.MethodPost, path, map[string]any{}, nil)
}

// send is PUT .../send/m.room.message/{txnId}, retried with the same txnId
// after any unknown outcome.
func (u *user) send(ctx context.Context, room, txn, body string, giveUp time.Duration) (string, error) {
	var resp struct {
		EventID string `json:"event_id"`
	}
	path := roomPath(room) + "/send/m.room.message/" + url.PathEscape(txn)
	err := u.retry(ctx, giveUp, http.MethodPut, path, map[string]string{"msgtype": "m.text", "body": body}, &resp)
	return resp.EventID, err
}

func (u *user) sendState(ctx context.Context, room, evType, stateKey string, content any) (string, error) {
	var resp struct {
		EventID string `json:"event_id"`
	}
	path := roomPath(room) + "/state/" + url.PathEscape(evType) + "/" + url.PathEscape(stateKey)
	err := u.retry(ctx, 20*time.Second, http.MethodPut, path, content, &resp)
	return resp.EventID, err
}

func (u *user) typing(ctx context.Context, room string, on bool) error {
	body := map[string]any{"typing": on}
	if on {
		body["timeout"] = 30000
	}
	return u.retry(ctx, 10*time.Second, http.MethodPut, roomPath(room)+"/typing/"+url.PathEscape(u.id), body, nil)
}

func (u *user) receipt(ctx context.Context, room, eventID string) error {
	return u.retry(ctx, 10*time.Second, http.MethodPost, roomPath(room)+"/receipt/m.read/"+url.PathEscape(eventID), map[string]any{}, nil)
}

// state returns the room's current state events.
func (u *user) state(ctx context.Context, room string) ([]proctest.ClientEvent, error) {
	var events []proctest.ClientEvent
	err := u.retry(ctx, 10*time.Second, http.MethodGet, roomPath(room)+"/state", nil, &events)
	return events, err
}

// stateEvent returns the content of one state event.
func (u *user) stateEvent(ctx context.Context, room, evType, stateKey string) (map[string]any, error) {
	var content map[string]any
	path := roomPath(room) + "/state/" + url.PathEscape(evType) + "/" + url.PathEscape(stateKey)
	err := u.retry(ctx, 10*time.Second, http.MethodGet, path, nil, &content)
	return content, err
}
