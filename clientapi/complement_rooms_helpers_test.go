package clientapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/ganglion/ganglion/config"
)

// A small copy of Complement's client (client/client.go, client/sync.go)
// for the room, sync and directory tests reproduced in the
// complement_rooms_*_test.go files: same requests, same sync-until loop,
// same checks. Names carry the cr prefix.

// crServer is testServer with, when CR_ROOM_VERSION is set, that default
// room version: Complement runs against the server's default, and older
// Complement tests assume one before v12 (creators listed in power levels).
func crServer(t *testing.T) string {
	base, _ := crServerAPI(t)
	return base
}

func crServerAPI(t *testing.T) (string, *API) {
	t.Helper()
	if v := os.Getenv("CR_ROOM_VERSION"); v != "" {
		return testServerAPI(t, func(c *config.Config) { c.Rooms.DefaultVersion = v })
	}
	return testServerAPI(t)
}

type crClient struct {
	base, UserID, token string
}

var crTxn atomic.Int64

// crUser registers a fresh user on the test server.
func crUser(t *testing.T, base, localpart string) *crClient {
	t.Helper()
	userID, token := registerUser(t, base, localpart)
	return &crClient{base: base, UserID: userID, token: token}
}

// crPath joins already-unescaped path segments, escaping each.
func crPath(parts ...string) string {
	var b strings.Builder
	for _, p := range parts {
		b.WriteString("/")
		b.WriteString(url.PathEscape(p))
	}
	return b.String()
}

func crV3(parts ...string) string {
	return "/_matrix/client/v3" + crPath(parts...)
}

func crV1(parts ...string) string {
	return "/_matrix/client/v1" + crPath(parts...)
}

// do sends a request (body: nil, []byte raw, or a value to marshal) and
// returns the status and the parsed body.
func (c *crClient) do(t *testing.T, method, path string, body any, q url.Values) (int, gjson.Result) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if len(raw) > 0 && !json.Valid(raw) {
		t.Fatalf("%s %s: non-JSON answer %d: %s", method, path, resp.StatusCode, raw)
	}
	return resp.StatusCode, gjson.ParseBytes(raw)
}

// mustDo is do that fails the test on any status but 200.
func (c *crClient) mustDo(t *testing.T, method, path string, body any, q url.Values) gjson.Result {
	t.Helper()
	status, res := c.do(t, method, path, body, q)
	if status != 200 {
		t.Fatalf("%s %s: want 200, got %d %s", method, path, status, res.Raw)
	}
	return res
}

// crWant checks a status and, when set, the errcode.
func crWant(t *testing.T, what string, status int, res gjson.Result, wantStatus int, errcode string) {
	t.Helper()
	if status != wantStatus || (errcode != "" && res.Get("errcode").Str != errcode) {
		t.Fatalf("%s: want %d %s, got %d %s", what, wantStatus, errcode, status, res.Raw)
	}
}

func (c *crClient) createRoom(t *testing.T, body any) string {
	t.Helper()
	if body == nil {
		body = map[string]any{}
	}
	return c.mustDo(t, "POST", crV3("createRoom"), body, nil).Get("room_id").Str
}

func (c *crClient) joinRoom(t *testing.T, roomIDOrAlias string) {
	t.Helper()
	c.mustDo(t, "POST", crV3("join", roomIDOrAlias), map[string]any{}, nil)
}

func (c *crClient) leaveRoom(t *testing.T, roomID string) {
	t.Helper()
	c.mustDo(t, "POST", crV3("rooms", roomID, "leave"), map[string]any{}, nil)
}

func (c *crClient) inviteRoom(t *testing.T, roomID, userID string) {
	t.Helper()
	c.mustDo(t, "POST", crV3("rooms", roomID, "invite"), map[string]any{"user_id": userID}, nil)
}

// sendEvent sends a message-like event with a fresh transaction ID.
func (c *crClient) sendEvent(t *testing.T, roomID, evType string, content any) string {
	t.Helper()
	txn := fmt.Sprintf("crtxn-%d", crTxn.Add(1))
	return c.mustDo(t, "PUT", crV3("rooms", roomID, "send", evType, txn), content, nil).Get("event_id").Str
}

func (c *crClient) sendState(t *testing.T, roomID, evType, stateKey string, content any) string {
	t.Helper()
	return c.mustDo(t, "PUT", crV3("rooms", roomID, "state", evType, stateKey), content, nil).Get("event_id").Str
}

// sendEventSynced is Complement's SendEventSynced: send, then sync until
// the event shows in the room's timeline.
func (c *crClient) sendEventSynced(t *testing.T, roomID, evType string, content any) string {
	t.Helper()
	eventID := c.sendEvent(t, roomID, evType, content)
	c.mustSyncUntil(t, crSyncReq{}, crTimelineHasEventID(roomID, eventID))
	return eventID
}

func (c *crClient) sendStateSynced(t *testing.T, roomID, evType, stateKey string, content any) string {
	t.Helper()
	eventID := c.sendState(t, roomID, evType, stateKey, content)
	c.mustSyncUntil(t, crSyncReq{}, crTimelineHasEventID(roomID, eventID))
	return eventID
}

func (c *crClient) stateContent(t *testing.T, roomID, evType, stateKey string) gjson.Result {
	t.Helper()
	return c.mustDo(t, "GET", crV3("rooms", roomID, "state", evType, stateKey), nil, nil)
}

func (c *crClient) createFilter(t *testing.T, filter any) string {
	t.Helper()
	return c.mustDo(t, "POST", crV3("user", c.UserID, "filter"), filter, nil).Get("filter_id").Str
}

// crSyncReq mirrors Complement's SyncReq; the timeout defaults to 1000 ms.
type crSyncReq struct {
	Since, Filter, Timeout string
	FullState              bool
}

func (c *crClient) mustSync(t *testing.T, req crSyncReq) (gjson.Result, string) {
	t.Helper()
	q := url.Values{"timeout": {"1000"}}
	if req.Timeout != "" {
		q.Set("timeout", req.Timeout)
	}
	if req.Since != "" {
		q.Set("since", req.Since)
	}
	if req.Filter != "" {
		q.Set("filter", req.Filter)
	}
	if req.FullState {
		q.Set("full_state", "true")
	}
	res := c.mustDo(t, "GET", crV3("sync"), nil, q)
	next := res.Get("next_batch").Str
	if next == "" {
		t.Fatalf("sync without next_batch: %s", res.Raw)
	}
	return res, next
}

// crCheck is a SyncCheckOpt: nil when the response satisfies it.
type crCheck func(clientUserID string, res gjson.Result) error

// mustSyncUntil syncs (advancing since) until every check has passed once.
func (c *crClient) mustSyncUntil(t *testing.T, req crSyncReq, checks ...crCheck) string {
	t.Helper()
	start := time.Now()
	var lastErr error
	for n := 1; ; n++ {
		if time.Since(start) > 5*time.Second {
			t.Fatalf("%s mustSyncUntil timed out after %d responses: %v", c.UserID, n-1, lastErr)
		}
		res, next := c.mustSync(t, req)
		req.Since = next
		remaining := checks[:0:0]
		for _, check := range checks {
			if err := check(c.UserID, res); err != nil {
				lastErr = err
				remaining = append(remaining, check)
			}
		}
		checks = remaining
		if len(checks) == 0 {
			return next
		}
	}
}

func crEsc(s string) string {
	return strings.NewReplacer(".", `\.`, "*", `\*`, "?", `\?`).Replace(s)
}

func crLoop(res gjson.Result, path string, check func(gjson.Result) bool) error {
	arr := res.Get(path)
	if !arr.Exists() {
		return fmt.Errorf("%s does not exist", path)
	}
	for _, ev := range arr.Array() {
		if check(ev) {
			return nil
		}
	}
	return fmt.Errorf("none of %d items in %s passed", len(arr.Array()), path)
}

func crTimelineHas(roomID string, check func(gjson.Result) bool) crCheck {
	return func(_ string, res gjson.Result) error {
		return crLoop(res, "rooms.join."+crEsc(roomID)+".timeline.events", check)
	}
}

func crTimelineHasEventID(roomID, eventID string) crCheck {
	return crTimelineHas(roomID, func(ev gjson.Result) bool { return ev.Get("event_id").Str == eventID })
}

func crEphemeralHas(roomID string, check func(gjson.Result) bool) crCheck {
	return func(_ string, res gjson.Result) error {
		return crLoop(res, "rooms.join."+crEsc(roomID)+".ephemeral.events", check)
	}
}

func crRoomAccountDataHas(roomID string, check func(gjson.Result) bool) crCheck {
	return func(_ string, res gjson.Result) error {
		return crLoop(res, "rooms.join."+crEsc(roomID)+".account_data.events", check)
	}
}

func crMemberIs(userID, membership string) func(gjson.Result) bool {
	return func(ev gjson.Result) bool {
		return ev.Get("type").Str == "m.room.member" && ev.Get("state_key").Str == userID &&
			ev.Get("content.membership").Str == membership
	}
}

// crJoinedTo looks for the join in the timeline or the state section.
func crJoinedTo(userID, roomID string, extra ...func(gjson.Result) bool) crCheck {
	joined := func(ev gjson.Result) bool {
		if !crMemberIs(userID, "join")(ev) {
			return false
		}
		for _, f := range extra {
			if !f(ev) {
				return false
			}
		}
		return true
	}
	return func(_ string, res gjson.Result) error {
		prefix := "rooms.join." + crEsc(roomID)
		if crLoop(res, prefix+".timeline.events", joined) == nil || crLoop(res, prefix+".state.events", joined) == nil {
			return nil
		}
		return fmt.Errorf("no join of %s in %s", userID, roomID)
	}
}

// crInvitedTo checks invite_state for the invitee, the timeline otherwise.
func crInvitedTo(userID, roomID string) crCheck {
	return func(clientUserID string, res gjson.Result) error {
		if clientUserID == userID {
			return crLoop(res, "rooms.invite."+crEsc(roomID)+".invite_state.events", crMemberIs(userID, "invite"))
		}
		return crTimelineHas(roomID, crMemberIs(userID, "invite"))(clientUserID, res)
	}
}

// crLeftFrom checks rooms.leave for the leaver, the timeline otherwise.
func crLeftFrom(userID, roomID string) crCheck {
	return func(clientUserID string, res gjson.Result) error {
		if clientUserID == userID {
			if !res.Get("rooms.leave." + crEsc(roomID)).Exists() {
				return fmt.Errorf("no leave section for %s", roomID)
			}
			return nil
		}
		return crTimelineHas(roomID, crMemberIs(userID, "leave"))(clientUserID, res)
	}
}

func crPresenceHas(userID string) crCheck {
	return func(_ string, res gjson.Result) error {
		return crLoop(res, "presence.events", func(ev gjson.Result) bool {
			return ev.Get("sender").Str == userID && ev.Get("content.presence").Exists()
		})
	}
}

// crUsersTyping is Complement's SyncUsersTyping: the m.typing event lists
// exactly these users.
func crUsersTyping(roomID string, users []string) crCheck {
	want := append([]string{}, users...)
	sort.Strings(want)
	return crEphemeralHas(roomID, func(ev gjson.Result) bool {
		if ev.Get("type").Str != "m.typing" {
			return false
		}
		var got []string
		for _, u := range ev.Get("content.user_ids").Array() {
			got = append(got, u.Str)
		}
		sort.Strings(got)
		return strings.Join(got, ",") == strings.Join(want, ",")
	})
}

// crCheckOff is match.JSONCheckOff: the items, mapped, are exactly want
// (in any order).
func crCheckOff(t *testing.T, what string, arr gjson.Result, want []string, mapper func(gjson.Result) string) {
	t.Helper()
	var got []string
	for _, item := range arr.Array() {
		got = append(got, mapper(item))
	}
	g, w := append([]string{}, got...), append([]string{}, want...)
	sort.Strings(g)
	sort.Strings(w)
	if strings.Join(g, "\n") != strings.Join(w, "\n") {
		t.Fatalf("%s: want %v, got %v", what, want, got)
	}
}

func crEventID(r gjson.Result) string { return r.Get("event_id").Str }

func crTypeStateKey(r gjson.Result) string {
	return r.Get("type").Str + "|" + r.Get("state_key").Str
}

func crMsg(body string) map[string]any {
	return map[string]any{"msgtype": "m.text", "body": body}
}

// crPLUsers is Complement's powerLevelUsersForRoomVersion: room v12 lists
// no creator in power_levels.users (creators outrank everyone).
func crPLUsers(t *testing.T, c *crClient, roomID string, users map[string]any) map[string]any {
	t.Helper()
	create := c.stateContent(t, roomID, "m.room.create", "")
	if create.Get("room_version").Str != "12" {
		return users
	}
	out := map[string]any{}
	for u, v := range users {
		if u != create.Get("sender").Str && u != c.UserID {
			out[u] = v
		}
	}
	return out
}
