package federation

import (
	"encoding/json"
	"encoding/json/jsontext"
	jsonv2 "encoding/json/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/julienschmidt/httprouter"
	mfed "maunium.net/go/mautrix/federation"
	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/id"

	"github.com/ganglion/ganglion/fsm"
)

// Reads of a homeserver's store (join_harness_test.go), and scripted fake
// remote servers (their own keys, their own DAG) that push to it and answer
// its fetches.

func (hs *homeserver) view(fn func(rt *fsm.ReadTx)) {
	_ = hs.node.Store().View(func(rt *fsm.ReadTx) error { fn(rt); return nil })
}

func (hs *homeserver) room(t *testing.T, roomID string) *fsm.RoomRecord {
	t.Helper()
	var room *fsm.RoomRecord
	hs.view(func(rt *fsm.ReadTx) { room, _ = rt.Room(roomID) })
	if room == nil {
		t.Fatalf("room %s unknown", roomID)
	}
	return room
}

// timeline lists the room's live timeline, oldest first.
func (hs *homeserver) timeline(roomID string) []string {
	var out []string
	hs.view(func(rt *fsm.ReadTx) {
		rt.RoomEvents(roomID, 0, true, 0, func(e *fsm.EventRecord) bool { out = append(out, e.EventID); return true })
	})
	return out
}

func (hs *homeserver) stateID(roomID, evType, stateKey string) string {
	var out string
	hs.view(func(rt *fsm.ReadTx) { out = rt.StateEventID(roomID, evType, stateKey) })
	return out
}

func (hs *homeserver) event(roomID, evID string) *fsm.EventRecord {
	var rec *fsm.EventRecord
	hs.view(func(rt *fsm.ReadTx) { rec, _ = rt.Event(evID) })
	return rec
}

// fakeServer is a remote homeserver: its key server is real, its DAG is a
// map the test fills, and it answers the fetches of the node under test.
type fakeServer struct {
	name string
	key  *mfed.SigningKey
	pki  *testPKI
	srv  *httptest.Server

	mu          sync.Mutex
	events      map[string]json.RawMessage // what it serves
	stateBefore map[string][]string        // its /state_ids answers
	hits        map[string]int             // fetches by endpoint
}

func newFakeServer(t *testing.T, pki *testPKI) *fakeServer {
	t.Helper()
	return startFakeServer(t, pki, func(f *fakeServer) []route {
		return []route{
			open(get, fedV1+"/event/:eventId", f.serveEvent),
			open(get, fedV1+"/event_auth/:roomId/:eventId", f.serveEventAuth),
			open(post, fedV1+"/get_missing_events/:roomId", f.serveMissing),
			open(get, fedV1+"/state_ids/:roomId", f.serveStateIDs)}
	})
}

// startFakeServer starts a fake remote server with a real key server and
// the routes that routes(f) gives.
func startFakeServer(t *testing.T, pki *testPKI, routes func(f *fakeServer) []route) *fakeServer {
	t.Helper()
	l, name := listenLoopback(t)
	f := &fakeServer{name: name, key: NewSigningKey("fake"), pki: pki, events: map[string]json.RawMessage{},
		stateBefore: map[string][]string{}, hits: map[string]int{}}
	api, err := NewWithKeys(Config{ServerName: f.name, AllowPrivateAddresses: true, ExtraCAFiles: []string{pki.certFile}},
		&StaticKeys{Key: f.key}, senderLog())
	if err != nil {
		t.Fatal(err)
	}
	var served []route
	for _, rt := range api.routes() {
		if strings.HasPrefix(rt.path, keyV2) {
			served = append(served, rt)
		}
	}
	f.srv = serveTLS(t, l, pki, api.handler(append(served, routes(f)...)))
	return f
}

func (f *fakeServer) hit(what string) {
	f.mu.Lock()
	f.hits[what]++
	f.mu.Unlock()
}

func (f *fakeServer) hitCount(what string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hits[what]
}

// user is a user ID of this server.
func (f *fakeServer) user(local string) string { return "@" + local + ":" + f.name }

// evSpec is one event the fake server builds.
type evSpec struct {
	sender, typ string
	stateKey    *string
	content     any
	prev        []string
	auth        []string // nil: chosen from the node's current state
	depth       int64    // 0: one more than the deepest prev
	ts          int64
	mod         func(*pdu.PDU) // before signing
	post        func(*pdu.PDU) // after signing
	noServe     bool           // not served on the fake's endpoints
}

func sk(s string) *string { return &s }

// build makes, signs and records an event of n's room.
func (f *fakeServer) build(t *testing.T, n *homeserver, roomID string, s evSpec) (string, json.RawMessage) {
	t.Helper()
	room := n.room(t, roomID)
	ver := id.RoomVersion(room.Version)
	content, err := json.Marshal(s.content)
	if err != nil {
		t.Fatal(err)
	}
	if s.prev == nil {
		s.prev = room.Extremities
	}
	p := &pdu.PDU{RoomID: id.RoomID(roomID), Sender: id.UserID(s.sender), Type: s.typ, StateKey: s.stateKey,
		Content: jsontext.Value(content), OriginServerTS: s.ts, Depth: s.depth,
		PrevEvents: []id.EventID{}, AuthEvents: []id.EventID{}}
	if p.OriginServerTS == 0 {
		p.OriginServerTS = time.Now().UnixMilli()
	}
	for _, e := range s.prev {
		p.PrevEvents = append(p.PrevEvents, id.EventID(e))
		if rec := f.lookup(n, e); rec != nil && p.Depth <= rec.PDU.Depth && s.depth == 0 {
			p.Depth = rec.PDU.Depth + 1
		}
	}
	if s.auth == nil {
		n.view(func(rt *fsm.ReadTx) {
			for _, k := range p.AuthEventSelection(ver) {
				if e := rt.StateEventID(roomID, k.Type, k.StateKey); e != "" {
					p.AuthEvents = append(p.AuthEvents, id.EventID(e))
				}
			}
		})
	} else {
		for _, e := range s.auth {
			p.AuthEvents = append(p.AuthEvents, id.EventID(e))
		}
	}
	if s.mod != nil {
		s.mod(p)
	}
	if err := p.Sign(ver, f.name, f.key.ID, f.key.Priv); err != nil {
		t.Fatal(err)
	}
	if s.post != nil {
		s.post(p)
	}
	evID, err := p.GetEventID(ver)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jsonv2.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	if !s.noServe {
		f.mu.Lock()
		f.events[string(evID)] = raw
		f.mu.Unlock()
	}
	return string(evID), raw
}

// lookup finds an event in the fake's DAG or the node's store.
func (f *fakeServer) lookup(n *homeserver, evID string) *VerifiedPDU {
	f.mu.Lock()
	raw := f.events[evID]
	f.mu.Unlock()
	if raw == nil {
		if rec := n.event("", evID); rec != nil {
			raw = rec.PDU
		}
	}
	if raw == nil {
		return nil
	}
	p, err := fsm.ParsePDU(raw)
	if err != nil {
		return nil
	}
	return &VerifiedPDU{EventID: evID, Raw: raw, PDU: p}
}

// request makes a request to n signed by the fake server.
func (f *fakeServer) request(t *testing.T, n *homeserver, method, path string, body any) (int, map[string]any) {
	t.Helper()
	var raw []byte
	if body != nil {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
	}
	req := newRequest(t, method, n.srv.URL+path, raw)
	if err := SignRequest(req, f.name, n.name, f.key, raw); err != nil {
		t.Fatal(err)
	}
	return do(t, f.pki.httpsClient(), req)
}

// send pushes a transaction and returns its pdus answer.
func (f *fakeServer) send(t *testing.T, n *homeserver, txnID string, pdus []json.RawMessage, edus ...any) map[string]any {
	t.Helper()
	if pdus == nil {
		pdus = []json.RawMessage{}
	}
	status, body := f.request(t, n, put, fedV1+"/send/"+url.PathEscape(txnID),
		map[string]any{"origin": f.name, "origin_server_ts": time.Now().UnixMilli(), "pdus": pdus, "edus": edus})
	if status != http.StatusOK {
		t.Fatalf("send %s: %d %v", txnID, status, body)
	}
	res, _ := body["pdus"].(map[string]any)
	return res
}

// wantAccepted fails unless every listed event was answered without error.
func wantAccepted(t *testing.T, res map[string]any, ids ...string) {
	t.Helper()
	for _, evID := range ids {
		r, ok := res[evID].(map[string]any)
		if !ok || r["error"] != nil {
			t.Errorf("event %s: answer %v, want accepted (all: %v)", evID, res[evID], res)
		}
	}
}

// wantRefused fails unless the event was answered with an error holding
// want.
func wantRefused(t *testing.T, res map[string]any, evID, want string) {
	t.Helper()
	r, _ := res[evID].(map[string]any)
	msg, _ := r["error"].(string)
	if !strings.Contains(msg, want) {
		t.Errorf("event %s: answer %v, want an error with %q", evID, res[evID], want)
	}
}

func (f *fakeServer) serveEvent(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	f.hit("event")
	f.mu.Lock()
	raw := f.events[p.ByName("eventId")]
	f.mu.Unlock()
	if raw == nil {
		writeError(w, http.StatusNotFound, "M_NOT_FOUND", "no such event")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"origin": f.name, "origin_server_ts": 1, "pdus": []json.RawMessage{raw}})
}
