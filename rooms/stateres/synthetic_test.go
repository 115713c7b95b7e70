package stateres

import (
	"errors"
	"testing"

	"github.com/tidwall/gjson"
	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/id"
)

// perVersion runs f as a subtest for each version of versions.
func perVersion(t *testing.T, f func(t *testing.T, b *builder)) {
	for _, v := range versions {
		t.Run("v"+string(v), func(t *testing.T) { f(t, newBuilder(t, v)) })
	}
}

var (
	topicKey = StateKey{Type: "m.room.topic"}
	rulesKey = StateKey{Type: "m.room.join_rules"}
	plKey    = StateKey{Type: "m.room.power_levels"}
)

func (b *builder) topic(name, sender string, ts int64, auth ...string) string {
	return b.event(ev{name: name, typ: "m.room.topic", sender: sender,
		content: `{"topic":"` + name + `"}`, ts: ts, auth: auth})
}

func (b *builder) joinRule(name, sender, rule string, ts int64, auth ...string) string {
	return b.event(ev{name: name, typ: "m.room.join_rules", sender: sender,
		content: `{"join_rule":"` + rule + `"}`, ts: ts, auth: auth})
}

// wantEntry checks one key of a resolved state.
func wantEntry(t *testing.T, got StateMap, k StateKey, wantName string) {
	t.Helper()
	want := ""
	if wantName != "" {
		want = eid(wantName)
	}
	if got[k] != want {
		t.Errorf("(%s, %q) = %q, want %q", k.Type, k.StateKey, got[k], want)
	}
}

// TestTieBreaks pins each comparison of both orderings: within the
// reverse topological power ordering (power events) and the mainline
// ordering (the rest), the event applied last wins its key.
func TestTieBreaks(t *testing.T) {
	t.Run("mainline: equal position and ts, larger event ID last", func(t *testing.T) {
		perVersion(t, func(t *testing.T, b *builder) {
			s0 := b.base()
			b.topic("topic-b", alice, 10, "m-alice", "pl1")
			b.topic("topic-a", alice, 10, "m-alice", "pl1")
			got := b.resolve(nil, b.with(s0, "topic-a"), b.with(s0, "topic-b"))
			wantEntry(t, got, topicKey, "topic-b")
		})
	})
	t.Run("mainline: ts before event ID", func(t *testing.T) {
		perVersion(t, func(t *testing.T, b *builder) {
			s0 := b.base()
			b.topic("topic-a", alice, 11, "m-alice", "pl1")
			b.topic("topic-b", alice, 10, "m-alice", "pl1")
			got := b.resolve(nil, b.with(s0, "topic-a"), b.with(s0, "topic-b"))
			wantEntry(t, got, topicKey, "topic-a")
		})
	})
	t.Run("mainline: position before ts", func(t *testing.T) {
		perVersion(t, func(t *testing.T, b *builder) {
			s0 := b.base()
			b.powerLevels("pl2", alice, 6, `"events_default":0`, map[string]int{alice: 100, mod: 50}, "m-alice", "pl1")
			// topic-old cites pl1, further down pl2's mainline: it sorts
			// first although it is newer.
			b.topic("topic-old", alice, 30, "m-alice", "pl1")
			b.topic("topic-new", alice, 20, "m-alice", "pl2")
			got := b.resolve(nil, b.with(s0, "pl2", "topic-old"), b.with(s0, "pl2", "topic-new"))
			wantEntry(t, got, topicKey, "topic-new")
		})
	})
	t.Run("power: equal power and ts, larger event ID last", func(t *testing.T) {
		perVersion(t, func(t *testing.T, b *builder) {
			s0 := b.base()
			b.joinRule("jr-b", alice, "invite", 10, "m-alice", "pl1")
			b.joinRule("jr-a", alice, "knock", 10, "m-alice", "pl1")
			got := b.resolve(nil, b.with(s0, "jr-a"), b.with(s0, "jr-b"))
			wantEntry(t, got, rulesKey, "jr-b")
		})
	})
	t.Run("power: ts before event ID", func(t *testing.T) {
		perVersion(t, func(t *testing.T, b *builder) {
			s0 := b.base()
			b.joinRule("jr-a", alice, "invite", 11, "m-alice", "pl1")
			b.joinRule("jr-b", alice, "knock", 10, "m-alice", "pl1")
			got := b.resolve(nil, b.with(s0, "jr-a"), b.with(s0, "jr-b"))
			wantEntry(t, got, rulesKey, "jr-a")
		})
	})
	t.Run("power: sender power before ts and event ID", func(t *testing.T) {
		perVersion(t, func(t *testing.T, b *builder) {
			s0 := b.base()
			// alice (100, or a v12 creator) sorts before mod (50), so
			// mod's change, older and with the smaller ID, is applied last.
			b.joinRule("jr-z", alice, "invite", 20, "m-alice", "pl1")
			b.joinRule("jr-a", mod, "knock", 10, "m-mod", "pl1")
			got := b.resolve(nil, b.with(s0, "jr-z"), b.with(s0, "jr-a"))
			wantEntry(t, got, rulesKey, "jr-a")
		})
	})
}

// TestAuthDifference: an event only in one state's auth chain (pl2, which
// makes bob 100) must be replayed before pl3, which bob sends with that
// power; skipping it would reset the power levels to pl1.
func TestAuthDifference(t *testing.T) {
	perVersion(t, func(t *testing.T, b *builder) {
		s0 := b.base()
		b.powerLevels("pl2", alice, 6, "", map[string]int{alice: 100, mod: 50, bob: 100}, "m-alice", "pl1")
		b.powerLevels("pl3", bob, 7, "", map[string]int{alice: 100, mod: 50, bob: 100, carol: 75}, "m-bob", "pl2")
		b.topic("topic-a", alice, 8, "m-alice", "pl1")
		got := b.resolve(nil, b.with(s0, "pl3"), b.with(s0, "topic-a"))
		wantEntry(t, got, plKey, "pl3")
		wantEntry(t, got, topicKey, "topic-a")
	})
}

// TestEdgeInputs: no states, one state, identical states, missing events,
// non-state events and unsupported versions.
func TestEdgeInputs(t *testing.T) {
	b := newBuilder(t, id.RoomV11)
	s0 := b.base()
	if got, err := Resolve(id.RoomV11, nil, b.rm.fetch, nil); err != nil || len(got) != 0 {
		t.Errorf("no states: %v, %v", got, err)
	}
	for _, states := range [][]StateMap{{s0}, {s0, s0.Clone(), s0.Clone()}} {
		got, err := Resolve(id.RoomV11, states, b.rm.fetch, nil)
		if err != nil {
			t.Fatal(err)
		}
		assertState(t, got, s0)
	}
	b.topic("topic-a", alice, 10, "m-alice", "pl1")
	withTopic := b.with(s0, "topic-a")
	missing := func(eid string) bool { return eid == withTopic[topicKey] }
	fetch := func(e string) (*pdu.PDU, bool) {
		if missing(e) {
			return nil, false
		}
		return b.rm.fetch(e)
	}
	if _, err := Resolve(id.RoomV11, []StateMap{s0, withTopic}, fetch, nil); !errors.Is(err, ErrMissingEvent) {
		t.Errorf("missing state event: err = %v", err)
	}
	missing = func(e string) bool { return e == eid("pl1") }
	if _, err := Resolve(id.RoomV11, []StateMap{s0, withTopic}, fetch, nil); !errors.Is(err, ErrMissingEvent) {
		t.Errorf("missing auth event: err = %v", err)
	}
	msg := b.event(ev{name: "msg", typ: "m.room.message", sender: alice, content: `{}`, ts: 11})
	b.rm.events[msg].StateKey = nil
	bad := b.with(s0)
	bad[StateKey{Type: "m.room.message"}] = msg
	if _, err := Resolve(id.RoomV11, []StateMap{s0, bad}, b.rm.fetch, nil); !errors.Is(err, ErrNotStateEvent) {
		t.Errorf("non-state event: err = %v", err)
	}
	for _, v := range []id.RoomVersion{id.RoomV1, "org.example.unknown"} {
		if _, err := Resolve(v, []StateMap{s0, withTopic}, b.rm.fetch, nil); !errors.Is(err, ErrUnsupportedVersion) {
			t.Errorf("version %s: err = %v", v, err)
		}
	}
}

// TestSenderPower pins the power level used by the reverse topological
// ordering: from the event's own auth events; the creator 100 without
// power levels before v12, infinite from v12.
func TestSenderPower(t *testing.T) {
	perVersion(t, func(t *testing.T, b *builder) {
		b.base()
		r := newResolver(b.rm.version, b.rm.fetch, nil)
		creator := int64(100)
		if b.rm.version.PrivilegedRoomCreators() {
			creator = infinitePower
		}
		b.topic("topic-carol", carol, 9, "m-alice")
		for name, want := range map[string]int64{"pl1": creator, "m-mod": 50, "m-bob": 0, "topic-carol": 0} {
			got, err := r.senderPower(b.rm.events[eid(name)])
			if err != nil || got != want {
				t.Errorf("%s: power %d, %v; want %d", name, got, err, want)
			}
		}
		b.invalid = append(b.invalid, "topic-carol")
		b.checkAll(nil, b.invalid...)
	})
	for _, tc := range []struct {
		version id.RoomVersion
		value   string
		want    int64
		ok      bool
	}{
		{id.RoomV9, `"75"`, 75, true}, {id.RoomV9, `" 7 "`, 7, true}, {id.RoomV9, `true`, 1, true},
		{id.RoomV9, `"x"`, 0, false}, {id.RoomV10, `"75"`, 0, false}, {id.RoomV10, `75`, 75, true},
	} {
		r := newResolver(tc.version, nil, nil)
		if got, ok := r.powerInt(gjson.Parse(tc.value)); got != tc.want || ok != tc.ok {
			t.Errorf("v%s %s: %d, %v; want %d, %v", tc.version, tc.value, got, ok, tc.want, tc.ok)
		}
	}
}

// TestRejectedAuthEvents: a rejected event is never an auth event in the
// iterative auth checks, whether it comes from the state or from the
// event's own auth_events.
func TestRejectedAuthEvents(t *testing.T) {
	perVersion(t, func(t *testing.T, b *builder) {
		s0 := b.base()
		b.joinRule("jr-rejected", alice, "public", 6, "m-alice", "pl1")
		b.rm.events[eid("jr-rejected")].InternalMeta.Rejected = true
		join := b.member("m-carol", carol, carol, "join", 20, "pl1", "jr1")
		r := newResolver(b.rm.version, b.rm.fetch, nil)
		pick := func(state StateMap) string {
			auth, err := r.authEventsFor(b.rm.events[join], state)
			if err != nil {
				t.Fatal(err)
			}
			for _, ae := range auth {
				if ae.Type == "m.room.join_rules" {
					return string(ae.InternalMeta.EventID)
				}
			}
			return ""
		}
		if got := pick(b.with(s0, "jr-rejected")); got != eid("jr1") {
			t.Errorf("rejected state entry: join rules from %q, want the event's own jr1", got)
		}
		b.joinRule("jr-invite", alice, "invite", 7, "m-alice", "pl1")
		if got := pick(b.with(s0, "jr-invite")); got != eid("jr-invite") {
			t.Errorf("state entry: join rules from %q, want jr-invite", got)
		}
		if got, err := r.iterativeAuthChecks(StateMap{}, []string{join}); err != nil || got[carolKey] != join {
			t.Fatalf("control: carol's join not authorised by its own auth events: %v, %v", got, err)
		}
		b.rm.events[eid("jr1")].InternalMeta.Rejected = true
		if got := pick(StateMap{}); got != "" {
			t.Errorf("rejected own auth event: join rules from %q, want none", got)
		}
		// Without join rules the room is invite-only: carol's join fails.
		got, err := r.iterativeAuthChecks(StateMap{}, []string{join})
		if err != nil || got[carolKey] != "" {
			t.Errorf("join authorised by a rejected event: %v, %v", got, err)
		}
	})
}

// TestAuthPanicIsRefusal: mautrix's power levels rule dereferences a nil
// level for a null user level in an old room's power levels; resolution
// treats the panic as a refusal instead of crashing the caller (Apply).
func TestAuthPanicIsRefusal(t *testing.T) {
	b := newBuilder(t, id.RoomV9)
	s0 := b.base()
	b.event(ev{name: "pl-null", typ: "m.room.power_levels", sender: alice, ts: 6, auth: []string{"m-alice", "pl1"},
		content: `{"users":{"` + alice + `":100,"` + mod + `":null}}`})
	next := b.powerLevels("pl-next", alice, 7, "", map[string]int{alice: 100, mod: 50}, "m-alice", "pl-null")
	r := newResolver(b.rm.version, b.rm.fetch, nil)
	got, err := r.iterativeAuthChecks(b.with(s0, "pl-null"), []string{next})
	if err != nil || got[plKey] != eid("pl-null") {
		t.Errorf("got %v, %v; want pl-next refused", got[plKey], err)
	}
}
