package stateres

import (
	"testing"

	"github.com/tidwall/gjson"
	"maunium.net/go/mautrix/id"
)

// batchCases are the README's batch fixtures: files applied in order.
var batchCases = []struct {
	name     string
	files    []string
	expected string
}{
	{"minimal private chat", []string{"bootstrap-private-chat.json"}, "minimal_private_chat.json"},
	{"minimal public chat", []string{"bootstrap-public-chat.json"}, "minimal_public_chat.json"},
	{"timestamp tie-break", []string{"bootstrap-private-chat.json", "origin-server-ts-tiebreak.json"}, "origin_server_ts_tiebreak.json"},
	{"ban vs power levels", []string{"bootstrap-public-chat.json", "ban-vs-power-levels-alice.json", "ban-vs-power-levels-bob.json"}, "ban_vs_power_levels.json"},
	{"topic vs power levels", []string{"bootstrap-public-chat.json", "topic-vs-power-levels-alice.json", "topic-vs-power-levels-bob.json"}, "topic_vs_power_levels.json"},
	{"admin vs moderator", []string{"bootstrap-public-chat.json", "power-levels-admin-vs-mod-alice.json", "power-levels-admin-vs-mod-bob.json"}, "power_levels_admin_vs_mod.json"},
	{"topic vs ban", []string{"bootstrap-public-chat.json", "topic-vs-ban-common.json", "topic-vs-ban-alice.json", "topic-vs-ban-bob.json"}, "topic_vs_ban.json"},
	{"join rules vs join", []string{"bootstrap-public-chat.json", "join-rules-vs-join-common.json", "join-rules-vs-join-alice.json", "join-rules-vs-join-ella.json"}, "join_rules_vs_join.json"},
	{"concurrent joins", []string{"bootstrap-public-chat.json", "concurrent-joins-charlie.json", "concurrent-joins-ella.json"}, "concurrent_joins.json"},
}

// stateMapCases are the README's MSC4297 cases: two given state sets.
var stateMapCases = []struct {
	name     string
	dir      string
	pdus     string
	states   [2]string
	expected string
}{
	{"problem A v2.0", "MSC4297-problem-A/", "pdus-v11.json", [2]string{"state-bob.json", "state-charlie.json"}, "msc4297_problem_a_state_res_v2_0.json"},
	{"problem A v2.1", "MSC4297-problem-A/", "pdus-v12.json", [2]string{"state-bob.json", "state-charlie.json"}, "msc4297_problem_a_state_res_v2_1.json"},
	{"problem B v2.0", "MSC4297-problem-B/", "pdus-v11.json", [2]string{"state-eve.json", "state-zara.json"}, "msc4297_problem_b_state_res_v2_0.json"},
	{"problem B v2.1", "MSC4297-problem-B/", "pdus-v12.json", [2]string{"state-eve.json", "state-zara.json"}, "msc4297_problem_b_state_res_v2_1.json"},
}

// TestFixturesPDUByPDU applies each batch case event by event, as a
// server does, and compares the resolved forward extremities.
func TestFixturesPDUByPDU(t *testing.T) {
	for _, tc := range batchCases {
		t.Run(tc.name, func(t *testing.T) {
			rm := newRoom(fixtureVersion(t, tc.files[0]))
			var ids []string
			for _, f := range tc.files {
				ids = append(ids, rm.loadEvents(t, f, identity)...)
			}
			assertState(t, rm.apply(t, ids, nil), expected(t, tc.expected, identity))
		})
	}
}

// TestFixturesBatched resolves each file at once against the state so
// far, every PDU in a state map of its own, and all files in one step:
// the README says both must agree with the event-by-event result.
func TestFixturesBatched(t *testing.T) {
	for _, tc := range batchCases {
		t.Run(tc.name, func(t *testing.T) {
			rm := newRoom(fixtureVersion(t, tc.files[0]))
			var state StateMap
			var all []StateMap
			for _, f := range tc.files {
				var states []StateMap
				if state != nil {
					states = append(states, state)
				}
				for _, eid := range rm.loadEvents(t, f, identity) {
					p := rm.events[eid]
					single := StateAfter(nil, eid, p)
					states = append(states, single)
					all = append(all, single)
				}
				var err error
				if state, err = Resolve(rm.version, states, rm.fetch, nil); err != nil {
					t.Fatalf("%s: %v", f, err)
				}
			}
			want := expected(t, tc.expected, identity)
			assertState(t, state, want)
			atomic, err := Resolve(rm.version, all, rm.fetch, nil)
			if err != nil {
				t.Fatal(err)
			}
			assertState(t, atomic, want)
		})
	}
}

// TestFixturesMSC4297 resolves the two given state sets of each MSC4297
// problem with v2.0 (v11 events) and v2.1 (v12 events).
func TestFixturesMSC4297(t *testing.T) {
	results := make(map[string]StateMap)
	for _, tc := range stateMapCases {
		t.Run(tc.name, func(t *testing.T) {
			rename, version := caseIDs(t, tc.dir+tc.pdus)
			rm := newRoom(version)
			rm.loadEvents(t, tc.dir+tc.pdus, rename)
			states := make([]StateMap, 2)
			for i, f := range tc.states {
				states[i] = fixtureStateSet(t, rm, tc.dir+f, rename)
			}
			got, err := Resolve(version, states, rm.fetch, nil)
			if err != nil {
				t.Fatal(err)
			}
			assertState(t, got, expected(t, tc.expected, rename))
			results[tc.name] = originalIDs(t, got, tc.dir+tc.pdus, rename)
		})
	}
	// MSC4297's point: v2.1 must not give v2.0's (state-reset) answers.
	for _, p := range []string{"problem A", "problem B"} {
		if v20, v21 := results[p+" v2.0"], results[p+" v2.1"]; v20 != nil && v21 != nil && len(v20) == len(v21) {
			same := true
			for k, v := range v20 {
				same = same && v21[k] == v
			}
			if same {
				t.Errorf("%s: v2.0 and v2.1 resolved to the same state", p)
			}
		}
	}
}

// caseIDs gives the ID mapping and room version of a state-map case.
func caseIDs(t *testing.T, pdus string) (func(string) string, id.RoomVersion) {
	version := fixtureVersion(t, pdus)
	if version.RoomIDIsCreateEventID() {
		return v12IDs(t, pdus), version
	}
	return identity, version
}

// fixtureStateSet reads a state-*.json list of event IDs as a state map.
func fixtureStateSet(t *testing.T, rm *room, path string, rename func(string) string) StateMap {
	t.Helper()
	raw, err := testdata.ReadFile("testdata/fixtures/" + path)
	if err != nil {
		t.Fatal(err)
	}
	out := StateMap{}
	for _, r := range gjson.ParseBytes(raw).Array() {
		eid := rename(r.Str)
		p, ok := rm.events[eid]
		if !ok || p.StateKey == nil {
			t.Fatalf("%s: %s is not a state event of the case", path, r.Str)
		}
		out[StateKey{Type: p.Type, StateKey: *p.StateKey}] = eid
	}
	return out
}

// originalIDs maps a result's event IDs back to the fixture's names, so
// that v11 and v12 results can be compared.
func originalIDs(t *testing.T, s StateMap, pdus string, rename func(string) string) StateMap {
	raw, err := testdata.ReadFile("testdata/fixtures/" + pdus)
	if err != nil {
		t.Fatal(err)
	}
	names := make(map[string]string)
	for _, r := range gjson.ParseBytes(raw).Array() {
		names[rename(r.Get("event_id").Str)] = r.Get("event_id").Str
	}
	out := StateMap{}
	for k, eid := range s {
		out[k] = names[eid]
	}
	return out
}
