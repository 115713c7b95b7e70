// Package stateres implements Matrix state resolution v2 (room versions
// 2-11) and v2.1 (MSC4297, room version 12) as pure functions: no I/O, no
// clock, no randomness, and no result that depends on Go map iteration
// order or on the order of the inputs. It is safe to call inside FSM.Apply.
//
// API:
//
//	type StateKey = pdu.StateKey            // (type, state_key)
//	type StateMap map[StateKey]string       // -> event ID
//	type Fetch func(eventID string) (*pdu.PDU, bool)
//	func Resolve(version id.RoomVersion, states []StateMap, fetch Fetch, getKey pdu.GetKeyFunc) (StateMap, error)
//	func StateAfter(before StateMap, eventID string, ev *pdu.PDU) StateMap
//	func FromPairs(m map[[2]string]string) StateMap / (StateMap).Pairs()
//
// The caller supplies every event the algorithm needs through fetch: each
// event named in a state map and every event in their auth chains (and,
// for room version 12, the m.room.create event named by the room ID). A
// missing event is an error wrapping ErrMissingEvent, never silently
// skipped: skipping would let two nodes with different event sets reach
// different states. Fetch the missing events (/event_auth) and retry.
//
// Events flagged pdu.PDU.InternalMeta.Rejected are never used as auth
// events during the iterative auth checks (spec: "Rejected auth events are
// deliberately excluded"); otherwise rejected events that appear in a
// state map are resolved like any other, as the spec requires.
//
// The auth rules are mautrix's eventauth.Authorize. Its rule for
// join_authorised_via_users_server verifies the authorising server's
// signature, so Resolve takes getKey; with a nil getKey no key is known and
// such membership events fail that rule during resolution. Inside Apply,
// pass a getKey that reads keys already stored in the FSM. One rule is
// patched here: mautrix v0.32.0 refuses every third-party invite (rule
// 5.4.1.7 reads the wrong event and field), so the identity server
// signature is checked as the spec says (auth.go).
//
// All events must belong to one room. Tie-breaks use the event IDs that
// the states and auth_events name; but eventauth's first-join rule (5.3.1)
// computes the create event's ID from its content, so fetch must return
// the real PDUs (the tests, whose IDs are readable names, set
// pdu.UseInternalMetaForGetEventID).
//
// Where the spec text and the deployed implementations (Synapse, ruma)
// differ, this package follows the implementations so that rooms converge
// with them: m.room.create counts as a power event, and when step 1
// enlarges X with the auth chain of a power event it walks auth_events
// only through events of the full conflicted set.
package stateres

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/id"
)

// StateKey is a state map key: (event type, state key).
type StateKey = pdu.StateKey

// StateMap maps (type, state_key) to an event ID.
type StateMap map[StateKey]string

// Fetch returns the event with the given ID, or false if the caller does
// not have it.
type Fetch func(eventID string) (*pdu.PDU, bool)

var (
	// ErrMissingEvent: fetch could not supply an event the algorithm needs.
	ErrMissingEvent = errors.New("stateres: missing event")
	// ErrUnsupportedVersion: the room version does not use state resolution v2.
	ErrUnsupportedVersion = errors.New("stateres: room version does not use state resolution v2")
	// ErrNotStateEvent: a state map or auth chain names an event without a state_key.
	ErrNotStateEvent = errors.New("stateres: not a state event")
)

// Clone returns a copy of the map.
func (s StateMap) Clone() StateMap {
	if s == nil {
		return StateMap{}
	}
	return maps.Clone(s)
}

// FromPairs converts the fsm's [type, state_key] -> event ID maps.
func FromPairs(m map[[2]string]string) StateMap {
	out := make(StateMap, len(m))
	for k, v := range m {
		out[StateKey{Type: k[0], StateKey: k[1]}] = v
	}
	return out
}

// Pairs converts to the fsm's [type, state_key] -> event ID form.
func (s StateMap) Pairs() map[[2]string]string {
	out := make(map[[2]string]string, len(s))
	for k, v := range s {
		out[[2]string{k.Type, k.StateKey}] = v
	}
	return out
}

// StateAfter is S'(E): the state before E with E's own entry replaced when
// E is a state event. before is not modified.
func StateAfter(before StateMap, eventID string, ev *pdu.PDU) StateMap {
	out := before.Clone()
	if ev != nil && ev.StateKey != nil {
		out[StateKey{Type: ev.Type, StateKey: *ev.StateKey}] = eventID
	}
	return out
}

// Resolve returns the resolution of states under the state resolution
// algorithm of version: v2 for room versions 2-11, v2.1 for version 12.
// The result does not depend on the order of states.
func Resolve(version id.RoomVersion, states []StateMap, fetch Fetch, getKey pdu.GetKeyFunc) (StateMap, error) {
	if !version.IsKnown() {
		return nil, fmt.Errorf("%w: unknown room version %q", ErrUnsupportedVersion, version)
	}
	v21 := false
	switch version.StateResVersion() {
	case id.StateResV2:
	case id.StateResV2_1:
		v21 = true
	default:
		return nil, fmt.Errorf("%w: %s", ErrUnsupportedVersion, version)
	}
	unconflicted, conflicted := splitStates(states)
	if len(conflicted) == 0 {
		return unconflicted, nil
	}
	r := newResolver(version, fetch, getKey)
	chains := make([]map[string]struct{}, len(states))
	for i, s := range states {
		chain, err := r.authChain(slices.Sorted(maps.Values(s)))
		if err != nil {
			// Name the same missing event whatever the order of states.
			var all []string
			for _, s := range states {
				all = append(all, slices.Collect(maps.Values(s))...)
			}
			slices.Sort(all)
			if _, err2 := r.authChain(slices.Compact(all)); err2 != nil {
				err = err2
			}
			return nil, err
		}
		chains[i] = chain
	}
	full := make(map[string]struct{})
	for _, eid := range conflicted {
		full[eid] = struct{}{}
	}
	for _, eid := range authDifference(chains) {
		full[eid] = struct{}{}
	}
	if v21 {
		sub, err := r.conflictedSubgraph(conflicted)
		if err != nil {
			return nil, err
		}
		for _, eid := range sub {
			full[eid] = struct{}{}
		}
	}
	return r.resolveConflicts(full, unconflicted, v21)
}

// resolveConflicts runs steps 1-5 of the algorithm over the full conflicted set.
func (r *resolver) resolveConflicts(full map[string]struct{}, unconflicted StateMap, v21 bool) (StateMap, error) {
	fullList := slices.Sorted(maps.Keys(full))
	var powerEvents []string
	for _, eid := range fullList {
		ev, err := r.event(eid)
		if err != nil {
			return nil, err
		}
		if isPowerEvent(ev) {
			powerEvents = append(powerEvents, eid)
		}
	}
	// 1. Power events and their auth chains within the full conflicted
	// set, in reverse topological power order.
	sortedPower, err := r.reverseTopologicalPowerSort(powerEvents, full)
	if err != nil {
		return nil, err
	}
	// 2. Iterative auth checks from the unconflicted state (v2.1: empty).
	start := StateMap{}
	if !v21 {
		start = unconflicted.Clone()
	}
	partial, err := r.iterativeAuthChecks(start, sortedPower)
	if err != nil {
		return nil, err
	}
	// 3. The rest, in mainline order of the partial state's power levels.
	picked := make(map[string]struct{}, len(sortedPower))
	for _, eid := range sortedPower {
		picked[eid] = struct{}{}
	}
	var remaining []string
	for _, eid := range fullList {
		if _, ok := picked[eid]; !ok {
			remaining = append(remaining, eid)
		}
	}
	plID := partial[StateKey{Type: "m.room.power_levels", StateKey: ""}]
	sortedRest, err := r.mainlineSort(remaining, plID)
	if err != nil {
		return nil, err
	}
	// 4. Iterative auth checks on the partial state.
	resolved, err := r.iterativeAuthChecks(partial, sortedRest)
	if err != nil {
		return nil, err
	}
	// 5. The unconflicted state map wins.
	maps.Copy(resolved, unconflicted)
	return resolved, nil
}

// splitStates divides the states into the unconflicted state map and the
// conflicted state set (sorted, without duplicates).
func splitStates(states []StateMap) (StateMap, []string) {
	unconflicted := StateMap{}
	if len(states) == 0 {
		return unconflicted, nil
	}
	keys := make(map[StateKey]struct{})
	for _, s := range states {
		for k := range s {
			keys[k] = struct{}{}
		}
	}
	conflicted := make(map[string]struct{})
	for k := range keys {
		first, same := states[0][k]
		for _, s := range states {
			v, ok := s[k]
			if !ok || v != first {
				same = false
				break
			}
		}
		if same {
			unconflicted[k] = first
			continue
		}
		for _, s := range states {
			if v, ok := s[k]; ok {
				conflicted[v] = struct{}{}
			}
		}
	}
	return unconflicted, slices.Sorted(maps.Keys(conflicted))
}

// authDifference is the union of the auth chains minus their intersection,
// sorted.
func authDifference(chains []map[string]struct{}) []string {
	counts := make(map[string]int)
	for _, chain := range chains {
		for eid := range chain {
			counts[eid]++
		}
	}
	var out []string
	for eid, n := range counts {
		if n < len(chains) {
			out = append(out, eid)
		}
	}
	slices.Sort(out)
	return out
}
