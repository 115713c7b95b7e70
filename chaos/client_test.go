package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// A tiny Matrix client over net/http: the tests need the exact status,
// errcode and timing of every attempt, which a full SDK hides behind retries.

var httpClient = &http.Client{Transport: &http.Transport{
	MaxIdleConnsPerHost: 64,
	IdleConnTimeout:     30 * time.Second,
}}

// user is a registered account with one device.
type user struct {
	id, token, device string
}

// apiError is a non-2xx answer.
type apiError struct {
	Status  int
	Errcode string `json:"errcode"`
	Message string `json:"error"`
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%d %s: %s", e.Status, e.Errcode, e.Message)
}

// unknownOutcome reports whether a write that failed with err may still
// have been applied: the connection broke, the request timed out, or the
// server answered 5xx.
func unknownOutcome(err error) bool {
	if err == nil {
		return false
	}
	if ae, ok := err.(*apiError); ok {
		return ae.Status >= 500
	}
	return true
}

// call sends one request and decodes a 2xx JSON answer into out.
func call(ctx context.Context, method, url, token string, body, out any) error {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		ae := &apiError{Status: resp.StatusCode}
		_ = json.Unmarshal(raw, ae)
		return ae
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(raw, out)
}

func withTimeout(d time.Duration, f func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return f(ctx)
}

const clientAPI = "/_matrix/client/v3"

// register creates localpart (no password: nothing to bcrypt) with the
// dummy auth flow.
func register(ctx context.Context, base, localpart string) (*user, error) {
	var resp struct {
		UserID      string `json:"user_id"`
		AccessToken string `json:"access_token"`
		DeviceID    string `json:"device_id"`
	}
	body := map[string]any{"username": localpart, "auth": map[string]string{"type": "m.login.dummy"}}
	if err := call(ctx, http.MethodPost, base+clientAPI+"/register", "", body, &resp); err != nil {
		return nil, fmt.Errorf("register %s: %w", localpart, err)
	}
	return &user{id: resp.UserID, token: resp.AccessToken, device: resp.DeviceID}, nil
}

func createRoom(ctx context.Context, base string, u *user, name string) (string, error) {
	var resp struct {
		RoomID string `json:"room_id"`
	}
	body := map[string]any{"name": name, "preset": "public_chat"}
	err := call(ctx, http.MethodPost, base+clientAPI+"/createRoom", u.token, body, &resp)
	return resp.RoomID, err
}

func joinRoom(ctx context.Context, base string, u *user, room string) error {
	return call(ctx, http.MethodPost, base+clientAPI+"/rooms/"+url.PathEscape(room)+"/join", u.token, map[string]any{}, nil)
}

// sendMessage is one attempt at PUT .../send/m.room.message/{txnId}.
func sendMessage(ctx context.Context, base string, u *user, room, txn, body string) (string, error) {
	var resp struct {
		EventID string `json:"event_id"`
	}
	path := fmt.Sprintf("%s/rooms/%s/send/m.room.message/%s", clientAPI, url.PathEscape(room), url.PathEscape(txn))
	err := call(ctx, http.MethodPut, base+path, u.token, map[string]string{"msgtype": "m.text", "body": body}, &resp)
	return resp.EventID, err
}

// clientEvent is the part of a client-format event the tests look at.
type clientEvent struct {
	EventID  string         `json:"event_id"`
	Type     string         `json:"type"`
	Sender   string         `json:"sender"`
	StateKey *string        `json:"state_key"`
	Content  map[string]any `json:"content"`
}

func (e clientEvent) body() string {
	s, _ := e.Content["body"].(string)
	return s
}

type syncResponse struct {
	NextBatch string `json:"next_batch"`
	Rooms     struct {
		Join map[string]struct {
			Timeline struct {
				Events    []clientEvent `json:"events"`
				Limited   bool          `json:"limited"`
				PrevBatch string        `json:"prev_batch"`
			} `json:"timeline"`
		} `json:"join"`
	} `json:"rooms"`
}

// syncFilter keeps incremental syncs small but gap-free most of the time.
const syncFilter = `{"room":{"timeline":{"limit":100},"state":{"lazy_load_members":true}},"presence":{"types":[]}}`

func syncOnce(ctx context.Context, base string, u *user, since string) (*syncResponse, error) {
	q := url.Values{"timeout": {"0"}, "filter": {syncFilter}}
	if since != "" {
		q.Set("since", since)
	}
	var resp syncResponse
	err := call(ctx, http.MethodGet, base+clientAPI+"/sync?"+q.Encode(), u.token, nil, &resp)
	return &resp, err
}

type messagesPage struct {
	Chunk []clientEvent `json:"chunk"`
	End   string        `json:"end"`
}

// messages is one page of GET /rooms/{roomId}/messages.
func messages(ctx context.Context, base string, u *user, room, dir, from, to string, limit int) (*messagesPage, error) {
	q := url.Values{"dir": {dir}, "limit": {fmt.Sprint(limit)}}
	if from != "" {
		q.Set("from", from)
	}
	if to != "" {
		q.Set("to", to)
	}
	var page messagesPage
	err := call(ctx, http.MethodGet, base+clientAPI+"/rooms/"+url.PathEscape(room)+"/messages?"+q.Encode(), u.token, nil, &page)
	return &page, err
}

// fullTimeline pages forward through a room's whole history on one node.
func fullTimeline(ctx context.Context, base string, u *user, room string) ([]clientEvent, error) {
	var all []clientEvent
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
	var events []clientEvent
	if err := call(ctx, http.MethodGet, base+clientAPI+"/rooms/"+url.PathEscape(room)+"/state", u.token, nil, &events); err != nil {
		return nil, err
	}
	out := make([]string, 0, len(events))
	for _, e := range events {
		sk := ""
		if e.StateKey != nil {
			sk = *e.StateKey
		}
		out = append(out, strings.Join([]string{e.Type, sk, e.EventID}, "|"))
	}
	return out, nil
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
