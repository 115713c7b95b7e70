package fsm

import (
	"errors"

	"maunium.net/go/mautrix/federation/eventauth"
	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/id"
)

// Rules are the room algorithms Apply needs for federated events: state
// resolution and the auth rules. They live in rooms/stateres (imports point
// from rooms to fsm, not back), which registers them at init; both are pure
// functions, so Apply stays deterministic.
type Rules struct {
	Resolve   func(version id.RoomVersion, states []map[[2]string]string, fetch func(eventID string) (*pdu.PDU, bool), getKey pdu.GetKeyFunc) (map[[2]string]string, error)
	Authorize func(version id.RoomVersion, ev *pdu.PDU, authEvents []*pdu.PDU, getEvents eventauth.GetEventsFunc, getKey pdu.GetKeyFunc) error
}

var rules Rules

// SetRules registers the room algorithms (once, at init).
func SetRules(r Rules) { rules = r }

var errNoRules = errors.New("state resolution is not available in this build")

// authorize runs the registered auth rules, or mautrix's when none are
// registered (fsm's own tests).
func authorize(version id.RoomVersion, ev *pdu.PDU, authEvents []*pdu.PDU, getEvents eventauth.GetEventsFunc, getKey pdu.GetKeyFunc) error {
	if rules.Authorize != nil {
		return rules.Authorize(version, ev, authEvents, getEvents, getKey)
	}
	return eventauth.Authorize(version, ev, authEvents, getEvents, getKey)
}

// resolveState runs the registered state resolution.
func resolveState(version id.RoomVersion, states []map[[2]string]string, fetch func(string) (*pdu.PDU, bool), getKey pdu.GetKeyFunc) (map[[2]string]string, error) {
	if rules.Resolve == nil {
		return nil, errNoRules
	}
	return rules.Resolve(version, states, fetch, getKey)
}
