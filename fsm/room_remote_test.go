package fsm

import (
	"encoding/json"
	"encoding/json/jsontext"
	jsonv2 "encoding/json/v2"
	"slices"
	"testing"

	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/id"
)

const (
	rDave = "@dave:remote.example"
	rEve  = "@eve:remote.example"
)

// dag builds events on explicit prev events with depths that follow them.
type dag struct {
	b     *eventBuilder
	depth map[string]int64
}

func newDAG(t *testing.T) *dag { return &dag{b: newEventBuilder(t), depth: map[string]int64{}} }

// on builds event name on prevs; ts 0 means "the next timestamp".
func (d *dag) on(name string, prevs []string, ts int64, evType string, stateKey *string, sender string, content any, auth ...string) json.RawMessage {
	t := d.b.t
	t.Helper()
	raw, _ := json.Marshal(content)
	depth := int64(0)
	p := &pdu.PDU{AuthEvents: []id.EventID{}, PrevEvents: []id.EventID{}, Content: jsontext.Value(raw),
		RoomID: id.RoomID(wRoom), Sender: id.UserID(sender), StateKey: stateKey, Type: evType}
	for _, pr := range prevs {
		p.PrevEvents = append(p.PrevEvents, d.b.ids[pr])
		depth = max(depth, d.depth[pr])
	}
	for _, a := range auth {
		p.AuthEvents = append(p.AuthEvents, d.b.ids[a])
	}
	d.b.ts++
	p.Depth, p.OriginServerTS = depth+1, d.b.ts
	if ts != 0 {
		p.OriginServerTS = ts
	}
	if err := p.Sign(wVer, wServer, wKeyID, d.b.priv); err != nil {
		t.Fatal(err)
	}
	evID, err := p.GetEventID(wVer)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jsonv2.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	d.b.ids[name], d.depth[name] = evID, p.Depth
	return out
}

func (d *dag) id(name string) string { return string(d.b.ids[name]) }

func raws(r ...json.RawMessage) []json.RawMessage { return r }

// remoteRoom is a local room (alice, power 100; eve power 50) that dave
// and eve of remote.example joined over federation.
func remoteRoom(t *testing.T) (*acctFSM, *dag) {
	a, d := newAcctFSM(t), newDAG(t)
	a.mustApply(OpSigningKeySet, SigningKey{KeyID: wKeyID, Seed: wSeed[:]})
	evs := raws(
		d.on("create", nil, 0, "m.room.create", sk(""), wAlice, map[string]any{"room_version": "11"}),
		d.on("alice", []string{"create"}, 0, "m.room.member", sk(wAlice), wAlice, map[string]any{"membership": "join"}, "create"),
		d.on("pl", []string{"alice"}, 0, "m.room.power_levels", sk(""), wAlice, map[string]any{
			"users": map[string]int{wAlice: 100, rEve: 50}, "state_default": 50, "ban": 50}, "create", "alice"),
		d.on("jr", []string{"pl"}, 0, "m.room.join_rules", sk(""), wAlice, map[string]any{"join_rule": "public"}, "create", "pl", "alice"))
	a.mustApply(OpRoomEvents, RoomEventsCmd{RoomID: wRoom, Create: &RoomCreate{Version: string(wVer), Creator: wAlice}, Events: evs})
	res := a.mustApply(OpRoomRemote, RemoteEventsCmd{RoomID: wRoom, Events: raws(
		d.on("dave", []string{"jr"}, 0, "m.room.member", sk(rDave), rDave, map[string]any{"membership": "join"}, "create", "pl", "jr"),
		d.on("eve", []string{"dave"}, 0, "m.room.member", sk(rEve), rEve, map[string]any{"membership": "join"}, "create", "pl", "jr"),
	)}).(*RemoteEventsResult)
	if len(res.Accepted) != 2 || len(res.Rejected)+len(res.Missing) != 0 {
		t.Fatalf("remote joins: %+v", res)
	}
	return a, d
}

// local applies one event built by this server on the room's extremities.
func (a *acctFSM) local(raw json.RawMessage) {
	a.t.Helper()
	a.mustApply(OpRoomEvents, RoomEventsCmd{RoomID: wRoom, Events: raws(raw)})
}

func (a *acctFSM) remote(events ...json.RawMessage) *RemoteEventsResult {
	a.t.Helper()
	return a.mustApply(OpRoomRemote, RemoteEventsCmd{RoomID: wRoom, Events: events}).(*RemoteEventsResult)
}

// timeline lists the room's live timeline event IDs, oldest first.
func (a *acctFSM) timeline() []string {
	var out []string
	a.view(func(r *ReadTx) {
		r.RoomEvents(wRoom, 0, true, 0, func(e *EventRecord) bool { out = append(out, e.EventID); return true })
	})
	return out
}

func (a *acctFSM) state(evType, stateKey string) string {
	var out string
	a.view(func(r *ReadTx) { out = r.StateEventID(wRoom, evType, stateKey) })
	return out
}

func TestRemoteJoinsExtendTheTimeline(t *testing.T) {
	a, d := remoteRoom(t)
	if tl := a.timeline(); !slices.Contains(tl, d.id("dave")) || !slices.Contains(tl, d.id("eve")) {
		t.Fatalf("remote joins missing from the timeline %v", tl)
	}
	var m *MembershipRecord
	a.view(func(r *ReadTx) { m = r.Membership(rDave, wRoom) })
	if m == nil || m.Membership != "join" {
		t.Fatalf("dave's membership: %+v", m)
	}
	// A retried event is accepted again and stored once.
	before := len(a.timeline())
	msg := d.on("hello", []string{"eve"}, 0, "m.room.message", nil, rDave, map[string]any{"body": "hi"}, "create", "pl", "dave")
	for range 2 {
		if res := a.remote(msg); !slices.Equal(res.Accepted, []string{d.id("hello")}) {
			t.Fatalf("message: %+v", res)
		}
	}
	if got := len(a.timeline()); got != before+1 {
		t.Fatalf("timeline grew by %d, want 1", got-before)
	}
}

func TestRemoteEventFailingAuthIsRejected(t *testing.T) {
	a, d := remoteRoom(t)
	// Dave (power 0) may not set the topic (state_default 50).
	res := a.remote(d.on("topic", []string{"eve"}, 0, "m.room.topic", sk(""), rDave, map[string]any{"topic": "x"}, "create", "pl", "dave"))
	if res.Rejected[d.id("topic")] == "" {
		t.Fatalf("topic by a powerless user: %+v", res)
	}
	if a.state("m.room.topic", "") != "" || slices.Contains(a.timeline(), d.id("topic")) {
		t.Fatal("a rejected event reached state or the timeline")
	}
	// A message whose prev event is unknown is not stored at all.
	d.b.ids["ghost"] = "$ghost"
	res = a.remote(d.on("orphan", []string{"ghost"}, 0, "m.room.message", nil, rDave, map[string]any{"body": "?"}, "create", "pl", "dave"))
	if res.Missing[d.id("orphan")] == "" {
		t.Fatalf("event on an unknown prev: %+v", res)
	}
	a.view(func(r *ReadTx) {
		if _, err := r.Event(d.id("orphan")); err == nil {
			t.Fatal("an event with unknown prev events was stored")
		}
	})
}

func TestForkResolvesStateAndKeepsLateEventsOutOfTheLiveTimeline(t *testing.T) {
	a, d := remoteRoom(t)
	// Alice sets a topic at ts 5000; eve concurrently set one, built on
	// dave's join and timestamped earlier: resolution keeps alice's.
	a.local(d.on("topicA", []string{"eve"}, 5000, "m.room.topic", sk(""), wAlice, map[string]any{"topic": "A"}, "create", "pl", "alice"))
	res := a.remote(d.on("topicE", []string{"eve"}, 4000, "m.room.topic", sk(""), rEve, map[string]any{"topic": "E"}, "create", "pl", "eve"))
	if !slices.Contains(res.Accepted, d.id("topicE")) {
		t.Fatalf("eve's concurrent topic: %+v", res)
	}
	if got := a.state("m.room.topic", ""); got != d.id("topicA") {
		t.Fatalf("current topic %s, want alice's %s", got, d.id("topicA"))
	}
	if slices.Contains(a.timeline(), d.id("topicE")) {
		t.Fatal("superseded state was sent to clients as if current")
	}
	var ext []string
	a.view(func(r *ReadTx) { rr, _ := r.Room(wRoom); ext = rr.Extremities })
	if len(ext) != 2 {
		t.Fatalf("extremities %v, want the two branches", ext)
	}
	// Alice's next message merges both branches (built on every extremity).
	a.local(d.on("m1", []string{"topicA", "topicE"}, 0, "m.room.message", nil, wAlice, map[string]any{"body": "merge"}, "create", "pl", "alice"))
	a.local(d.on("m2", []string{"m1"}, 0, "m.room.message", nil, wAlice, map[string]any{"body": "newer"}, "create", "pl", "alice"))
	// A message of dave's sent concurrently (built on older events, about
	// as new as the room's newest) joins the live timeline.
	res = a.remote(d.on("concurrent", []string{"eve"}, 0, "m.room.message", nil, rDave, map[string]any{"body": "meanwhile"}, "create", "pl", "dave"))
	if !slices.Contains(res.Accepted, d.id("concurrent")) || !slices.Contains(a.timeline(), d.id("concurrent")) {
		t.Fatalf("concurrent message: %+v, timeline %v", res, a.timeline())
	}
	// One built long ago (minutes older than the newest message) arrives
	// now: stored, late.
	res = a.remote(d.on("old", []string{"eve"}, 1_000, "m.room.message", nil, rDave, map[string]any{"body": "old"}, "create", "pl", "dave"))
	if !slices.Contains(res.Accepted, d.id("old")) || slices.Contains(a.timeline(), d.id("old")) {
		t.Fatalf("late message: %+v, timeline %v", res, a.timeline())
	}
	var late []*EventRecord
	a.view(func(r *ReadTx) {
		r.LateEvents(wRoom, 0, 1<<62, func(e *EventRecord) bool { late = append(late, e); return true })
	})
	if len(late) != 1 || late[0].EventID != d.id("old") || late[0].After != d.id("eve") {
		t.Fatalf("late stream: %+v", late)
	}
	// A local event built on stale extremities is refused, for a rebuild.
	_, err := a.apply(OpRoomEvents, RoomEventsCmd{RoomID: wRoom, Events: raws(
		d.on("stale", []string{"m1"}, 0, "m.room.message", nil, wAlice, map[string]any{"body": "stale"}, "create", "pl", "alice"))})
	if err == nil {
		t.Fatal("a local event on stale extremities was accepted")
	}
}

func TestEventAllowedBeforeButNotNowIsSoftFailed(t *testing.T) {
	a, d := remoteRoom(t)
	a.local(d.on("ban", []string{"eve"}, 0, "m.room.member", sk(rDave), wAlice, map[string]any{"membership": "ban"}, "create", "pl", "alice", "dave"))
	res := a.remote(d.on("sneak", []string{"eve"}, 0, "m.room.message", nil, rDave, map[string]any{"body": "sneaky"}, "create", "pl", "dave"))
	if !slices.Contains(res.SoftFailed, d.id("sneak")) {
		t.Fatalf("message of a banned user built before the ban: %+v", res)
	}
	if slices.Contains(a.timeline(), d.id("sneak")) {
		t.Fatal("a soft-failed event reached the timeline")
	}
	var ext []string
	a.view(func(r *ReadTx) { rr, _ := r.Room(wRoom); ext = rr.Extremities })
	if !slices.Equal(ext, []string{d.id("ban")}) {
		t.Fatalf("extremities %v: a soft-failed event must not be built on", ext)
	}
}

func TestJoinRemoteRoomThenBackfill(t *testing.T) {
	a, d := newAcctFSM(t), newDAG(t)
	const rob = "@rob:test" // the room ID names the creator's server (v11)
	state := raws(
		d.on("create", nil, 0, "m.room.create", sk(""), rob, map[string]any{"room_version": "11"}),
		d.on("rob", []string{"create"}, 0, "m.room.member", sk(rob), rob, map[string]any{"membership": "join"}, "create"),
		d.on("pl", []string{"rob"}, 0, "m.room.power_levels", sk(""), rob, map[string]any{"users": map[string]int{rob: 100}}, "create", "rob"),
		d.on("jr", []string{"pl"}, 0, "m.room.join_rules", sk(""), rob, map[string]any{"join_rule": "public"}, "create", "pl", "rob"))
	history := d.on("before", []string{"jr"}, 0, "m.room.message", nil, rob, map[string]any{"body": "before you came"}, "create", "pl", "rob")
	join := d.on("join", []string{"before"}, 0, "m.room.member", sk(wAlice), wAlice, map[string]any{"membership": "join"}, "create", "pl", "jr")
	ids := []string{d.id("create"), d.id("rob"), d.id("pl"), d.id("jr")}
	res := a.mustApply(OpRoomRemote, RemoteEventsCmd{RoomID: wRoom, Join: &RemoteJoin{Version: string(wVer)},
		Outliers: state, Events: raws(join), States: map[string][]string{d.id("join"): ids}}).(*RemoteEventsResult)
	if len(res.Accepted) != 5 || len(res.Rejected)+len(res.Missing) != 0 {
		t.Fatalf("join: %+v", res)
	}
	if tl := a.timeline(); !slices.Equal(tl, []string{d.id("join")}) {
		t.Fatalf("timeline after the join %v, want only the join", tl)
	}
	var m *MembershipRecord
	a.view(func(r *ReadTx) { m = r.Membership(wAlice, wRoom) })
	if m == nil || m.Membership != "join" || a.state("m.room.join_rules", "") != d.id("jr") {
		t.Fatalf("membership %+v, join rules %s", m, a.state("m.room.join_rules", ""))
	}
	// Rob's next message extends the DAG from the join.
	if res := a.remote(d.on("next", []string{"join"}, 0, "m.room.message", nil, rob, map[string]any{"body": "welcome"}, "create", "pl", "rob")); len(res.Accepted) != 1 {
		t.Fatalf("message after the join: %+v", res)
	}
	// History from before the join is backfilled below the timeline.
	res = a.mustApply(OpRoomRemote, RemoteEventsCmd{RoomID: wRoom, Events: raws(history), Backfill: true}).(*RemoteEventsResult)
	if len(res.Accepted) != 1 {
		t.Fatalf("backfill: %+v", res)
	}
	var back []string
	a.view(func(r *ReadTx) {
		r.BackfilledEvents(wRoom, 0, 10, func(e *EventRecord) bool { back = append(back, e.EventID); return true })
	})
	if !slices.Equal(back, []string{d.id("before")}) || slices.Contains(a.timeline(), d.id("before")) {
		t.Fatalf("backfilled %v, timeline %v", back, a.timeline())
	}
}
