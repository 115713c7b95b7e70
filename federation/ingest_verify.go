package federation

import (
	"context"
	"encoding/json"
	jsonv2 "encoding/json/v2"
	"errors"
	"fmt"
	"time"

	"github.com/tidwall/gjson"
	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/id"

	"github.com/ganglion/ganglion/fsm"
)

// The checks on a received PDU that need no room state (the spec's
// "Checks performed on receipt of a PDU", steps 1-3): format and size,
// signatures, content hash. Apply does the rest (auth rules).

// MaxPDUBytes is the spec's limit on one PDU.
const MaxPDUBytes = 65536

// Limits of the event format (room versions 3+).
const (
	maxPrevEvents = 20
	maxAuthEvents = 10
	maxIDBytes    = 255
	maxDepth      = 1<<53 - 1
)

// VerifiedPDU is a PDU that passed the checks that need no room state.
type VerifiedPDU struct {
	EventID string
	// Raw is the PDU as received, or its redacted form when its content
	// hash was wrong.
	Raw      json.RawMessage
	PDU      *pdu.PDU
	Redacted bool
}

// VerifyPDU checks one PDU of room roomID (version ver): size, format,
// room, event ID, the signatures its sender's server must have made, and
// the content hash (a bad hash means the redacted form is kept, as the
// spec asks). On failure the returned VerifiedPDU is still non-nil when
// the event ID could be computed (so the error can be reported for it).
func (a *API) VerifyPDU(ctx context.Context, ver id.RoomVersion, roomID string, raw json.RawMessage) (*VerifiedPDU, error) {
	p, err := fsm.ParsePDU(raw)
	if err != nil {
		return nil, fmt.Errorf("bad PDU: %w", err)
	}
	evID, err := p.GetEventID(ver)
	if err != nil {
		return nil, fmt.Errorf("cannot compute the event ID: %w", err)
	}
	v := &VerifiedPDU{EventID: string(evID), Raw: raw, PDU: p}
	if len(raw) > MaxPDUBytes {
		return v, fmt.Errorf("PDU is larger than %d bytes", MaxPDUBytes)
	}
	if err := checkFormat(ver, roomID, p); err != nil {
		return v, err
	}
	if err := a.keyring.VerifyEventSignatures(ctx, ver, p); err != nil {
		return v, fmt.Errorf("bad signature: %w", err)
	}
	if !p.VerifyContentHash() {
		red := p.Clone().Redact(ver)
		out, err := jsonv2.Marshal(red)
		if err != nil {
			return v, fmt.Errorf("cannot redact the PDU: %w", err)
		}
		v.Raw, v.PDU, v.Redacted = out, red, true
	}
	return v, nil
}

// checkFormat is the event format of room versions 3 and later, as far as
// the auth rules do not check it.
func checkFormat(ver id.RoomVersion, roomID string, p *pdu.PDU) error {
	switch {
	case p.Type == "" || len(p.Type) > maxIDBytes:
		return errors.New("bad event type")
	case len(p.Sender) > maxIDBytes || !validUserID(string(p.Sender)):
		return errors.New("bad sender")
	case p.StateKey != nil && len(*p.StateKey) > maxIDBytes:
		return errors.New("state key too long")
	case p.Depth < 0 || p.Depth > maxDepth:
		return errors.New("depth out of range")
	case len(p.PrevEvents) > maxPrevEvents:
		return fmt.Errorf("more than %d prev_events", maxPrevEvents)
	case len(p.AuthEvents) > maxAuthEvents:
		return fmt.Errorf("more than %d auth_events", maxAuthEvents)
	case p.PrevEvents == nil || p.AuthEvents == nil:
		return errors.New("prev_events and auth_events are required")
	}
	isCreate := p.Type == "m.room.create" && p.StateKey != nil && *p.StateKey == ""
	if isCreate && ver.RoomIDIsCreateEventID() {
		rid, err := p.GetRoomID()
		if err != nil || string(rid) != roomID {
			return errors.New("create event of another room")
		}
		return nil
	}
	if string(p.RoomID) != roomID {
		return errors.New("event is for another room")
	}
	return nil
}

// validUserID is @localpart:server_name with a valid server name.
func validUserID(s string) bool {
	u := id.UserID(s)
	local, server, err := u.ParseAndValidateRelaxed()
	return err == nil && local != "" && server != ""
}

// keysFor collects the keys that verified p's signatures (its sender's
// server, and the authorising server of a restricted join), for Apply's
// auth rules: server -> key ID -> unpadded base64.
func (a *API) keysFor(ctx context.Context, p *pdu.PDU, into map[string]map[string]string) {
	servers := RequiredSigners(p)
	if p.Type == "m.room.member" {
		if via := gjson.GetBytes(p.Content, "join_authorised_via_users_server").Str; via != "" {
			if _, server, err := id.UserID(via).ParseAndValidateRelaxed(); err == nil {
				servers = append(servers, server)
			}
		}
	}
	at := time.UnixMilli(p.OriginServerTS)
	for _, server := range servers {
		for keyID := range p.Signatures[server] {
			if !isEd25519KeyID(keyID) || into[server][string(keyID)] != "" {
				continue
			}
			sk, err := a.keyring.Key(ctx, server, keyID, at)
			if err != nil {
				continue
			}
			if into[server] == nil {
				into[server] = map[string]string{}
			}
			into[server][string(keyID)] = string(sk.Key)
		}
	}
}
