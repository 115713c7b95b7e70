package stateres

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json/jsontext"
	"strconv"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/id"
)

const (
	alice = "@alice:a.example"
	bob   = "@bob:b.example"
	carol = "@carol:c.example"
	mod   = "@mod:a.example"
)

// versions the synthetic cases run under: v2.0 with and without the
// creator in content, and v2.1.
var versions = []id.RoomVersion{id.RoomV10, id.RoomV11, id.RoomV12}

// eid is a synthetic event ID: the name padded to 44 characters with
// '+', which sorts before every character names use, so IDs sort as their
// names do; 44 characters make a valid v12 room ID of the create event.
func eid(name string) string {
	return ("$" + name + strings.Repeat("+", 44))[:44]
}

// builder makes synthetic events of one room.
type builder struct {
	t       *testing.T
	rm      *room
	roomID  id.RoomID
	invalid []string // names of events meant to fail the auth rules
}

func newBuilder(t *testing.T, version id.RoomVersion) *builder {
	b := &builder{t: t, rm: newRoom(version), roomID: "!room:a.example"}
	content := `{"room_version":"` + string(version) + `"}`
	if version.CreatorInContent() {
		content = `{"creator":"` + alice + `","room_version":"` + string(version) + `"}`
	}
	create := b.event(ev{name: "create", typ: "m.room.create", sender: alice, content: content})
	if version.RoomIDIsCreateEventID() {
		b.roomID = id.RoomID("!" + create[1:])
	}
	return b
}

// ev describes one synthetic state event. auth and prev are names; the
// create event is added to auth where the room version wants it.
type ev struct {
	name, typ, key, sender, content string
	ts                              int64
	auth, prev                      []string
}

func (b *builder) event(e ev) string {
	key := e.key
	p := &pdu.PDU{
		Type:           e.typ,
		StateKey:       &key,
		Sender:         id.UserID(e.sender),
		Content:        jsontext.Value(e.content),
		OriginServerTS: e.ts,
		AuthEvents:     []id.EventID{},
		PrevEvents:     []id.EventID{},
	}
	if e.typ != "m.room.create" {
		p.RoomID = b.roomID
		if !b.rm.version.RoomIDIsCreateEventID() {
			p.AuthEvents = append(p.AuthEvents, id.EventID(eid("create")))
		}
	} else if !b.rm.version.RoomIDIsCreateEventID() {
		p.RoomID = b.roomID
	}
	for _, a := range e.auth {
		p.AuthEvents = append(p.AuthEvents, id.EventID(eid(a)))
	}
	for _, a := range e.prev {
		p.PrevEvents = append(p.PrevEvents, id.EventID(eid(a)))
	}
	b.rm.put(eid(e.name), p)
	return eid(e.name)
}

// member adds a membership event of user, sent by sender.
func (b *builder) member(name, sender, user, membership string, ts int64, auth ...string) string {
	return b.event(ev{name: name, typ: "m.room.member", key: user, sender: sender,
		content: `{"membership":"` + membership + `"}`, ts: ts, auth: auth})
}

// powerLevels adds a power levels event; users lists the levels of the
// room's users, without the creator in v12 (creators may not appear).
func (b *builder) powerLevels(name, sender string, ts int64, extra string, users map[string]int, auth ...string) string {
	var sb strings.Builder
	sb.WriteString(`{`)
	if extra != "" {
		sb.WriteString(extra + `,`)
	}
	sb.WriteString(`"users":{`)
	first := true
	for _, u := range []string{alice, bob, carol, mod} {
		level, ok := users[u]
		if !ok || (u == alice && b.rm.version.PrivilegedRoomCreators()) {
			continue
		}
		if !first {
			sb.WriteString(",")
		}
		first = false
		sb.WriteString(`"` + u + `":` + strconv.Itoa(level))
	}
	sb.WriteString(`}}`)
	return b.event(ev{name: name, typ: "m.room.power_levels", sender: sender, content: sb.String(), ts: ts, auth: auth})
}

// base is a room with alice (creator, 100), mod (50) and bob (0) joined,
// public join rules: the events create, m-alice, pl1, jr1, m-mod, m-bob.
func (b *builder) base() StateMap {
	b.event(ev{name: "m-alice", typ: "m.room.member", key: alice, sender: alice,
		content: `{"membership":"join"}`, ts: 1, prev: []string{"create"}})
	b.powerLevels("pl1", alice, 2, "", map[string]int{alice: 100, mod: 50}, "m-alice")
	b.event(ev{name: "jr1", typ: "m.room.join_rules", sender: alice,
		content: `{"join_rule":"public"}`, ts: 3, auth: []string{"m-alice", "pl1"}})
	b.member("m-mod", mod, mod, "join", 4, "pl1", "jr1")
	b.member("m-bob", bob, bob, "join", 5, "pl1", "jr1")
	return b.state("create", "m-alice", "pl1", "jr1", "m-mod", "m-bob")
}

// checkAll fails unless every event but the named ones passes the auth
// rules against its own auth events, as on receipt: the synthetic rooms
// must be valid for their outcomes to mean anything.
func (b *builder) checkAll(getKey pdu.GetKeyFunc, except ...string) {
	b.t.Helper()
	skip := make(map[string]bool)
	for _, n := range except {
		skip[eid(n)] = true
	}
	for _, e := range b.rm.order {
		p := b.rm.events[e]
		if skip[e] || p.StateKey == nil {
			continue
		}
		auth := StateMap{}
		for _, a := range p.AuthEvents {
			ae := b.rm.events[string(a)]
			auth[StateKey{Type: ae.Type, StateKey: *ae.StateKey}] = string(a)
		}
		if err := b.rm.authorise(p, auth, getKey); err != nil {
			b.t.Errorf("synthetic event %s is invalid: %v", e, err)
		}
	}
}

// state is the state map of the named events.
func (b *builder) state(names ...string) StateMap {
	out := StateMap{}
	for _, n := range names {
		p := b.rm.events[eid(n)]
		if p == nil {
			b.t.Fatalf("no event %s", n)
		}
		out[StateKey{Type: p.Type, StateKey: *p.StateKey}] = eid(n)
	}
	return out
}

// with is s plus the named events.
func (b *builder) with(s StateMap, names ...string) StateMap {
	out := s.Clone()
	for k, v := range b.state(names...) {
		out[k] = v
	}
	return out
}

// resolve resolves states in both orders and checks they agree.
func (b *builder) resolve(getKey pdu.GetKeyFunc, states ...StateMap) StateMap {
	b.t.Helper()
	got, err := Resolve(b.rm.version, states, b.rm.fetch, getKey)
	if err != nil {
		b.t.Fatalf("Resolve: %v", err)
	}
	reversed := make([]StateMap, len(states))
	for i, s := range states {
		reversed[len(states)-1-i] = s
	}
	again, err := Resolve(b.rm.version, reversed, b.rm.fetch, getKey)
	if err != nil {
		b.t.Fatalf("Resolve (reversed): %v", err)
	}
	assertState(b.t, again, got)
	b.checkAll(getKey, b.invalid...)
	return got
}

// testKey is a fixed ed25519 key pair and a GetKeyFunc that knows it for
// one server.
func testKey(seedByte byte, server string) (ed25519.PrivateKey, id.SigningKey, pdu.GetKeyFunc) {
	seed := make([]byte, ed25519.SeedSize)
	for i := range seed {
		seed[i] = seedByte
	}
	priv := ed25519.NewKeyFromSeed(seed)
	pub := id.SigningKey(base64.RawStdEncoding.EncodeToString(priv.Public().(ed25519.PublicKey)))
	getKey := func(serverName string, keyID id.KeyID, _ time.Time) (id.SigningKey, time.Time, error) {
		if serverName == server && keyID == "ed25519:1" {
			return pub, time.UnixMilli(1 << 50), nil
		}
		return "", time.Time{}, nil
	}
	return priv, pub, getKey
}
