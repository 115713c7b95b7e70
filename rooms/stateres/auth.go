package stateres

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tidwall/gjson"
	"maunium.net/go/mautrix/federation/eventauth"
	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/federation/signutil"
	"maunium.net/go/mautrix/id"
)

// iterativeAuthChecks applies each event of ids, in order, to state when
// the auth rules allow it against the state so far, the event's own
// (non-rejected) auth events filling keys the state lacks. state is
// updated in place and returned.
func (r *resolver) iterativeAuthChecks(state StateMap, ids []string) (StateMap, error) {
	for _, eid := range ids {
		ev, err := r.stateEvent(eid)
		if err != nil {
			return nil, err
		}
		authEvents, err := r.authEventsFor(ev, state)
		if err != nil {
			return nil, err
		}
		r.missing = ""
		authErr := r.authorize(ev, authEvents)
		if r.missing != "" {
			return nil, fmt.Errorf("%w: %s (needed to authorise %s)", ErrMissingEvent, r.missing, eid)
		}
		if authErr == nil {
			state[StateKey{Type: ev.Type, StateKey: *ev.StateKey}] = eid
		}
	}
	return state, nil
}

// authEventsFor selects the events eventauth needs for ev (its auth event
// selection): the state's entry for each key, else ev's own auth event of
// that key; rejected events are never used.
func (r *resolver) authEventsFor(ev *pdu.PDU, state StateMap) ([]*pdu.PDU, error) {
	selection := ev.AuthEventSelection(r.version)
	chosen := make(map[StateKey]*pdu.PDU, len(selection))
	for _, aid := range ev.AuthEvents {
		ae, err := r.event(string(aid))
		if err != nil {
			return nil, err
		}
		if ae.InternalMeta.Rejected || ae.StateKey == nil {
			continue
		}
		k := StateKey{Type: ae.Type, StateKey: *ae.StateKey}
		if _, dup := chosen[k]; !dup && selection.Has(k) {
			chosen[k] = ae
		}
	}
	for _, k := range selection {
		sid, ok := state[k]
		if !ok {
			continue
		}
		se, err := r.event(sid)
		if err != nil {
			return nil, err
		}
		if !se.InternalMeta.Rejected {
			chosen[k] = se
		}
	}
	// Non-nil even when empty: nil tells eventauth to use ev.AuthEvents.
	out := make([]*pdu.PDU, 0, len(chosen))
	for _, k := range selection {
		if ae := chosen[k]; ae != nil {
			out = append(out, ae)
		}
	}
	return out, nil
}

// getEvents serves eventauth's lookups (the v12 create event by room ID),
// recording what fetch lacks.
func (r *resolver) getEvents(ids []id.EventID) ([]*pdu.PDU, error) {
	out := make([]*pdu.PDU, 0, len(ids))
	for _, eid := range ids {
		ev, err := r.event(string(eid))
		if err != nil {
			if r.missing == "" {
				r.missing = string(eid)
			}
			continue
		}
		out = append(out, ev)
	}
	return out, nil
}

// noKeys is the key lookup used when the caller gives none.
func noKeys(serverName string, keyID id.KeyID, _ time.Time) (id.SigningKey, time.Time, error) {
	return "", time.Time{}, fmt.Errorf("stateres: no signing keys supplied (key %s of %s)", keyID, serverName)
}

// authorize is eventauth.Authorize with rule 5.4.1.7 (third-party invites)
// done as the spec says. mautrix v0.32.0 reads the public keys from the
// member event instead of the m.room.third_party_invite event and reads
// the signed object as a string, so it refuses every third-party invite;
// every earlier part of rule 5.4.1 has already passed when it answers
// ErrThirdPartyInviteNotSigned.
//
// A panic in the auth rules (malformed old-version content they do not
// expect) counts as a refusal: the same input refuses the same way on
// every node, and Apply must not crash.
func (r *resolver) authorize(ev *pdu.PDU, authEvents []*pdu.PDU) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("stateres: auth rules panicked: %v", p)
		}
	}()
	err = eventauth.Authorize(r.version, ev, authEvents, r.getEvents, r.getKey)
	if errors.Is(err, eventauth.ErrThirdPartyInviteNotSigned) {
		return thirdPartyInviteSigned(ev, authEvents)
	}
	return err
}

// thirdPartyInviteSigned: allow if any signature in content.third_party_invite.signed
// verifies with a public key of the m.room.third_party_invite event it names.
func thirdPartyInviteSigned(ev *pdu.PDU, authEvents []*pdu.PDU) error {
	signed := gjson.GetBytes(ev.Content, "third_party_invite.signed")
	token := signed.Get("token").Str
	var invite *pdu.PDU
	for _, ae := range authEvents {
		if ae.Type == "m.room.third_party_invite" && ae.StateKey != nil && *ae.StateKey == token {
			invite = ae
		}
	}
	if invite == nil || !signed.IsObject() {
		return eventauth.ErrThirdPartyInviteNotSigned
	}
	keys := []string{gjson.GetBytes(invite.Content, "public_key").Str}
	for _, k := range gjson.GetBytes(invite.Content, "public_keys").Array() {
		keys = append(keys, k.Get("public_key").Str)
	}
	for _, key := range keys {
		if key == "" {
			continue
		}
		// Identity servers publish standard or URL-safe unpadded base64.
		key = strings.NewReplacer("-", "+", "_", "/").Replace(strings.TrimRight(key, "="))
		if signutil.VerifyJSONAny(id.SigningKey(key), json.RawMessage(signed.Raw)) == nil {
			return nil
		}
	}
	return eventauth.ErrThirdPartyInviteNotSigned
}
