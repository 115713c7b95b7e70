package stateres

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// propertyRuns is how many shuffles each case gets; the seeds are fixed
// so a failure reproduces.
const propertyRuns = 60

// randomTopologicalOrder is a random order of ids in which every event
// comes after its prev_events.
func randomTopologicalOrder(rng *rand.Rand, rm *room, ids []string) []string {
	done := make(map[string]bool)
	var out []string
	pending := slices.Clone(ids)
	for len(pending) > 0 {
		var ready []int
		for i, eid := range pending {
			ok := true
			for _, prev := range rm.events[eid].PrevEvents {
				ok = ok && done[string(prev)]
			}
			if ok {
				ready = append(ready, i)
			}
		}
		pick := ready[rng.IntN(len(ready))]
		eid := pending[pick]
		done[eid] = true
		out = append(out, eid)
		pending = slices.Delete(pending, pick, pick+1)
	}
	return out
}

// TestPropertyApplyOrder applies each batch case in many random orders
// that respect prev_events: the resolved forward extremities never change.
func TestPropertyApplyOrder(t *testing.T) {
	for ci, tc := range batchCases {
		t.Run(tc.name, func(t *testing.T) {
			want := expected(t, tc.expected, identity)
			for run := range propertyRuns {
				rng := rand.New(rand.NewPCG(uint64(ci), uint64(run)))
				rm := newRoom(fixtureVersion(t, tc.files[0]))
				var ids []string
				for _, f := range tc.files {
					ids = append(ids, rm.loadEvents(t, f, identity)...)
				}
				got := rm.apply(t, randomTopologicalOrder(rng, rm, ids), nil)
				if !mapsEqual(got, want) {
					t.Fatalf("run %d: order changed the result", run)
				}
			}
		})
	}
}

// TestPropertyShuffledStates: for many subsets of the states a server sees
// while applying the batch cases, and for the MSC4297 state sets, the
// resolution does not depend on the order of the states, on repeated
// states, or on map iteration order.
func TestPropertyShuffledStates(t *testing.T) {
	for ci, tc := range batchCases {
		t.Run(tc.name, func(t *testing.T) {
			rm := newRoom(fixtureVersion(t, tc.files[0]))
			var ids []string
			for _, f := range tc.files {
				ids = append(ids, rm.loadEvents(t, f, identity)...)
			}
			rm.apply(t, ids, nil)
			// The state after each event, and each event alone.
			var pool []StateMap
			for _, eid := range ids {
				pool = append(pool, rm.after[eid], StateAfter(nil, eid, rm.events[eid]))
			}
			for run := range propertyRuns {
				rng := rand.New(rand.NewPCG(uint64(100+ci), uint64(run)))
				n := 1 + rng.IntN(len(pool))
				subset := make([]StateMap, n)
				for i := range subset {
					subset[i] = pool[rng.IntN(len(pool))]
				}
				checkShuffles(t, rm, rng, subset)
			}
		})
	}
	for ci, tc := range stateMapCases {
		t.Run(tc.name, func(t *testing.T) {
			rename, version := caseIDs(t, tc.dir+tc.pdus)
			rm := newRoom(version)
			rm.loadEvents(t, tc.dir+tc.pdus, rename)
			var states []StateMap
			for _, f := range tc.states {
				states = append(states, fixtureStateSet(t, rm, tc.dir+f, rename))
			}
			for run := range propertyRuns / 6 {
				checkShuffles(t, rm, rand.New(rand.NewPCG(uint64(200+ci), uint64(run))), states)
			}
		})
	}
}

// checkShuffles resolves states, then shuffled copies of it with a
// duplicate added, rebuilt map by map, and requires the same answer.
func checkShuffles(t *testing.T, rm *room, rng *rand.Rand, states []StateMap) {
	t.Helper()
	want, err := Resolve(rm.version, states, rm.fetch, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 6 {
		shuffled := make([]StateMap, 0, len(states)+1)
		for _, s := range states {
			shuffled = append(shuffled, rebuilt(rng, s))
		}
		shuffled = append(shuffled, rebuilt(rng, states[rng.IntN(len(states))]))
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		got, err := Resolve(rm.version, shuffled, rm.fetch, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !mapsEqual(got, want) {
			assertState(t, got, want)
			t.Fatalf("shuffled states resolved differently")
		}
	}
}

// rebuilt copies s inserting its entries in a random order.
func rebuilt(rng *rand.Rand, s StateMap) StateMap {
	keys := make([]StateKey, 0, len(s))
	for k := range s {
		keys = append(keys, k)
	}
	rng.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
	out := make(StateMap, len(keys))
	for _, k := range keys {
		out[k] = s[k]
	}
	return out
}

func mapsEqual(a, b StateMap) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
