package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"
)

const (
	apiPrefix    = "/_matrix/client/v3"
	setupWorkers = 16 // parallelism of untimed setup (register, join, seed)
	maxErrBody   = 300
)

// newHTTPClient builds the one client all users share. Idle connections per
// host must cover the largest sender pool, otherwise connections churn and
// we would measure TCP handshakes instead of the homeserver.
func newHTTPClient(cfg *config) *http.Client {
	idle := max(cfg.senders, cfg.oneRoomSenders, setupWorkers) + 16
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          idle * len(cfg.hs),
		MaxIdleConnsPerHost:   idle,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	// No client-wide Timeout: long-poll syncs legitimately take 30 s and
	// every request is bounded by the run's context instead.
	return &http.Client{Transport: tr}
}

// httpError is a non-2xx reply; it is what the scenarios count as errors.
type httpError struct {
	method, path string
	status       int
	body         string
	retryAfter   time.Duration
}

func (e *httpError) Error() string {
	return fmt.Sprintf("%s %s: HTTP %d: %s", e.method, e.path, e.status, e.body)
}

// client is one logged-in (or not yet registered) user bound to one node.
type client struct {
	hc     *http.Client
	base   string
	token  string
	userID string
	txnPfx string
	txn    atomic.Uint64
}

// do performs one request and returns the full body of a 2xx reply. The
// body is read completely so the connection can be reused and so callers
// timing do() include the transfer of the response.
func (c *client) do(ctx context.Context, method, path string, q url.Values, body any) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	u := c.base + apiPrefix + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		he := &httpError{method: method, path: apiPrefix + path, status: resp.StatusCode, body: string(data)}
		if len(he.body) > maxErrBody {
			he.body = he.body[:maxErrBody] + "..."
		}
		he.retryAfter = retryAfter(resp.Header.Get("Retry-After"), data)
		return data, he
	}
	return data, nil
}

func (c *client) doJSON(ctx context.Context, method, path string, body, out any) error {
	data, err := c.do(ctx, method, path, nil, body)
	if err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: bad JSON reply: %w", method, path, err)
	}
	return nil
}

// retryAfter reads the M_LIMIT_EXCEEDED hint from the body or header.
func retryAfter(header string, body []byte) time.Duration {
	var rl struct {
		RetryAfterMS int64 `json:"retry_after_ms"`
	}
	if json.Unmarshal(body, &rl) == nil && rl.RetryAfterMS > 0 {
		return time.Duration(rl.RetryAfterMS) * time.Millisecond
	}
	if s, err := strconv.Atoi(header); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	return 0
}

// withRetry retries setup calls that were rate limited: setup is untimed and
// should not fail just because a server protects its registration endpoint.
func withRetry(ctx context.Context, fn func() error) error {
	for attempt := 0; ; attempt++ {
		err := fn()
		var he *httpError
		if err == nil || !errors.As(err, &he) || he.status != http.StatusTooManyRequests || attempt >= 10 {
			return err
		}
		wait := min(max(he.retryAfter, 200*time.Millisecond), 5*time.Second)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
	}
}

// register creates a fresh user on base via the m.login.dummy flow.
func (r *runner) register(ctx context.Context, base, role string) (*client, error) {
	name := fmt.Sprintf("bench_%s_%s%d", r.runID, role, r.users.Add(1))
	c := &client{hc: r.hc, base: base}
	auth := map[string]any{"type": "m.login.dummy"}
	req := map[string]any{"username": name, "password": "bench-" + r.runID, "auth": auth}
	var reply struct {
		UserID      string `json:"user_id"`
		AccessToken string `json:"access_token"`
	}
	err := withRetry(ctx, func() error { return c.doJSON(ctx, http.MethodPost, "/register", req, &reply) })
	var he *httpError
	if errors.As(err, &he) && he.status == http.StatusUnauthorized {
		// User-interactive auth: the server opened a session; complete the
		// dummy stage inside it.
		var uia struct {
			Session string `json:"session"`
		}
		if json.Unmarshal([]byte(he.body), &uia) != nil || uia.Session == "" {
			return nil, fmt.Errorf("register %s: %w", name, err)
		}
		auth["session"] = uia.Session
		err = withRetry(ctx, func() error { return c.doJSON(ctx, http.MethodPost, "/register", req, &reply) })
	}
	if err != nil {
		return nil, fmt.Errorf("register %s: %w", name, err)
	}
	if reply.AccessToken == "" {
		return nil, fmt.Errorf("register %s: no access_token in reply", name)
	}
	c.token, c.userID = reply.AccessToken, reply.UserID
	c.txnPfx = fmt.Sprintf("%s.%s.", r.runID, name)
	return c, nil
}

// createRoom makes a public room so other bench users can join it directly.
func (c *client) createRoom(ctx context.Context, name string) (string, error) {
	var reply struct {
		RoomID string `json:"room_id"`
	}
	body := map[string]any{"preset": "public_chat", "name": name}
	err := withRetry(ctx, func() error { return c.doJSON(ctx, http.MethodPost, "/createRoom", body, &reply) })
	if err == nil && reply.RoomID == "" {
		err = errors.New("createRoom: no room_id in reply")
	}
	return reply.RoomID, err
}

// join retries a few times on any failure: on a cluster the room may not
// have reached the joining node yet.
func (c *client) join(ctx context.Context, roomID string) error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		err = withRetry(ctx, func() error {
			return c.doJSON(ctx, http.MethodPost, "/join/"+url.PathEscape(roomID), struct{}{}, nil)
		})
		if err == nil || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(attempt+1) * 100 * time.Millisecond):
		}
	}
	return err
}

// send posts one m.text message and returns its event ID.
func (c *client) send(ctx context.Context, roomID, text string) (string, error) {
	txn := c.txnPfx + strconv.FormatUint(c.txn.Add(1), 10)
	path := "/rooms/" + url.PathEscape(roomID) + "/send/m.room.message/" + url.PathEscape(txn)
	var reply struct {
		EventID string `json:"event_id"`
	}
	err := c.doJSON(ctx, http.MethodPut, path, map[string]string{"msgtype": "m.text", "body": text}, &reply)
	if err == nil && reply.EventID == "" {
		err = fmt.Errorf("PUT %s: no event_id in reply", path)
	}
	return reply.EventID, err
}

// syncResp is the subset of a /sync reply the scenarios look at.
type syncResp struct {
	NextBatch string `json:"next_batch"`
	Rooms     struct {
		Join map[string]struct {
			Timeline struct {
				Events []struct {
					EventID string `json:"event_id"`
				} `json:"events"`
			} `json:"timeline"`
		} `json:"join"`
	} `json:"rooms"`
}

// syncRaw returns the undecoded body so callers can time the request alone.
func (c *client) syncRaw(ctx context.Context, since string, timeoutMS int) ([]byte, error) {
	q := url.Values{}
	if since != "" {
		q.Set("since", since)
		q.Set("timeout", strconv.Itoa(timeoutMS))
	}
	return c.do(ctx, http.MethodGet, "/sync", q, nil)
}

func (c *client) sync(ctx context.Context, since string, timeoutMS int) (*syncResp, error) {
	data, err := c.syncRaw(ctx, since, timeoutMS)
	if err != nil {
		return nil, err
	}
	var s syncResp
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("GET /sync: bad JSON reply: %w", err)
	}
	return &s, nil
}
