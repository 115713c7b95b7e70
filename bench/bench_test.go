package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeHS implements just enough of the Client-Server API for every
// scenario: UIA dummy registration, public rooms, send and long-poll sync.
type fakeHS struct {
	mu        sync.Mutex
	wake      chan struct{} // closed and replaced on every new event
	tokens    map[string]string
	names     map[string]bool
	members   map[string]map[string]bool // room -> users
	events    []fakeEvent
	failSends int           // the first failSends sends answer 500
	stall     chan struct{} // if set, sends hang until it is closed
	nextID    int
}

type fakeEvent struct{ room, id string }

func newFakeHS() *fakeHS {
	return &fakeHS{wake: make(chan struct{}), tokens: map[string]string{},
		names: map[string]bool{}, members: map[string]map[string]bool{}}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeHS) user(w http.ResponseWriter, r *http.Request) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	u, ok := f.tokens[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
	if !ok {
		writeJSON(w, 401, map[string]string{"errcode": "M_UNKNOWN_TOKEN"})
	}
	return u, ok
}

func (f *fakeHS) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /_matrix/client/v3/register", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Username string `json:"username"`
			Auth     struct{ Type, Session string }
		}
		if json.NewDecoder(r.Body).Decode(&req) != nil || req.Auth.Type != "m.login.dummy" {
			writeJSON(w, 400, map[string]string{"errcode": "M_BAD_JSON"})
			return
		}
		if req.Auth.Session == "" { // force the UIA round trip
			writeJSON(w, 401, map[string]any{"session": "sess", "flows": []any{map[string]any{"stages": []string{"m.login.dummy"}}}})
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.names[req.Username] {
			writeJSON(w, 400, map[string]string{"errcode": "M_USER_IN_USE"})
			return
		}
		f.names[req.Username] = true
		f.nextID++
		tok, uid := "tok"+strconv.Itoa(f.nextID), "@"+req.Username+":fake"
		f.tokens[tok] = uid
		writeJSON(w, 200, map[string]string{"user_id": uid, "access_token": tok})
	})
	mux.HandleFunc("POST /_matrix/client/v3/createRoom", func(w http.ResponseWriter, r *http.Request) {
		u, ok := f.user(w, r)
		if !ok {
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		f.nextID++
		id := fmt.Sprintf("!r%d:fake", f.nextID)
		f.members[id] = map[string]bool{u: true}
		writeJSON(w, 200, map[string]string{"room_id": id})
	})
	mux.HandleFunc("POST /_matrix/client/v3/join/{room}", func(w http.ResponseWriter, r *http.Request) {
		u, ok := f.user(w, r)
		if !ok {
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		m, ok := f.members[r.PathValue("room")]
		if !ok {
			writeJSON(w, 404, map[string]string{"errcode": "M_NOT_FOUND"})
			return
		}
		m[u] = true
		writeJSON(w, 200, map[string]string{"room_id": r.PathValue("room")})
	})
	mux.HandleFunc("PUT /_matrix/client/v3/rooms/{room}/send/{type}/{txn}", func(w http.ResponseWriter, r *http.Request) {
		u, ok := f.user(w, r)
		if !ok {
			return
		}
		if f.stall != nil {
			<-f.stall // the client must give up on its own
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		room := r.PathValue("room")
		if !f.members[room][u] {
			writeJSON(w, 403, map[string]string{"errcode": "M_FORBIDDEN"})
			return
		}
		if f.failSends > 0 {
			f.failSends--
			writeJSON(w, 500, map[string]string{"errcode": "M_UNKNOWN", "error": "injected\nfailure"})
			return
		}
		f.nextID++
		ev := fakeEvent{room, fmt.Sprintf("$e%d", f.nextID)}
		f.events = append(f.events, ev)
		close(f.wake)
		f.wake = make(chan struct{})
		writeJSON(w, 200, map[string]string{"event_id": ev.id})
	})
	mux.HandleFunc("GET /_matrix/client/v3/sync", f.sync)
	return mux
}

// sync serves events after the "since" position, parking until one arrives.
func (f *fakeHS) sync(w http.ResponseWriter, r *http.Request) {
	u, ok := f.user(w, r)
	if !ok {
		return
	}
	since, _ := strconv.Atoi(r.URL.Query().Get("since"))
	timeout, _ := strconv.Atoi(r.URL.Query().Get("timeout"))
	deadline := time.After(time.Duration(timeout) * time.Millisecond)
	for {
		f.mu.Lock()
		join := map[string]any{}
		if r.URL.Query().Get("since") == "" {
			for room, m := range f.members {
				if m[u] {
					join[room] = map[string]any{"timeline": map[string]any{"events": []any{}}}
				}
			}
		}
		for _, ev := range f.events[since:] {
			if f.members[ev.room][u] {
				rm, _ := join[ev.room].(map[string]any)
				if rm == nil {
					rm = map[string]any{"timeline": map[string]any{"events": []any{}}}
					join[ev.room] = rm
				}
				tl := rm["timeline"].(map[string]any)
				tl["events"] = append(tl["events"].([]any), map[string]string{"event_id": ev.id, "type": "m.room.message"})
			}
		}
		next, wake := strconv.Itoa(len(f.events)), f.wake
		f.mu.Unlock()
		if len(join) > 0 || timeout == 0 {
			writeJSON(w, 200, map[string]any{"next_batch": next, "rooms": map[string]any{"join": join}})
			return
		}
		select {
		case <-wake:
			since, _ = strconv.Atoi(next) // only newer events can match now
		case <-deadline:
			timeout = 0
		case <-r.Context().Done():
			return
		}
	}
}

// countingServer starts a node and counts the requests it receives.
func countingServer(t *testing.T, h http.Handler) (*httptest.Server, *atomic.Int64) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 10; i++ {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{{0, 1}, {10, 1}, {50, 5}, {90, 9}, {91, 10}, {99, 10}, {100, 10}} {
		if got := percentile(d, tc.p); got != tc.want*time.Millisecond {
			t.Errorf("percentile(1..10ms, %v) = %v, want %vms", tc.p, got, int(tc.want))
		}
	}
	if got := percentile(nil, 50); got != 0 {
		t.Errorf("percentile(nil) = %v, want 0", got)
	}
	if got := percentile([]time.Duration{7}, 99); got != 7 {
		t.Errorf("percentile(single) = %v, want 7", got)
	}
}

func TestResultWrite(t *testing.T) {
	el := &errLog{}
	ctx := context.Background()
	for i := 0; i < 5; i++ {
		el.add(ctx, fmt.Errorf("boom\n%d", i))
	}
	res := newResult(kindSeq, "sequential_send", "sequential send: 1 user, 1 room, 9 msgs")
	res.Index = 1
	samples := []time.Duration{4 * time.Millisecond, time.Millisecond, 2 * time.Millisecond, 3 * time.Millisecond}
	res.finish(samples, 2*time.Second, el)
	var b bytes.Buffer
	res.write(&b)
	want := `== 1. sequential send: 1 user, 1 room, 9 msgs
   ok=4 errors=5  p50=2.00ms p90=4.00ms p99=4.00ms max=4.00ms  2.0 msgs/s
   error: boom 0
   error: boom 1
   error: boom 2
   (2 more errors not shown)
`
	if b.String() != want {
		t.Errorf("write:\n%s\nwant:\n%s", b.String(), want)
	}

	b.Reset()
	init := newResult(kindInit, "initial_sync", "initial sync: 1 user, 3 rooms x 2 msgs, 5 runs")
	init.Index, init.roomsWant, init.roomsSeen, init.syncBytes = 5, 3, 2, 2048
	init.finish([]time.Duration{3 * time.Millisecond, time.Millisecond}, time.Second, nil)
	init.abort(fmt.Errorf("stopped early: %w", context.DeadlineExceeded))
	init.write(&b)
	want = `== 5. initial sync: 1 user, 3 rooms x 2 msgs, 5 runs
   ok=2 errors=0  min=1.00ms median=1.00ms  rooms=2/3 MISSING  size=2.0KB
   aborted: stopped early: context deadline exceeded
`
	if b.String() != want {
		t.Errorf("write:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestRunAllScenarios(t *testing.T) {
	f := newFakeHS()
	s1, n1 := countingServer(t, f.handler())
	s2, n2 := countingServer(t, f.handler())
	var out bytes.Buffer
	args := []string{"--hs", s1.URL, "-hs", s2.URL + "/", "--seq", "5", "--concurrent-msgs", "12",
		"--rooms", "3", "--senders", "4", "--one-room-senders", "3", "--one-room-msgs", "9",
		"--wake", "3", "--initial-rooms", "3", "--initial-msgs", "2", "--timeout", "20s", "--json"}
	if err := Run(context.Background(), args, &out); err != nil {
		t.Fatalf("Run: %v\n%s", err, out.String())
	}
	text := out.String()
	t.Log("\n" + text)
	for _, re := range []string{
		`(?m)^ganglion bench  hs=` + regexp.QuoteMeta(s1.URL+","+s2.URL) + `  run=[0-9a-f]{12}  timeout=20s$`,
		`(?m)^== 1\. sequential send: 1 user, 1 room, 5 msgs\n   ok=5 errors=0  p50=\S+ms p90=\S+ms p99=\S+ms max=\S+ms  [0-9.]+ msgs/s$`,
		`(?m)^== 2\. concurrent send: 4 senders, 3 rooms, 12 msgs\n   ok=12 errors=0  elapsed=[0-9.]+s  [0-9.]+ msgs/s  p50=\S+ms p99=\S+ms$`,
		`(?m)^== 3\. one-room send: 3 senders, 1 room, 9 msgs\n   ok=9 errors=0  elapsed=`,
		`(?m)^== 4\. sync wake-up: 3 samples, sender ` + regexp.QuoteMeta(s1.URL) + ` -> receiver ` +
			regexp.QuoteMeta(s2.URL) + `\n   ok=3 errors=0  p50=\S+ms p99=\S+ms max=\S+ms  early=\d  from-send-start p50=\S+ms p99=\S+ms$`,
		`(?m)^== 5\. initial sync: 1 user, 3 rooms x 2 msgs, 5 runs\n   ok=5 errors=0  min=\S+ms median=\S+ms  rooms=3/3 ok  size=[0-9.]+KB$`,
		`(?m)^total [0-9.]+s$`,
	} {
		if !regexp.MustCompile(re).MatchString(text) {
			t.Errorf("output does not match %q", re)
		}
	}
	if n1.Load() == 0 || n2.Load() == 0 {
		t.Errorf("requests not spread over nodes: %d / %d", n1.Load(), n2.Load())
	}

	lines := strings.Split(strings.TrimSpace(text), "\n")
	var sum struct {
		Homeservers []string
		Scenarios   []result
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &sum); err != nil {
		t.Fatalf("last line is not JSON: %v", err)
	}
	wantOK := map[string]int{"sequential_send": 5, "concurrent_send": 12, "one_room_send": 9, "sync_wakeup": 3, "initial_sync": 5}
	if len(sum.Scenarios) != 5 || len(sum.Homeservers) != 2 {
		t.Fatalf("JSON summary: %+v", sum)
	}
	for _, s := range sum.Scenarios {
		if s.OK != wantOK[s.Name] || s.Errors != 0 || s.Aborted != "" {
			t.Errorf("JSON scenario %s: ok=%d errors=%d aborted=%q", s.Name, s.OK, s.Errors, s.Aborted)
		}
	}
	if s := sum.Scenarios[4]; s.RoomsSeen == nil || *s.RoomsSeen != 3 || *s.RoomsWant != 3 {
		t.Errorf("initial sync rooms: %+v", s)
	}
	if sum.Scenarios[0].MsgsPerSec == nil || sum.Scenarios[3].Early == nil || sum.Scenarios[3].StartP99MS == nil ||
		sum.Scenarios[3].MsgsPerSec != nil {
		t.Errorf("kind-specific JSON fields wrong: %+v", sum.Scenarios)
	}
}

func TestRunCountsErrors(t *testing.T) {
	f := newFakeHS()
	f.failSends = 2
	srv, _ := countingServer(t, f.handler())
	var out bytes.Buffer
	args := []string{"--hs", srv.URL, "--seq", "6", "--concurrent-msgs", "0", "--one-room-msgs", "0",
		"--wake", "0", "--initial-rooms", "0"}
	if err := Run(context.Background(), args, &out); err != nil {
		t.Fatalf("Run: %v\n%s", err, out.String())
	}
	text := out.String()
	for _, want := range []string{
		"   ok=4 errors=2  ",
		"   error: PUT /_matrix/client/v3/rooms/%21r2:fake/send/m.room.message/",
		`HTTP 500: {"errcode":"M_UNKNOWN","error":"injected\nfailure"}`,
		"== 2. concurrent_send: skipped\n", "== 5. initial_sync: skipped\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
}

func TestRunSetupFailureAndFlags(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	var out bytes.Buffer
	err := Run(context.Background(), []string{"--hs", srv.URL, "--seq", "1", "--concurrent-msgs", "0",
		"--one-room-msgs", "0", "--wake", "0", "--initial-rooms", "0"}, &out)
	if err == nil || !strings.Contains(out.String(), "== 1. sequential send: 1 user, 1 room, 1 msgs\n   aborted: setup: register ") {
		t.Errorf("want aborted setup, got err=%v\n%s", err, out.String())
	}
	for _, bad := range [][]string{{"--seq", "-1"}, {"--hs", "ftp://x"}, {"--nope"}, {"extra"}, {"--senders", "0"}} {
		if err := Run(context.Background(), bad, &bytes.Buffer{}); err == nil {
			t.Errorf("Run(%q) accepted bad flags", bad)
		}
	}
	var l hsList
	if err := l.Set("http://a, http://b/"); err != nil || l.String() != "http://a,http://b" {
		t.Errorf("hsList = %q, %v", l.String(), err)
	}
}

func TestRunTimeoutStops(t *testing.T) {
	f := newFakeHS()
	f.stall = make(chan struct{})
	srv, _ := countingServer(t, f.handler())
	t.Cleanup(func() { close(f.stall) }) // runs before srv.Close
	var out bytes.Buffer
	start := time.Now()
	err := Run(context.Background(), []string{"--hs", srv.URL, "--seq", "3", "--timeout", "300ms"}, &out)
	if time.Since(start) > 3*time.Second {
		t.Errorf("Run took %v despite --timeout 300ms", time.Since(start))
	}
	text := out.String()
	for _, want := range []string{
		"   ok=0 errors=0  ", "   aborted: stopped early: context deadline exceeded\n",
		"== 5. initial_sync\n   aborted: not run: context deadline exceeded\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	if err == nil || !strings.Contains(err.Error(), "5 scenario(s) aborted") {
		t.Errorf("Run error = %v", err)
	}
}
