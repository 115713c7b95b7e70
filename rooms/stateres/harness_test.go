package stateres

import (
	"embed"
	"encoding/json/jsontext"
	jsonv2 "encoding/json/v2"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
	"maunium.net/go/mautrix/federation/eventauth"
	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/id"
)

// testdata holds the ruma state-res fixtures (MIT, testdata/LICENSE-ruma).
//
//go:embed testdata
var testdata embed.FS

func init() {
	// Fixture and synthetic events have readable IDs, not reference
	// hashes; eventauth's first-join rule compares the create event's ID.
	pdu.UseInternalMetaForGetEventID = true
}

// room is a set of events by ID, what a caller's store would hold.
type room struct {
	version id.RoomVersion
	order   []string // event IDs in the order they were added
	events  map[string]*pdu.PDU
	after   map[string]StateMap // set by apply: the state after each event
}

func newRoom(version id.RoomVersion) *room {
	return &room{version: version, events: make(map[string]*pdu.PDU)}
}

func (rm *room) put(eid string, p *pdu.PDU) {
	p.InternalMeta.EventID = id.EventID(eid)
	if _, dup := rm.events[eid]; !dup {
		rm.order = append(rm.order, eid)
	}
	rm.events[eid] = p
}

func (rm *room) fetch(eid string) (*pdu.PDU, bool) {
	p, ok := rm.events[eid]
	return p, ok
}

// positional serves eventauth's own auth_events lookups: one entry per
// ID, nil where missing.
func (rm *room) positional(ids []id.EventID) ([]*pdu.PDU, error) {
	out := make([]*pdu.PDU, len(ids))
	for i, eid := range ids {
		out[i] = rm.events[string(eid)]
	}
	return out, nil
}

// authorise applies the checks on receipt that involve auth: against the
// event's own auth events, then against the state before it.
func (rm *room) authorise(p *pdu.PDU, before StateMap, getKey pdu.GetKeyFunc) error {
	if getKey == nil {
		getKey = noKeys
	}
	check := func(authEvents []*pdu.PDU) error {
		err := eventauth.Authorize(rm.version, p, authEvents, rm.positional, getKey)
		if err != nil && p.Type == "m.room.member" {
			// Same third-party invite fix as the package's iterative checks.
			if authEvents == nil {
				authEvents, _ = rm.positional(p.AuthEvents)
			}
			if errors.Is(err, eventauth.ErrThirdPartyInviteNotSigned) {
				return thirdPartyInviteSigned(p, authEvents)
			}
		}
		return err
	}
	if err := check(nil); err != nil {
		return fmt.Errorf("against auth events: %w", err)
	}
	if p.Type == "m.room.create" {
		return nil
	}
	fromState := []*pdu.PDU{}
	for _, k := range p.AuthEventSelection(rm.version) {
		if eid, ok := before[k]; ok {
			fromState = append(fromState, rm.events[eid])
		}
	}
	if err := check(fromState); err != nil {
		return fmt.Errorf("against state before: %w", err)
	}
	return nil
}

// apply adds events in order as a server would: the state before each is
// the resolution of the states after its prev_events; an event that fails
// auth is marked rejected and leaves the state unchanged. It returns the
// resolution of the states after the forward extremities.
func (rm *room) apply(t *testing.T, eids []string, getKey pdu.GetKeyFunc) StateMap {
	t.Helper()
	after := make(map[string]StateMap)
	rm.after = after
	named := make(map[string]bool)
	for _, eid := range eids {
		p := rm.events[eid]
		var prevStates []StateMap
		for _, prev := range p.PrevEvents {
			s, ok := after[string(prev)]
			if !ok {
				t.Fatalf("%s: prev event %s not applied yet", eid, prev)
			}
			prevStates = append(prevStates, s)
			named[string(prev)] = true
		}
		before, err := Resolve(rm.version, prevStates, rm.fetch, getKey)
		if err != nil {
			t.Fatalf("state before %s: %v", eid, err)
		}
		if err := rm.authorise(p, before, getKey); err != nil {
			t.Logf("%s rejected: %v", eid, err)
			p.InternalMeta.Rejected = true
			after[eid] = before
			continue
		}
		after[eid] = StateAfter(before, eid, p)
	}
	var leaves []StateMap
	for _, eid := range eids {
		if !named[eid] {
			leaves = append(leaves, after[eid])
		}
	}
	final, err := Resolve(rm.version, leaves, rm.fetch, getKey)
	if err != nil {
		t.Fatalf("resolving forward extremities: %v", err)
	}
	return final
}

// loadEvents reads a fixture file of PDUs into rm (in file order) and
// returns their IDs. rename maps fixture IDs to the IDs used in rm.
func (rm *room) loadEvents(t *testing.T, path string, rename func(string) string) []string {
	t.Helper()
	raw, err := testdata.ReadFile("testdata/fixtures/" + path)
	if err != nil {
		t.Fatal(err)
	}
	var list []jsontext.Value
	if err := jsonv2.Unmarshal(raw, &list); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var ids []string
	for _, v := range list {
		var meta struct {
			EventID  string `json:"event_id"`
			Rejected bool   `json:"rejected"`
		}
		p := new(pdu.PDU)
		if err := jsonv2.Unmarshal(v, &meta); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if err := jsonv2.Unmarshal(v, p); err != nil {
			t.Fatalf("%s: %s: %v", path, meta.EventID, err)
		}
		p.Unknown = nil // event_id, test-comments
		p.InternalMeta.Rejected = meta.Rejected
		for i, a := range p.AuthEvents {
			p.AuthEvents[i] = id.EventID(rename(string(a)))
		}
		for i, a := range p.PrevEvents {
			p.PrevEvents[i] = id.EventID(rename(string(a)))
		}
		if p.RoomID != "" && rm.version.RoomIDIsCreateEventID() {
			p.RoomID = id.RoomID("!" + rename("$" + string(p.RoomID[1:]))[1:])
		}
		eid := rename(meta.EventID)
		rm.put(eid, p)
		ids = append(ids, eid)
	}
	return ids
}

// fixtureVersion is the room version in the first file's create event.
func fixtureVersion(t *testing.T, path string) id.RoomVersion {
	t.Helper()
	raw, err := testdata.ReadFile("testdata/fixtures/" + path)
	if err != nil {
		t.Fatal(err)
	}
	v := gjson.GetBytes(raw, `#(type=="m.room.create").content.room_version`).Str
	if v == "" {
		t.Fatalf("%s: no m.room.create room_version", path)
	}
	return id.RoomVersion(v)
}

// v12IDs maps readable fixture IDs to 44-character ones, as room v12's
// auth rules need (the room ID is the create event's ID), keeping their
// relative order: a 4-digit rank in sorted order, then the name.
func v12IDs(t *testing.T, paths ...string) func(string) string {
	t.Helper()
	names := make(map[string]bool)
	for _, path := range paths {
		raw, err := testdata.ReadFile("testdata/fixtures/" + path)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range gjson.ParseBytes(raw).Array() {
			names[r.Get("event_id").Str] = true
		}
	}
	mapped := make(map[string]string)
	for i, name := range slices.Sorted(maps.Keys(names)) {
		s := fmt.Sprintf("$%04d%s%s", i, name[1:], strings.Repeat("+", 44))
		mapped[name] = s[:44]
	}
	return func(eid string) string {
		if m, ok := mapped[eid]; ok {
			return m
		}
		t.Fatalf("unknown fixture event %s", eid)
		return ""
	}
}

// expected reads an expected/*.json file as a state map.
func expected(t *testing.T, name string, rename func(string) string) StateMap {
	t.Helper()
	raw, err := testdata.ReadFile("testdata/expected/" + name)
	if err != nil {
		t.Fatal(err)
	}
	out := StateMap{}
	for _, r := range gjson.ParseBytes(raw).Array() {
		k := StateKey{Type: r.Get("type").Str, StateKey: r.Get("state_key").Str}
		out[k] = rename(r.Get("event_id").Str)
	}
	return out
}

// assertState fails with a readable, sorted diff.
func assertState(t *testing.T, got, want StateMap) {
	t.Helper()
	if maps.Equal(got, want) {
		return
	}
	keys := make(map[StateKey]bool)
	for k := range got {
		keys[k] = true
	}
	for k := range want {
		keys[k] = true
	}
	sorted := slices.SortedFunc(maps.Keys(keys), func(a, b StateKey) int {
		return strings.Compare(a.Type+"\x00"+a.StateKey, b.Type+"\x00"+b.StateKey)
	})
	for _, k := range sorted {
		if got[k] != want[k] {
			t.Errorf("(%s, %q): got %q, want %q", k.Type, k.StateKey, got[k], want[k])
		}
	}
}

func identity(s string) string { return s }
