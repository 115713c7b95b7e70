package stateres

import (
	"errors"
	"fmt"

	"maunium.net/go/mautrix/federation/eventauth"
	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/id"
)

// Authorize applies the room version's auth rules to ev, as resolution
// does: mautrix's eventauth with a panic turned into a refusal and the
// third-party-invite signature check done as the spec says (mautrix
// v0.32.0 refuses every third-party invite). authEvents nil means "use
// ev's own auth events".
func Authorize(version id.RoomVersion, ev *pdu.PDU, authEvents []*pdu.PDU, getEvents eventauth.GetEventsFunc, getKey pdu.GetKeyFunc) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("auth rules panicked: %v", p)
		}
	}()
	err = eventauth.Authorize(version, ev, authEvents, getEvents, getKey)
	if errors.Is(err, eventauth.ErrThirdPartyInviteNotSigned) {
		selected := authEvents
		if selected == nil {
			if selected, err = getEvents(ev.AuthEvents); err != nil {
				return err
			}
		}
		return thirdPartyInviteSigned(ev, selected)
	}
	return err
}

// ResolvePairs is Resolve on the store's [type, state_key] -> event ID maps
// (the form the state machine keeps).
func ResolvePairs(version id.RoomVersion, states []map[[2]string]string, fetch func(string) (*pdu.PDU, bool), getKey pdu.GetKeyFunc) (map[[2]string]string, error) {
	in := make([]StateMap, len(states))
	for i, s := range states {
		in[i] = FromPairs(s)
	}
	out, err := Resolve(version, in, fetch, getKey)
	if err != nil {
		return nil, err
	}
	return out.Pairs(), nil
}
