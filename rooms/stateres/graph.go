package stateres

import (
	"fmt"
	"maps"
	"slices"

	"github.com/tidwall/gjson"
	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/id"
)

// resolver carries one resolution's inputs and a cache of fetched events
// (looked up by key only, never iterated).
type resolver struct {
	version id.RoomVersion
	fetch   Fetch
	getKey  pdu.GetKeyFunc
	events  map[string]*pdu.PDU
	// missing records an event eventauth asked for that fetch lacked, so
	// that an auth failure caused by missing input becomes an error.
	missing string
}

func newResolver(version id.RoomVersion, fetch Fetch, getKey pdu.GetKeyFunc) *resolver {
	if getKey == nil {
		getKey = noKeys
	}
	return &resolver{version: version, fetch: fetch, getKey: getKey, events: make(map[string]*pdu.PDU)}
}

// event returns the event with the given ID or an ErrMissingEvent error.
func (r *resolver) event(eid string) (*pdu.PDU, error) {
	if ev, ok := r.events[eid]; ok {
		return ev, nil
	}
	ev, ok := r.fetch(eid)
	if !ok || ev == nil {
		return nil, fmt.Errorf("%w: %s", ErrMissingEvent, eid)
	}
	r.events[eid] = ev
	return ev, nil
}

// stateEvent is event, also requiring a state_key.
func (r *resolver) stateEvent(eid string) (*pdu.PDU, error) {
	ev, err := r.event(eid)
	if err != nil {
		return nil, err
	}
	if ev.StateKey == nil {
		return nil, fmt.Errorf("%w: %s", ErrNotStateEvent, eid)
	}
	return ev, nil
}

// authChain is the union of the auth chains of the given events (not the
// events themselves, unless one is in another's chain). ids must be
// sorted, so that which missing event an error names is deterministic.
func (r *resolver) authChain(ids []string) (map[string]struct{}, error) {
	chain := make(map[string]struct{})
	var stack []string
	for _, eid := range ids {
		ev, err := r.stateEvent(eid)
		if err != nil {
			return nil, err
		}
		stack = append(stack, authIDs(ev)...)
	}
	for len(stack) > 0 {
		eid := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if _, seen := chain[eid]; seen {
			continue
		}
		ev, err := r.stateEvent(eid)
		if err != nil {
			return nil, err
		}
		chain[eid] = struct{}{}
		stack = append(stack, authIDs(ev)...)
	}
	return chain, nil
}

// conflictedSubgraph returns (sorted) the events on auth_events paths of
// one edge or more from one conflicted event to another (MSC4297). The
// conflicted events themselves are already in the full conflicted set,
// so what is added is every X with C1 ->+ X ->+ C2.
func (r *resolver) conflictedSubgraph(conflicted []string) ([]string, error) {
	isConflicted := make(map[string]struct{}, len(conflicted))
	for _, eid := range conflicted {
		isConflicted[eid] = struct{}{}
	}
	// below: reachable from a conflicted event by one edge or more.
	below := make(map[string]struct{})
	// namedBy: reverse auth edges among conflicted and below events.
	namedBy := make(map[string][]string)
	var stack []string
	for _, eid := range conflicted {
		ev, err := r.stateEvent(eid)
		if err != nil {
			return nil, err
		}
		for _, a := range authIDs(ev) {
			namedBy[a] = append(namedBy[a], eid)
			stack = append(stack, a)
		}
	}
	for len(stack) > 0 {
		eid := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if _, seen := below[eid]; seen {
			continue
		}
		below[eid] = struct{}{}
		ev, err := r.stateEvent(eid)
		if err != nil {
			return nil, err
		}
		if _, ok := isConflicted[eid]; ok {
			continue // its auth edges were recorded above
		}
		for _, a := range authIDs(ev) {
			namedBy[a] = append(namedBy[a], eid)
			stack = append(stack, a)
		}
	}
	// above: can reach a conflicted event by one edge or more.
	above := make(map[string]struct{})
	stack = append(stack, conflicted...)
	for len(stack) > 0 {
		eid := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, p := range namedBy[eid] {
			if _, seen := above[p]; !seen {
				above[p] = struct{}{}
				stack = append(stack, p)
			}
		}
	}
	var out []string
	for eid := range below {
		if _, ok := above[eid]; ok {
			out = append(out, eid)
		}
	}
	slices.Sort(out)
	return out, nil
}

// powerGraph is step 1's X as a DAG: each power event and the events of
// its auth chain in the full conflicted set, each mapped to its auth
// events that are in X. Like Synapse and ruma, the walk passes only
// through events of the full conflicted set.
func (r *resolver) powerGraph(powerEvents []string, full map[string]struct{}) (map[string][]string, error) {
	graph := make(map[string][]string)
	stack := slices.Clone(powerEvents)
	for len(stack) > 0 {
		eid := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if _, done := graph[eid]; done {
			continue
		}
		ev, err := r.stateEvent(eid)
		if err != nil {
			return nil, err
		}
		edges := make(map[string]struct{})
		for _, a := range authIDs(ev) {
			if _, ok := full[a]; ok {
				edges[a] = struct{}{}
				stack = append(stack, a)
			}
		}
		graph[eid] = slices.Sorted(maps.Keys(edges))
	}
	return graph, nil
}

// isPowerEvent: power levels, join rules, create (as Synapse and ruma
// count it), or a membership leave/ban of someone other than the sender.
func isPowerEvent(ev *pdu.PDU) bool {
	if ev.StateKey == nil {
		return false
	}
	switch ev.Type {
	case "m.room.power_levels", "m.room.join_rules", "m.room.create":
		return *ev.StateKey == ""
	case "m.room.member":
		m := gjson.GetBytes(ev.Content, "membership").Str
		return (m == "leave" || m == "ban") && *ev.StateKey != ev.Sender.String()
	}
	return false
}

func authIDs(ev *pdu.PDU) []string {
	out := make([]string, len(ev.AuthEvents))
	for i, a := range ev.AuthEvents {
		out[i] = string(a)
	}
	return out
}
