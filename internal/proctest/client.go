package proctest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// A tiny Matrix client over net/http: the tests need the exact status,
// errcode and timing of every attempt, which a full SDK hides behind
// retries. What counts as a retryable outcome differs per suite and stays
// with each suite.

// ClientAPI is the client-server API prefix the tests speak.
const ClientAPI = "/_matrix/client/v3"

// httpClient keeps enough idle connections for many concurrent clients
// against one node, so load tests do not measure TCP handshakes.
var httpClient = &http.Client{Transport: &http.Transport{
	MaxIdleConnsPerHost: 64,
	IdleConnTimeout:     30 * time.Second,
}}

// APIError is a non-2xx answer, with what was asked.
type APIError struct {
	Method, Path string
	Status       int
	Errcode      string `json:"errcode"`
	Message      string `json:"error"`
	RetryAfterMS int64  `json:"retry_after_ms"`
	Body         string `json:"-"` // the raw answer, cut to 600 bytes
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%s %s -> %d %s", e.Method, e.Path, e.Status, e.Body)
}

// Call sends one request to base+path and decodes a 2xx JSON answer into
// out; any other status is an *APIError (not wrapped).
func Call(ctx context.Context, method, base, path, token string, body, out any) error {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
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
		ae := &APIError{Method: method, Path: path, Status: resp.StatusCode, Body: string(raw)}
		if len(ae.Body) > 600 {
			ae.Body = ae.Body[:600] + "..."
		}
		_ = json.Unmarshal(raw, ae)
		return ae
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(raw, out)
}

// ClientEvent is the part of a client-format event the tests look at.
type ClientEvent struct {
	EventID  string         `json:"event_id"`
	Type     string         `json:"type"`
	Sender   string         `json:"sender"`
	StateKey *string        `json:"state_key"`
	Content  map[string]any `json:"content"`
}

// Body is content.body of a message, "" for anything else.
func (e ClientEvent) Body() string {
	s, _ := e.Content["body"].(string)
	return s
}

// StateLines renders state events as "type|state_key|event_id" lines, a
// form two servers' or nodes' views can be compared in.
func StateLines(events []ClientEvent) []string {
	out := make([]string, 0, len(events))
	for _, e := range events {
		sk := ""
		if e.StateKey != nil {
			sk = *e.StateKey
		}
		out = append(out, strings.Join([]string{e.Type, sk, e.EventID}, "|"))
	}
	return out
}

// JoinedRoom is one room under rooms.join of a /sync answer.
type JoinedRoom struct {
	Timeline struct {
		Events    []ClientEvent `json:"events"`
		Limited   bool          `json:"limited"`
		PrevBatch string        `json:"prev_batch"`
	} `json:"timeline"`
	Ephemeral struct {
		Events []ClientEvent `json:"events"`
	} `json:"ephemeral"`
}

// SyncResponse is the part of a /sync answer the tests read.
type SyncResponse struct {
	NextBatch string `json:"next_batch"`
	Rooms     struct {
		Join   map[string]JoinedRoom      `json:"join"`
		Invite map[string]json.RawMessage `json:"invite"`
	} `json:"rooms"`
}

// MessagesPage is one answer of GET /rooms/{roomId}/messages.
type MessagesPage struct {
	Chunk []ClientEvent `json:"chunk"`
	Start string        `json:"start"`
	End   string        `json:"end"`
}
