package federation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/tidwall/gjson"
	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/federation/signutil"
	"maunium.net/go/mautrix/id"
)

// ErrNoValidSignature: the object carries no signature of the server that
// a key valid at the given time verifies.
var ErrNoValidSignature = errors.New("no valid signature")

// VerifyJSON checks that server signed obj (the appendix's "Checking for a
// signature"): at least one of server's signatures must verify with a key
// known valid at `at`, and none made with such a key may be bad. Keys we
// cannot find, expired before `at`, or of unknown algorithms are skipped,
// as the spec asks for events.
func (k *Keyring) VerifyJSON(ctx context.Context, server string, obj json.RawMessage, at time.Time) error {
	sigs := gjson.GetBytes(obj, "signatures")
	if !sigs.IsObject() {
		return fmt.Errorf("%w: object has no signatures", ErrNoValidSignature)
	}
	var all map[string]map[id.KeyID]string
	if err := json.Unmarshal([]byte(sigs.Raw), &all); err != nil {
		return fmt.Errorf("%w: bad signatures: %v", ErrNoValidSignature, err)
	}
	byServer := all[server]
	if len(byServer) == 0 {
		return fmt.Errorf("%w: not signed by %s", ErrNoValidSignature, server)
	}
	var skipped []error
	for keyID := range byServer {
		if !isEd25519KeyID(keyID) {
			continue
		}
		sk, err := k.Key(ctx, server, keyID, at)
		if err != nil {
			skipped = append(skipped, err)
			continue
		}
		if sk.ValidUntil.Before(at) {
			skipped = append(skipped, fmt.Errorf("key %s of %s is valid only until %s", keyID, server, sk.ValidUntil.UTC()))
			continue
		}
		if err := signutil.VerifyJSON(server, keyID, sk.Key, obj); err != nil {
			return fmt.Errorf("signature %s of %s: %w", keyID, server, err)
		}
		return k.verifyRest(server, byServer, keyID, at, obj)
	}
	return fmt.Errorf("%w from %s: %w", ErrNoValidSignature, server, errors.Join(skipped...))
}

// verifyRest checks the signatures after the first good one: any other
// whose key is already cached must be good too (no fetch for extra keys).
func (k *Keyring) verifyRest(server string, sigs map[id.KeyID]string, done id.KeyID, at time.Time, obj json.RawMessage) error {
	for keyID := range sigs {
		if keyID == done || !isEd25519KeyID(keyID) {
			continue
		}
		sk, ok := k.cached(server, keyID)
		if server == k.serverName {
			var err error
			sk, err = k.ownKey(keyID)
			ok = err == nil
		}
		if !ok || sk.ValidUntil.Before(at) {
			continue
		}
		if err := signutil.VerifyJSON(server, keyID, sk.Key, obj); err != nil {
			return fmt.Errorf("signature %s of %s: %w", keyID, server, err)
		}
	}
	return nil
}

// KeyFunc adapts the keyring to mautrix's pdu.GetKeyFunc (PDU.VerifySignature,
// eventauth.Authorize's restricted-join check). A key that cannot be found
// is returned empty with no error, so mautrix skips it as the spec asks;
// mautrix itself compares the validity with origin_server_ts for room
// versions that enforce it.
func (k *Keyring) KeyFunc(ctx context.Context) pdu.GetKeyFunc {
	return func(server string, keyID id.KeyID, minValidUntil time.Time) (id.SigningKey, time.Time, error) {
		sk, err := k.Key(ctx, server, keyID, minValidUntil)
		if err != nil {
			k.log.Debug("event signing key unavailable", "server", server, "key", keyID, "error", err)
			return "", time.Time{}, nil
		}
		return sk.Key, sk.ValidUntil, nil
	}
}

// VerifyEventSignatures checks the signatures an event needs (room versions
// 3 and later): the sender's server, except for an invite made from a
// third-party invite, whose sending server may differ. The authorising
// server of a restricted join is checked by the auth rules (eventauth).
// Content hashes are the caller's next step (pdu.VerifyContentHash).
func (k *Keyring) VerifyEventSignatures(ctx context.Context, roomVersion id.RoomVersion, p *pdu.PDU) error {
	if p == nil {
		return pdu.ErrPDUIsNil
	}
	for _, server := range RequiredSigners(p) {
		if err := p.VerifySignature(roomVersion, server, k.KeyFunc(ctx)); err != nil {
			return fmt.Errorf("%w: %w", ErrNoValidSignature, err)
		}
	}
	return nil
}

// RequiredSigners are the servers whose signatures an event of room version
// 3 or later must carry.
func RequiredSigners(p *pdu.PDU) []string {
	if p.Type == "m.room.member" && p.StateKey != nil &&
		gjson.GetBytes(p.Content, "membership").Str == "invite" &&
		gjson.GetBytes(p.Content, "third_party_invite").Exists() {
		return nil
	}
	return []string{p.Sender.Homeserver()}
}
