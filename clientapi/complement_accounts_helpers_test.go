package clientapi

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/ganglion/ganglion/config"
)

// Helpers for the reproductions of Complement's tests (prefix cm). They
// mirror Complement's client: every request carries Content-Type
// application/json unless told otherwise, users are registered through the
// two-step UIA flow (or the shared-secret admin API for admins), and the
// server is "hs1" with the shared secret "complement".

const cmPassword = "complement_meets_min_password_req"

// cmDeployment is one server and Complement's user counter.
type cmDeployment struct {
	base    string
	api     *API
	counter atomic.Int64
}

func cmDeploy(t *testing.T) *cmDeployment {
	t.Helper()
	base, api := testServerAPI(t, func(c *config.Config) {
		c.ServerName = "hs1"
		c.Registration.SharedSecret = "complement"
	})
	return &cmDeployment{base: base, api: api}
}

// cmClient is a Complement CSAPI client.
type cmClient struct {
	base                          string
	userID, accessToken, deviceID string
	txn                           atomic.Int64
}

// cmResp is an answer: status, headers, raw body and its parsed JSON.
type cmResp struct {
	status int
	header http.Header
	body   []byte
}

func (r cmResp) get(path string) gjson.Result { return gjson.GetBytes(r.body, path) }
func (r cmResp) str(path string) string       { return r.get(path).Str }

// cmOpt changes a request before it is sent.
type cmOpt func(*http.Request)

func cmJSON(v any) cmOpt {
	raw, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return cmRaw(raw)
}

func cmRaw(b []byte) cmOpt {
	return func(r *http.Request) {
		r.Body = io.NopCloser(bytes.NewReader(b))
		r.ContentLength = int64(len(b))
	}
}

func cmContentType(ct string) cmOpt {
	return func(r *http.Request) { r.Header.Set("Content-Type", ct) }
}

func cmQuery(q url.Values) cmOpt {
	return func(r *http.Request) { r.URL.RawQuery = q.Encode() }
}

func (d *cmDeployment) unauthed() *cmClient { return &cmClient{base: d.base} }

// do sends method to the path parts, each escaped like Complement does.
func (c *cmClient) do(t *testing.T, method string, parts []string, opts ...cmOpt) cmResp {
	t.Helper()
	esc := make([]string, len(parts))
	for i, p := range parts {
		esc[i] = url.PathEscape(p)
	}
	req, err := http.NewRequest(method, c.base+"/"+strings.Join(esc, "/"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.accessToken != "" {
		req.Header.Set("Authorization", "Bearer "+c.accessToken)
	}
	for _, o := range opts {
		o(req)
	}
	if req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	hc := &http.Client{Timeout: 30 * time.Second}
	res, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, req.URL, err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return cmResp{status: res.StatusCode, header: res.Header, body: body}
}

// mustDo is do that fails the test on a non-2xx answer.
func (c *cmClient) mustDo(t *testing.T, method string, parts []string, opts ...cmOpt) cmResp {
	t.Helper()
	r := c.do(t, method, parts, opts...)
	if r.status < 200 || r.status >= 300 {
		t.Fatalf("%s %v: %d %s", method, parts, r.status, r.body)
	}
	return r
}

// cmV3 builds a /_matrix/client/v3 path.
func cmV3(parts ...string) []string { return append([]string{"_matrix", "client", "v3"}, parts...) }

// cmWant fails unless the answer has the status (and errcode, if given).
func cmWant(t *testing.T, what string, r cmResp, status int, errcode string) {
	t.Helper()
	if r.status != status || (errcode != "" && r.str("errcode") != errcode) {
		t.Fatalf("%s: got %d %s, want %d %s", what, r.status, r.body, status, errcode)
	}
}

// register is deployment.Register: "user-N[-suffix]" through UIA, or the
// shared-secret API for admins.
func (d *cmDeployment) register(t *testing.T, suffix, password string, admin bool) *cmClient {
	t.Helper()
	if password == "" {
		password = cmPassword
	}
	local := fmt.Sprintf("user-%d", d.counter.Add(1))
	if suffix != "" {
		local += "-" + suffix
	}
	c := d.unauthed()
	var r cmResp
	if admin {
		r = cmSharedSecret(t, c, local, password, true)
	} else {
		r = cmRegisterUIA(t, c, local, password, nil)
	}
	cmWant(t, "register "+local, r, 200, "")
	c.userID, c.accessToken, c.deviceID = r.str("user_id"), r.str("access_token"), r.str("device_id")
	if c.userID == "" || c.accessToken == "" || c.deviceID == "" {
		t.Fatalf("register %s: %s", local, r.body)
	}
	return c
}

// cmStartUIA is Complement's startUIASession: the first /register answers
// 401 with a session, which the returned body carries in auth.
func cmStartUIA(t *testing.T, c *cmClient, user, pass string, extra map[string]any) (map[string]any, string) {
	t.Helper()
	body := map[string]any{"username": user, "password": pass}
	for k, v := range extra {
		body[k] = v
	}
	r := c.do(t, "POST", cmV3("register"), cmJSON(body))
	cmWant(t, "UIA challenge", r, 401, "")
	session := r.str("session")
	auth := map[string]any{"type": "m.login.dummy"}
	if session != "" {
		auth["session"] = session
	}
	body["auth"] = auth
	return body, session
}

// cmRegisterUIA is client.RegisterUser: challenge, then m.login.dummy.
func cmRegisterUIA(t *testing.T, c *cmClient, user, pass string, extra map[string]any) cmResp {
	t.Helper()
	body, session := cmStartUIA(t, c, user, pass, extra)
	if session == "" {
		t.Fatal("uia challenge did not include a session")
	}
	return c.do(t, "POST", cmV3("register"), cmJSON(body))
}

// cmSharedSecret is Complement's registerSharedSecret.
func cmSharedSecret(t *testing.T, c *cmClient, user, pass string, admin bool) cmResp {
	t.Helper()
	r := c.do(t, "GET", []string{"_synapse", "admin", "v1", "register"})
	cmWant(t, "shared-secret nonce", r, 200, "")
	nonce := r.str("nonce")
	mac := hmac.New(sha1.New, []byte("complement"))
	mac.Write([]byte(nonce + "\x00" + user + "\x00" + pass + "\x00"))
	if admin {
		mac.Write([]byte("admin"))
	} else {
		mac.Write([]byte("notadmin"))
	}
	return c.do(t, "POST", []string{"_synapse", "admin", "v1", "register"}, cmJSON(map[string]any{
		"nonce": nonce, "username": user, "password": pass, "mac": hex.EncodeToString(mac.Sum(nil)), "admin": admin,
	}))
}

// login is Complement's createSession: a new device by password.
func (d *cmDeployment) login(t *testing.T, userID, password string, extra map[string]any) *cmClient {
	t.Helper()
	c := d.unauthed()
	body := map[string]any{
		"identifier": map[string]any{"type": "m.id.user", "user": userID},
		"type":       "m.login.password", "password": password,
	}
	for k, v := range extra {
		body[k] = v
	}
	r := c.do(t, "POST", cmV3("login"), cmJSON(body))
	cmWant(t, "login "+userID, r, 200, "")
	c.userID, c.accessToken, c.deviceID = r.str("user_id"), r.str("access_token"), r.str("device_id")
	return c
}

// sync is one /sync (timeout 0 unless the query says otherwise).
func (c *cmClient) sync(t *testing.T, since string, q url.Values) (gjson.Result, string) {
	t.Helper()
	if q == nil {
		q = url.Values{}
	}
	if since != "" {
		q.Set("since", since)
	}
	if !q.Has("timeout") {
		q.Set("timeout", "0")
	}
	r := c.mustDo(t, "GET", cmV3("sync"), cmQuery(q))
	return gjson.ParseBytes(r.body), r.str("next_batch")
}

// syncUntil is MustSyncUntil: it syncs (long-polling) until check passes,
// for at most five seconds, and returns the next_batch of that answer.
func (c *cmClient) syncUntil(t *testing.T, since string, check func(gjson.Result) error) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	var lastErr error
	for time.Now().Before(deadline) {
		resp, next := c.sync(t, since, url.Values{"timeout": {"1000"}})
		if lastErr = check(resp); lastErr == nil {
			return next
		}
		since = next
	}
	t.Fatalf("syncUntil: %v", lastErr)
	return ""
}

// createRoom is MustCreateRoom.
func (c *cmClient) createRoom(t *testing.T, body map[string]any) string {
	t.Helper()
	return c.mustDo(t, "POST", cmV3("createRoom"), cmJSON(body)).str("room_id")
}

// joinRoom is MustJoinRoom.
func (c *cmClient) joinRoom(t *testing.T, roomID string) {
	t.Helper()
	c.mustDo(t, "POST", cmV3("join", roomID), cmJSON(map[string]any{}))
}

// sendToDevice is SendToDeviceMessages with the next transaction ID.
func (c *cmClient) sendToDevice(t *testing.T, evType string, messages map[string]any) cmResp {
	t.Helper()
	txn := fmt.Sprint(c.txn.Add(1))
	return c.do(t, "PUT", cmV3("sendToDevice", evType, txn), cmJSON(map[string]any{"messages": messages}))
}

// cmJoinedTo checks that userID is joined to roomID in a sync's timeline
// or state.
func cmJoinedTo(userID, roomID string) func(gjson.Result) error {
	return func(s gjson.Result) error {
		room := s.Get("rooms.join." + gjsonEscape(roomID))
		for _, sec := range []string{"timeline.events", "state.events"} {
			for _, ev := range room.Get(sec).Array() {
				if ev.Get("type").Str == "m.room.member" && ev.Get("state_key").Str == userID &&
					ev.Get("content.membership").Str == "join" {
					return nil
				}
			}
		}
		return fmt.Errorf("%s not joined to %s", userID, roomID)
	}
}

// cmDeviceListsHas checks device_lists.<section> for userID.
func cmDeviceListsHas(section, userID string) func(gjson.Result) error {
	return func(s gjson.Result) error {
		for _, u := range s.Get("device_lists." + section).Array() {
			if u.Str == userID {
				return nil
			}
		}
		return fmt.Errorf("%s not in device_lists.%s: %s", userID, section, s.Get("device_lists").Raw)
	}
}

func gjsonEscape(s string) string {
	return strings.NewReplacer(".", `\.`, "*", `\*`, "?", `\?`).Replace(s)
}
