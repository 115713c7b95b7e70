package federation

import (
	"encoding/json"
	"net/http"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/julienschmidt/httprouter"
	"github.com/tidwall/gjson"

	"github.com/ganglion/ganglion/fsm"
	"github.com/ganglion/ganglion/rooms"
)

// The fake server's answers to the node's fetches, a recording ephemeral
// sink, and the common setup: a public room on the node that a user of the
// fake server has joined over /send.

func (f *fakeServer) serveEventAuth(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	f.hit("event_auth")
	f.mu.Lock()
	defer f.mu.Unlock()
	seen := map[string]bool{}
	var chain []json.RawMessage
	var walk func(evID string)
	walk = func(evID string) {
		for _, a := range gjson.GetBytes(f.events[evID], "auth_events").Array() {
			if raw := f.events[a.Str]; raw != nil && !seen[a.Str] {
				seen[a.Str] = true
				chain = append(chain, raw)
				walk(a.Str)
			}
		}
	}
	walk(p.ByName("eventId"))
	writeJSON(w, http.StatusOK, map[string]any{"auth_chain": chain})
}

// serveMissing walks its DAG back from latest_events like the spec says.
func (f *fakeServer) serveMissing(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	f.hit("get_missing_events")
	var req struct {
		Limit    int      `json:"limit"`
		Earliest []string `json:"earliest_events"`
		Latest   []string `json:"latest_events"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "M_BAD_JSON", err.Error())
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	seen := map[string]bool{}
	for _, e := range append(req.Earliest, req.Latest...) {
		seen[e] = true
	}
	front := req.Latest
	var out []json.RawMessage
	for len(front) > 0 && len(out) < req.Limit {
		var next []string
		for _, evID := range front {
			for _, pe := range gjson.GetBytes(f.events[evID], "prev_events").Array() {
				if raw := f.events[pe.Str]; raw != nil && !seen[pe.Str] && len(out) < req.Limit {
					seen[pe.Str] = true
					out = append(out, raw)
					next = append(next, pe.Str)
				}
			}
		}
		front = next
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": out})
}

func (f *fakeServer) serveStateIDs(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	f.hit("state_ids")
	f.mu.Lock()
	state, ok := f.stateBefore[r.URL.Query().Get("event_id")]
	f.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, "M_NOT_FOUND", "no state known")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"pdu_ids": state, "auth_chain_ids": []string{}})
}

// sinkRecorder is an EphemeralSink that records what it is told.
type sinkRecorder struct {
	mu       sync.Mutex
	typing   []string // room|user|typing
	presence []string // user|presence|status
}

func (s *sinkRecorder) RemoteTyping(roomID, userID string, typing bool, _ time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := "false"
	if typing {
		v = "true"
	}
	s.typing = append(s.typing, roomID+"|"+userID+"|"+v)
}

func (s *sinkRecorder) RemotePresence(userID, presence, statusMsg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.presence = append(s.presence, userID+"|"+presence+"|"+statusMsg)
}

func (s *sinkRecorder) got() (typing, presence []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string{}, s.typing...), append([]string{}, s.presence...)
}

// fedRoom is the common setup.
type fedRoom struct {
	n      *homeserver
	f      *fakeServer
	pki    *testPKI
	roomID string
	alice  string // local creator
	bob    string // user of the fake server, joined
	join   string // bob's join event
}

func newFedRoom(t *testing.T) *fedRoom {
	t.Helper()
	pki := newTestPKI(t)
	n := newHomeserver(t, pki)
	f := newFakeServer(t, pki)
	alice := "@alice:" + n.name
	roomID := mustCreateRoom(t, n.rs, rooms.CreateRoomRequest{Creator: alice, Preset: "public_chat"})
	bob := f.user("bob")
	join, raw := f.build(t, n, roomID, evSpec{sender: bob, typ: "m.room.member", stateKey: sk(bob),
		content: map[string]any{"membership": "join"}})
	wantAccepted(t, f.send(t, n, "join", []json.RawMessage{raw}), join)
	if got := n.stateID(roomID, "m.room.member", bob); got != join {
		t.Fatalf("bob's membership is %q, want his join %s", got, join)
	}
	return &fedRoom{n: n, f: f, pki: pki, roomID: roomID, alice: alice, bob: bob, join: join}
}

// message builds a message of the fake's user on the room's extremities.
func (r *fedRoom) message(t *testing.T, body string, mods ...func(*evSpec)) (string, json.RawMessage) {
	t.Helper()
	s := evSpec{sender: r.bob, typ: "m.room.message", content: map[string]any{"msgtype": "m.text", "body": body}}
	for _, m := range mods {
		m(&s)
	}
	return r.f.build(t, r.n, r.roomID, s)
}

// messageChain builds count messages of the fake's user, each on the one
// before it, from bob's join; built (if not nil) sees each as it is built.
func (r *fedRoom) messageChain(t *testing.T, count int, built func(evID string)) []string {
	t.Helper()
	var chain []string
	prev := []string{r.join}
	for i := range count {
		evID, _ := r.message(t, "m", func(s *evSpec) { s.prev = prev; s.content = map[string]any{"body": i} })
		if built != nil {
			built(evID)
		}
		chain = append(chain, evID)
		prev = []string{evID}
	}
	return chain
}

// localSend sends an event as alice and returns its ID.
func (r *fedRoom) localSend(t *testing.T, evType string, stateKey *string, content string) string {
	t.Helper()
	evID, err := r.n.rs.Send(t.Context(), rooms.SendRequest{RoomID: r.roomID, EventSpec: rooms.EventSpec{
		Type: evType, StateKey: stateKey, Sender: r.alice, Content: json.RawMessage(content)}})
	if err != nil {
		t.Fatal(err)
	}
	return evID
}

// currentStateIDs lists the room's current state event IDs, sorted.
func (r *fedRoom) currentStateIDs() []string {
	var out []string
	r.n.view(func(rt *fsm.ReadTx) {
		for _, e := range rt.CurrentState(r.roomID) {
			out = append(out, e)
		}
	})
	sort.Strings(out)
	return out
}
