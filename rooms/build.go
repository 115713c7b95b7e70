package rooms

import (
	"encoding/base64"
	"encoding/json"
	"encoding/json/jsontext"
	jsonv2 "encoding/json/v2"
	"errors"
	"fmt"
	"net/http"
	"time"

	"maunium.net/go/mautrix/federation/eventauth"
	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/id"

	"github.com/ganglion/ganglion/cluster"
	"github.com/ganglion/ganglion/fsm"
)

// EventSpec is what a client asks for; the builder fills in the rest.
type EventSpec struct {
	Type     string
	StateKey *string
	Sender   string
	Content  json.RawMessage
	Redacts  string
}

// maxPrevEvents bounds prev_events as the spec suggests (at most 20).
const maxPrevEvents = 10

// maxPDUSize is the spec's limit on a whole PDU.
const maxPDUSize = 65536

// build makes a complete, hashed and signed PDU on the head, and checks it
// against the auth rules before anything is proposed.
func (s *Service) build(h *roomHead, spec EventSpec, ts int64) (*pdu.PDU, id.EventID, []byte, error) {
	p := &pdu.PDU{
		Type: spec.Type, StateKey: spec.StateKey, Sender: id.UserID(spec.Sender),
		Content: jsontext.Value(spec.Content), OriginServerTS: ts,
		PrevEvents: []id.EventID{}, AuthEvents: []id.EventID{},
	}
	if len(p.Content) == 0 {
		p.Content = jsontext.Value("{}")
	}
	isCreate := spec.Type == "m.room.create" && spec.StateKey != nil && *spec.StateKey == ""
	if !(isCreate && h.version.RoomIDIsCreateEventID()) {
		p.RoomID = id.RoomID(h.roomID)
	}
	if !isCreate {
		ext := h.extremities
		if len(ext) > maxPrevEvents {
			ext = ext[len(ext)-maxPrevEvents:]
		}
		p.PrevEvents = append(p.PrevEvents, ext...)
		p.Depth = h.depth + 1
		for _, k := range p.AuthEventSelection(h.version) {
			if eid, ok := h.state[k]; ok {
				p.AuthEvents = append(p.AuthEvents, eid)
			}
		}
	} else {
		p.Depth = 1
	}
	if spec.Redacts != "" {
		r := id.EventID(spec.Redacts)
		if h.version.RedactsInContent() {
			var c map[string]any
			_ = json.Unmarshal(spec.Content, &c)
			if c == nil {
				c = map[string]any{}
			}
			c["redacts"] = spec.Redacts
			raw, _ := json.Marshal(c)
			p.Content = jsontext.Value(raw)
		}
		p.Redacts = &r
	}
	if err := checkCanonicalNumbers(p.Content); err != nil {
		return nil, "", nil, fsm.Errorf(http.StatusBadRequest, "M_BAD_JSON", "event content: %s", err)
	}
	if err := p.FillContentHash(); err != nil {
		return nil, "", nil, err
	}
	keyID, key := s.signer()
	if key == nil && s.loadKey() {
		keyID, key = s.signer()
	}
	if key == nil {
		return nil, "", nil, cluster.ErrUnavailable
	}
	if err := p.Sign(h.version, s.serverName, keyID, key); err != nil {
		return nil, "", nil, err
	}
	evID, err := p.GetEventID(h.version)
	if err != nil {
		return nil, "", nil, err
	}
	raw, err := jsonv2.Marshal(p)
	if err != nil {
		return nil, "", nil, err
	}
	if len(raw) > maxPDUSize {
		return nil, "", nil, fsm.Errorf(http.StatusRequestEntityTooLarge, "M_TOO_LARGE", "event is larger than %d bytes", maxPDUSize)
	}
	if err := s.authorize(h, p); err != nil {
		return nil, "", nil, err
	}
	return p, evID, raw, nil
}

func (s *Service) authorize(h *roomHead, p *pdu.PDU) error {
	var authEvents []*pdu.PDU
	if p.Type != "m.room.create" {
		evs, err := s.getPDUs(h, p.AuthEvents)
		if err != nil {
			return err
		}
		for _, e := range evs {
			if e != nil {
				authEvents = append(authEvents, e)
			}
		}
	}
	getEvents := func(ids []id.EventID) ([]*pdu.PDU, error) { return s.getPDUs(h, ids) }
	noKeys := func(server string, keyID id.KeyID, minValidUntil time.Time) (id.SigningKey, time.Time, error) {
		// Our own key verifies a restricted join this server authorised.
		if kid, pub := s.PublicKey(); server == s.serverName && kid == keyID {
			return id.SigningKey(base64.RawStdEncoding.EncodeToString(pub)), minValidUntil, nil
		}
		return "", time.Time{}, errors.New("no remote keys for local events")
	}
	if p.Type == "m.room.create" {
		authEvents = nil
	} else if authEvents == nil {
		authEvents = []*pdu.PDU{}
	}
	if err := eventauth.Authorize(h.version, p, authEvents, getEvents, noKeys); err != nil {
		return fsm.Errorf(http.StatusForbidden, "M_FORBIDDEN", "%s", describeAuthError(err))
	}
	return nil
}

func describeAuthError(err error) string {
	var afe eventauth.AuthFailError
	if errors.As(err, &afe) && afe.Message != "" {
		return fmt.Sprintf("not allowed: %s", afe.Message)
	}
	return "not allowed: " + err.Error()
}
