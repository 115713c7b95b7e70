package federation

import (
	"container/heap"
	"encoding/json"
	"encoding/json/jsontext"
	jsonv2 "encoding/json/v2"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"testing"

	"github.com/julienschmidt/httprouter"
	"github.com/tidwall/gjson"
	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/id"

	"github.com/ganglion/ganglion/fsm"
	"github.com/ganglion/ganglion/rooms"
)

// backfillFake is a fakeServer that also answers /backfill from its DAG,
// breadth-first by depth from the events named, as a real server does.
type backfillFake struct {
	*fakeServer
	queries []url.Values
}

func newBackfillFake(t *testing.T, pki *testPKI) *backfillFake {
	t.Helper()
	bf := &backfillFake{}
	bf.fakeServer = startFakeServer(t, pki, func(f *fakeServer) []route {
		return []route{
			open(get, fedV1+"/event/:eventId", f.serveEvent),
			open(get, fedV1+"/event_auth/:roomId/:eventId", f.serveEventAuth),
			open(get, fedV1+"/backfill/:roomId", bf.serveBackfill)}
	})
	return bf
}

func (f *backfillFake) serveBackfill(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	f.hit("backfill")
	q := r.URL.Query()
	limit, _ := strconv.Atoi(q.Get("limit"))
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queries = append(f.queries, q)
	queue, seen := &recHeap{}, map[string]bool{}
	push := func(evID string) {
		if raw := f.events[evID]; raw != nil && !seen[evID] {
			seen[evID] = true
			heap.Push(queue, &fsm.EventRecord{EventID: evID, Depth: gjson.GetBytes(raw, "depth").Int(), PDU: raw})
		}
	}
	for _, v := range q["v"] {
		push(v)
	}
	var pdus []json.RawMessage
	for queue.Len() > 0 && len(pdus) < limit {
		rec := heap.Pop(queue).(*fsm.EventRecord)
		pdus = append(pdus, rec.PDU)
		for _, pe := range prevEventsOf(rec.PDU) {
			push(pe)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"origin": f.name, "origin_server_ts": 1, "pdus": pdus})
}

// ev builds, signs and serves one event of roomID (v11) named name;
// prevs and auth are names; post alters the signed PDU.
func (f *backfillFake) ev(t *testing.T, names map[string]string, roomID, name, evType string, stateKey *string,
	sender string, content any, prevs, auth []string, post func(*pdu.PDU)) json.RawMessage {
	t.Helper()
	raw, _ := json.Marshal(content)
	p := &pdu.PDU{RoomID: id.RoomID(roomID), Sender: id.UserID(sender), Type: evType, StateKey: stateKey,
		Content: jsontext.Value(raw), OriginServerTS: 1_700_000_000_000 + int64(len(names)),
		PrevEvents: []id.EventID{}, AuthEvents: []id.EventID{}, Depth: 1}
	for _, pr := range prevs {
		p.PrevEvents = append(p.PrevEvents, id.EventID(names[pr]))
		p.Depth = max(p.Depth, gjson.GetBytes(f.events[names[pr]], "depth").Int()+1)
	}
	for _, a := range auth {
		p.AuthEvents = append(p.AuthEvents, id.EventID(names[a]))
	}
	if err := p.Sign(id.RoomV11, f.name, f.key.ID, f.key.Priv); err != nil {
		t.Fatal(err)
	}
	if post != nil {
		post(p)
	}
	evID, err := p.GetEventID(id.RoomV11)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jsonv2.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	names[name] = string(evID)
	f.mu.Lock()
	f.events[string(evID)] = out
	f.mu.Unlock()
	return out
}

// backfilled lists the room's backfill stream, newest first.
func backfilled(n *homeserver, roomID string) []*fsm.EventRecord {
	var out []*fsm.EventRecord
	n.view(func(rt *fsm.ReadTx) {
		rt.BackfilledEvents(roomID, 0, 0, func(e *fsm.EventRecord) bool { out = append(out, e); return true })
	})
	return out
}

// bodies lists the message bodies of events, "-" for a message without.
func bodies(recs []*fsm.EventRecord) []string {
	var out []string
	for _, r := range recs {
		if r.Type != "m.room.message" {
			continue
		}
		if b := gjson.GetBytes(r.PDU, "content.body"); b.Exists() {
			out = append(out, b.Str)
		} else {
			out = append(out, "-")
		}
	}
	return out
}

func TestBackfillFromScriptedServer(t *testing.T) {
	pki := newTestPKI(t)
	n := newHomeserver(t, pki)
	f := newBackfillFake(t, pki)
	ctx := t.Context()
	roomID, alice := "!history:"+f.name, "@alice:"+n.name
	rob, bob := f.user("rob"), f.user("bob")
	names := map[string]string{}
	state := []json.RawMessage{
		f.ev(t, names, roomID, "create", "m.room.create", sk(""), rob, map[string]any{"room_version": "11"}, nil, nil, nil),
		f.ev(t, names, roomID, "rob", "m.room.member", sk(rob), rob, map[string]any{"membership": "join"}, []string{"create"}, []string{"create"}, nil),
		f.ev(t, names, roomID, "pl", "m.room.power_levels", sk(""), rob, map[string]any{"users": map[string]int{rob: 100}}, []string{"rob"}, []string{"create", "rob"}, nil),
		f.ev(t, names, roomID, "jr", "m.room.join_rules", sk(""), rob, map[string]any{"join_rule": "public"}, []string{"pl"}, []string{"create", "pl", "rob"}, nil),
		f.ev(t, names, roomID, "hv", "m.room.history_visibility", sk(""), rob, map[string]any{"history_visibility": "shared"}, []string{"jr"}, []string{"create", "pl", "rob"}, nil),
	}
	// Bob's join is left out of the state given at the join: backfill must
	// fetch it to check bob's messages.
	f.ev(t, names, roomID, "bob", "m.room.member", sk(bob), bob, map[string]any{"membership": "join"}, []string{"hv"}, []string{"create", "pl", "jr"}, nil)
	other := NewSigningKey("other")
	prev := "bob"
	for i := range 20 {
		sender, member := rob, "rob"
		if i%2 == 1 {
			sender, member = bob, "bob"
		}
		var post func(*pdu.PDU)
		switch i {
		case 5: // signed with a key the server does not publish
			post = func(p *pdu.PDU) {
				p.Signatures = nil
				_ = p.Sign(id.RoomV11, f.name, f.key.ID, other.Priv)
			}
		case 8: // content changed after signing: stored redacted
			post = func(p *pdu.PDU) { p.Content = jsontext.Value(`{"msgtype":"m.text","body":"forged"}`) }
		}
		name := fmt.Sprint("h", i)
		f.ev(t, names, roomID, name, "m.room.message", nil, sender, map[string]any{"msgtype": "m.text", "body": name},
			[]string{prev}, []string{"create", "pl", member}, post)
		prev = name
	}
	join := f.ev(t, names, roomID, "join", "m.room.member", sk(alice), alice, map[string]any{"membership": "join"}, []string{prev}, []string{"create", "pl", "jr"}, nil)
	ids := []string{names["create"], names["rob"], names["pl"], names["jr"], names["hv"]}
	if _, _, err := n.node.Propose(ctx, fsm.OpRoomRemote, fsm.RemoteEventsCmd{RoomID: roomID, Join: &fsm.RemoteJoin{Version: "11"},
		Outliers: state, Events: []json.RawMessage{join}, States: map[string][]string{names["join"]: ids}}); err != nil {
		t.Fatal(err)
	}

	more, err := n.api.Backfill(ctx, roomID, 10)
	if err != nil || !more {
		t.Fatalf("first backfill: %v, %v", more, err)
	}
	if got := bodies(backfilled(n, roomID)); fmt.Sprint(got) != "[h19 h18 h17 h16 h15 h14 h13 h12 h11 h10]" {
		t.Fatalf("after one backfill: %v", got)
	}
	if q := f.queries[0]; q.Get("limit") != "10" || !slices.Equal(q["v"], []string{names["h19"]}) {
		t.Errorf("first /backfill query %v, want v = the join's prev event, limit 10", q)
	}
	if f.hitCount("event_auth")+f.hitCount("event") == 0 || n.event(roomID, names["bob"]) == nil {
		t.Error("bob's join (an auth event of his messages) was not fetched")
	}
	for i := 0; more && i < 6; i++ {
		if more, err = n.api.Backfill(ctx, roomID, 10); err != nil {
			t.Fatal(err)
		}
	}
	if more {
		t.Fatal("backfill never reported the end of history")
	}
	// h5 (bad signature) is left out; h8 (bad hash) is kept redacted.
	want := "[h19 h18 h17 h16 h15 h14 h13 h12 h11 h10 h9 - h7 h6 h4 h3 h2 h1 h0]"
	if got := bodies(backfilled(n, roomID)); fmt.Sprint(got) != want {
		t.Fatalf("backfilled history %v, want %s", got, want)
	}
	if tl := n.timeline(roomID); !slices.Equal(tl, []string{names["join"]}) {
		t.Errorf("backfill touched the live timeline: %v", tl)
	}
}

func TestBackfillFromGanglion(t *testing.T) {
	a, b := twoHomeservers(t)
	ctx := t.Context()
	alice, bob := a.user(t, "alice"), b.user(t, "bob")
	roomID := mustCreateRoom(t, a.rs, rooms.CreateRoomRequest{Creator: alice, Preset: "public_chat"})
	var want []string
	for i := range 30 {
		body := fmt.Sprint("before ", i)
		if _, err := a.rs.Send(ctx, rooms.SendRequest{RoomID: roomID, EventSpec: rooms.EventSpec{Type: "m.room.message",
			Sender: alice, Content: json.RawMessage(`{"msgtype":"m.text","body":"` + body + `"}`)}}); err != nil {
			t.Fatal(err)
		}
		want = append([]string{body}, want...)
	}
	if _, err := b.api.JoinRemote(ctx, bob, roomID, []string{a.name}, nil); err != nil {
		t.Fatal(err)
	}
	calls := 0
	var err error
	for more := true; more; calls++ {
		if calls > 10 {
			t.Fatal("backfill did not end")
		}
		if more, err = b.api.Backfill(ctx, roomID, 12); err != nil {
			t.Fatal(err)
		}
	}
	if got := bodies(backfilled(b, roomID)); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("B backfilled %v\nwant %v", got, want)
	}
	if calls < 3 {
		t.Errorf("%d calls with limit 12 fetched 30 messages", calls)
	}
}
