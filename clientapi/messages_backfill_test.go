package clientapi

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/json/jsontext"
	jsonv2 "encoding/json/v2"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/id"

	"github.com/ganglion/ganglion/fsm"
)

// fedDAG builds signed PDUs of one room as another server would, with
// depths that follow their prev events. Events are named; a name can also
// stand for an event already stored (known).
type fedDAG struct {
	t      *testing.T
	roomID string
	priv   ed25519.PrivateKey
	ids    map[string]string
	depth  map[string]int64
	ts     int64
}

const fedVer = id.RoomVersion("11")

func newFedDAG(t *testing.T, roomID string) *fedDAG {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &fedDAG{t: t, roomID: roomID, priv: priv, ids: map[string]string{}, depth: map[string]int64{}, ts: 1_700_000_000_000}
}

func (d *fedDAG) known(name, eventID string, depth int64) {
	d.ids[name], d.depth[name] = eventID, depth
}

func (d *fedDAG) ev(name, evType string, stateKey *string, sender string, content any, prevs, auth []string) json.RawMessage {
	d.t.Helper()
	raw, _ := json.Marshal(content)
	p := &pdu.PDU{AuthEvents: []id.EventID{}, PrevEvents: []id.EventID{}, Content: jsontext.Value(raw),
		RoomID: id.RoomID(d.roomID), Sender: id.UserID(sender), StateKey: stateKey, Type: evType}
	depth := int64(0)
	for _, pr := range prevs {
		p.PrevEvents = append(p.PrevEvents, id.EventID(d.ids[pr]))
		depth = max(depth, d.depth[pr])
	}
	for _, a := range auth {
		p.AuthEvents = append(p.AuthEvents, id.EventID(d.ids[a]))
	}
	d.ts++
	p.Depth, p.OriginServerTS = depth+1, d.ts
	if err := p.Sign(fedVer, "remote.example", "ed25519:t", d.priv); err != nil {
		d.t.Fatal(err)
	}
	evID, err := p.GetEventID(fedVer)
	if err != nil {
		d.t.Fatal(err)
	}
	out, err := jsonv2.Marshal(p)
	if err != nil {
		d.t.Fatal(err)
	}
	d.ids[name], d.depth[name] = string(evID), p.Depth
	return out
}

func propose(t *testing.T, api *API, cmd fsm.RemoteEventsCmd) *fsm.RemoteEventsResult {
	t.Helper()
	v, _, err := api.node.Propose(t.Context(), fsm.OpRoomRemote, cmd)
	if err != nil {
		t.Fatal(err)
	}
	res := v.(*fsm.RemoteEventsResult)
	if len(res.Rejected)+len(res.Missing) > 0 {
		t.Fatalf("remote events: %+v", res)
	}
	return res
}

// remoteHistoryRoom is a room of rob's on remote.example, with n messages
// "h0".."h<n-1>", that alice joined over federation: only her join is in
// the timeline. It returns the history newest first.
func remoteHistoryRoom(t *testing.T, api *API, roomID, alice, visibility string, n int) []json.RawMessage {
	const rob = "@rob:remote.example"
	d := newFedDAG(t, roomID)
	state := []json.RawMessage{
		d.ev("create", "m.room.create", strp(""), rob, map[string]any{"room_version": string(fedVer)}, nil, nil),
		d.ev("rob", "m.room.member", strp(rob), rob, map[string]any{"membership": "join"}, []string{"create"}, []string{"create"}),
		d.ev("pl", "m.room.power_levels", strp(""), rob, map[string]any{"users": map[string]int{rob: 100}}, []string{"rob"}, []string{"create", "rob"}),
		d.ev("jr", "m.room.join_rules", strp(""), rob, map[string]any{"join_rule": "public"}, []string{"pl"}, []string{"create", "pl", "rob"}),
		d.ev("hv", "m.room.history_visibility", strp(""), rob, map[string]any{"history_visibility": visibility}, []string{"jr"}, []string{"create", "pl", "rob"}),
	}
	var history []json.RawMessage
	prev := "hv"
	for i := range n {
		name := fmt.Sprint("h", i)
		history = append(history, d.ev(name, "m.room.message", nil, rob, map[string]any{"msgtype": "m.text", "body": name}, []string{prev}, []string{"create", "pl", "rob"}))
		prev = name
	}
	slices.Reverse(history)
	join := d.ev("join", "m.room.member", strp(alice), alice, map[string]any{"membership": "join"}, []string{prev}, []string{"create", "pl", "jr"})
	ids := []string{d.ids["create"], d.ids["rob"], d.ids["pl"], d.ids["jr"], d.ids["hv"]}
	propose(t, api, fsm.RemoteEventsCmd{RoomID: roomID, Join: &fsm.RemoteJoin{Version: string(fedVer)},
		Outliers: state, Events: []json.RawMessage{join}, States: map[string][]string{d.ids["join"]: ids}})
	return history
}

// fakeBackfiller stores the next scripted batch on each call.
type fakeBackfiller struct {
	t       *testing.T
	api     *API
	roomID  string
	mu      sync.Mutex
	batches [][]json.RawMessage
	calls   int
	err     error
}

func (f *fakeBackfiller) Backfill(ctx context.Context, roomID string, limit int) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if roomID != f.roomID || limit < 1 || limit > 100 {
		f.t.Errorf("Backfill(%s, %d)", roomID, limit)
	}
	if f.err != nil {
		return false, f.err
	}
	if len(f.batches) == 0 {
		return false, nil
	}
	batch := f.batches[0]
	f.batches = f.batches[1:]
	_, _, err := f.api.node.Propose(ctx, fsm.OpRoomRemote, fsm.RemoteEventsCmd{RoomID: roomID, Events: batch, Backfill: true})
	return err == nil, err
}

func (f *fakeBackfiller) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

func TestHistoryTokens(t *testing.T) {
	for _, c := range []struct {
		tok  string
		want int64
		ok   bool
	}{{"t5", 5, true}, {"t0", 0, true}, {"b0", 0, true}, {"b3", -3, true}, {"s41_7", 42, true},
		{"b-1", 0, false}, {"bx", 0, false}, {"t-2", 0, false}, {"x", 0, false}} {
		got, ok := parseHistoryToken(c.tok)
		if ok != c.ok || (ok && got != c.want) {
			t.Errorf("parseHistoryToken(%q) = %d, %v", c.tok, got, ok)
		}
		if ok && c.tok[0] != 's' && pageToken(got) != strings.Replace(c.tok, "b0", "t0", 1) {
			t.Errorf("pageToken(%d) = %q, want %q", got, pageToken(got), c.tok)
		}
	}
	if _, ok := parsePageToken("b3"); ok {
		t.Error("endpoints other than /messages must not take backfill tokens")
	}
}

func TestMessagesContinueIntoBackfill(t *testing.T) {
	base, api := testServerAPI(t)
	alice := newRMUser(t, base, "alice")
	const room = "!history:remote.example"
	history := remoteHistoryRoom(t, api, room, alice.id, "shared", 25)
	fb := &fakeBackfiller{t: t, api: api, roomID: room, batches: [][]json.RawMessage{history[:10], history[10:20], history[20:]}}
	api.SetBackfiller(fb)

	// Backward from the join: the timeline ends at once, then backfill.
	var bodies, ends []string
	from := ""
	for range 50 {
		q := "?dir=b&limit=7"
		if from != "" {
			q += "&from=" + url.QueryEscape(from)
		}
		out := alice.ok("page", "GET", roomPath(room, "/messages"+q), nil)
		for _, ev := range out["chunk"].([]any) {
			if b, ok := ev.(map[string]any)["content"].(map[string]any)["body"]; ok {
				bodies = append(bodies, fmt.Sprint(b))
			}
		}
		end, ok := out["end"].(string)
		if !ok {
			break
		}
		ends, from = append(ends, end), end
	}
	var want []string
	for i := 24; i >= 0; i-- {
		want = append(want, fmt.Sprint("h", i))
	}
	if fmt.Sprint(bodies) != fmt.Sprint(want) {
		t.Fatalf("backward bodies %v, want %v", bodies, want)
	}
	if fb.callCount() != 4 {
		t.Errorf("Backfill called %d times, want 3 batches and the call that found no more", fb.callCount())
	}
	if !slices.ContainsFunc(ends, func(s string) bool { return strings.HasPrefix(s, "b") }) {
		t.Errorf("no backfill-stream token among the end tokens %v", ends)
	}

	// Forward from the start of what is held: the oldest backfilled event
	// first, then across into the timeline; no federation needed.
	calls := fb.callCount()
	fwdIDs, fwdBodies := pageAll(alice, room, "f", "", "")
	slices.Reverse(want)
	if fmt.Sprint(fwdBodies) != fmt.Sprint(want) {
		t.Fatalf("forward bodies %v", fwdBodies)
	}
	last := alice.ok("last", "GET", roomPath(room, "/event/"+url.PathEscape(fwdIDs[len(fwdIDs)-1])), nil)
	if last["type"] != "m.room.member" || fb.callCount() != calls {
		t.Errorf("forward paging ended with %v after %d backfill calls", last["type"], fb.callCount()-calls)
	}
	// Context around a backfilled event works in both directions.
	ctx := alice.ok("context", "GET", roomPath(room, "/context/"+url.PathEscape(fwdIDs[5])+"?limit=4"), nil)
	if got := syBodies(ctx["events_before"].([]any)); fmt.Sprint(got) != "[h4 h3]" {
		t.Errorf("events_before %v", got)
	}
	if got := syBodies(ctx["events_after"].([]any)); fmt.Sprint(got) != "[h6 h7]" {
		t.Errorf("events_after %v", got)
	}
	if s, _ := ctx["start"].(string); !strings.HasPrefix(s, "b") {
		t.Errorf("context start %q is not a backfill token", s)
	}
}

func TestMessagesBackfillHook(t *testing.T) {
	base, api := testServerAPI(t)
	alice := newRMUser(t, base, "alice")
	page := func(room string) (int, bool) {
		out := alice.ok("page", "GET", roomPath(room, "/messages?dir=b&limit=10"), nil)
		_, hasEnd := out["end"]
		return len(out["chunk"].([]any)), hasEnd
	}
	// Without a Backfiller, stored history is all there is.
	const quiet = "!quiet:remote.example"
	remoteHistoryRoom(t, api, quiet, alice.id, "shared", 3)
	if n, hasEnd := page(quiet); n != 1 || hasEnd {
		t.Fatalf("no backfiller: %d events, end %v; want the join and no end", n, hasEnd)
	}
	// A failing Backfiller: more may exist, so end stays; it is not asked
	// again at once.
	const broken = "!broken:remote.example"
	remoteHistoryRoom(t, api, broken, alice.id, "shared", 3)
	fb := &fakeBackfiller{t: t, api: api, roomID: broken, err: fmt.Errorf("all servers down")}
	api.SetBackfiller(fb)
	for range 2 {
		if n, hasEnd := page(broken); n != 1 || !hasEnd {
			t.Fatalf("failing backfill: %d events, end %v; want the join and an end", n, hasEnd)
		}
	}
	if fb.callCount() != 1 {
		t.Errorf("failing Backfiller called %d times, want 1 (cooldown)", fb.callCount())
	}
	// History the room hid from those who had not joined stays hidden.
	const hidden = "!hidden:remote.example"
	history := remoteHistoryRoom(t, api, hidden, alice.id, "joined", 3)
	fb = &fakeBackfiller{t: t, api: api, roomID: hidden, batches: [][]json.RawMessage{history}}
	api.SetBackfiller(fb)
	if n, hasEnd := page(hidden); n != 1 || hasEnd || fb.callCount() != 2 {
		t.Fatalf("joined-only history: %d events, end %v, %d calls", n, hasEnd, fb.callCount())
	}
}
