package fedtest

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/ganglion/ganglion/internal/proctest"
)

// syncFilter keeps syncs small; ephemeral events are what the tests want.
const syncFilter = `{"room":{"timeline":{"limit":20},"state":{"lazy_load_members":true}},"presence":{"types":[]}}`

// syncer is one client's /sync loop position.
type syncer struct {
	u     *user
	since string
}

// next is one /sync, long-polling up to wait for something new.
func (s *syncer) next(ctx context.Context, wait time.Duration) (*proctest.SyncResponse, error) {
	q := url.Values{"timeout": {fmt.Sprint(wait.Milliseconds())}, "filter": {syncFilter}}
	if s.since != "" {
		q.Set("since", s.since)
	}
	var resp proctest.SyncResponse
	if err := s.u.do(ctx, http.MethodGet, "/sync?"+q.Encode(), nil, &resp); err != nil {
		return nil, err
	}
	s.since = resp.NextBatch
	return &resp, nil
}

// until syncs until cond accepts a response or timeout passes; the error
// names the last failure, if any, so a missing feature shows as such.
func (s *syncer) until(ctx context.Context, timeout time.Duration, what string, cond func(*proctest.SyncResponse) bool) error {
	deadline := time.Now().Add(timeout)
	var lastErr error
	for time.Now().Before(deadline) && ctx.Err() == nil {
		resp, err := s.next(ctx, time.Second)
		if err != nil {
			lastErr = err
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if cond(resp) {
			return nil
		}
	}
	if lastErr != nil {
		return fmt.Errorf("%s: %s never saw %s within %v (last error: %w)", s.u.hs.label, s.u.id, what, timeout, lastErr)
	}
	return fmt.Errorf("%s: %s never saw %s within %v", s.u.hs.label, s.u.id, what, timeout)
}

// ephemeral returns the room's ephemeral events of type evType in resp.
func ephemeral(resp *proctest.SyncResponse, room, evType string) []proctest.ClientEvent {
	var out []proctest.ClientEvent
	for _, e := range resp.Rooms.Join[room].Ephemeral.Events {
		if e.Type == evType {
			out = append(out, e)
		}
	}
	return out
}

// typingIncludes reports whether an m.typing event in resp lists userID.
func typingIncludes(resp *proctest.SyncResponse, room, userID string) bool {
	for _, e := range ephemeral(resp, room, "m.typing") {
		ids, _ := e.Content["user_ids"].([]any)
		for _, id := range ids {
			if id == userID {
				return true
			}
		}
	}
	return false
}

// receiptIncludes reports whether an m.receipt event in resp has userID's
// m.read receipt on eventID.
func receiptIncludes(resp *proctest.SyncResponse, room, eventID, userID string) bool {
	for _, e := range ephemeral(resp, room, "m.receipt") {
		byType, _ := e.Content[eventID].(map[string]any)
		reads, _ := byType["m.read"].(map[string]any)
		if _, ok := reads[userID]; ok {
			return true
		}
	}
	return false
}

// messages is one page of GET /rooms/{roomId}/messages.
func (u *user) messages(ctx context.Context, room, dir, from, filter string, limit int) (*proctest.MessagesPage, error) {
	q := url.Values{"dir": {dir}, "limit": {fmt.Sprint(limit)}}
	if from != "" {
		q.Set("from", from)
	}
	if filter != "" {
		q.Set("filter", filter)
	}
	var page proctest.MessagesPage
	err := u.retry(ctx, 20*time.Second, http.MethodGet, roomPath(room)+"/messages?"+q.Encode(), nil, &page)
	return &page, err
}

// roomHistory is a room's history as one server shows it to one user.
type roomHistory struct {
	events        []proctest.ClientEvent // oldest first
	pages         int
	reachedCreate bool // the oldest event is the room's m.room.create
}

// fullHistory pages /messages backwards from the end of the room until the
// server says there is nothing more (no end token) or m.room.create shows,
// at most maxPages pages of 100. Where the local history stops short of the
// creation, the server is expected to backfill over federation. filter is
// /messages' RoomEventFilter ("" for none: what every client sees).
func (u *user) fullHistory(ctx context.Context, room, filter string, maxPages int) (*roomHistory, error) {
	h := &roomHistory{}
	var newestFirst []proctest.ClientEvent
	from := ""
	for h.pages < maxPages {
		page, err := u.messages(ctx, room, "b", from, filter, 100)
		if err != nil {
			return h, fmt.Errorf("page %d: %w", h.pages, err)
		}
		h.pages++
		newestFirst = append(newestFirst, page.Chunk...)
		for _, e := range page.Chunk {
			if e.Type == "m.room.create" {
				h.reachedCreate = true
			}
		}
		if page.End == "" || h.reachedCreate {
			break
		}
		from = page.End
	}
	for i := len(newestFirst) - 1; i >= 0; i-- {
		h.events = append(h.events, newestFirst[i])
	}
	return h, nil
}
