package federation

import (
	"encoding/json"
	"encoding/json/jsontext"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/id"

	"github.com/ganglion/ganglion/cluster"
	"github.com/ganglion/ganglion/config"
	"github.com/ganglion/ganglion/fsm"
	"github.com/ganglion/ganglion/rooms"
)

// homeserver is one real single-node Ganglion (Raft node, room service,
// federation API on a TLS listener) named localhost:<port>, for tests of
// the flows between two servers on loopback and of a node that scripted
// remote servers talk to.
type homeserver struct {
	name string
	cfg  *config.Config
	node *cluster.Node
	rs   *rooms.Service
	api  *API
	srv  *httptest.Server
}

func newHomeserver(t *testing.T, pki *testPKI) *homeserver {
	t.Helper()
	l, name := listenLoopback(t)
	hs := &homeserver{name: name, cfg: testNodeConfig(t, name)}
	hs.cfg.Registration.Enabled = true
	log := senderLog().Named(hs.name)
	hs.node, hs.rs = startNode(t, hs.cfg, log)
	var err error
	hs.api, err = New(Config{ServerName: hs.name, AllowPrivateAddresses: true, ExtraCAFiles: []string{pki.certFile},
		RequestTimeout: 10 * time.Second}, hs.node, hs.rs, log)
	if err != nil {
		t.Fatal(err)
	}
	hs.rs.SetRemoteInviter(hs.api)
	hs.srv = serveTLS(t, l, pki, hs.api.Handler())
	return hs
}

// twoHomeservers starts A and B.
func twoHomeservers(t *testing.T) (*homeserver, *homeserver) {
	pki := newTestPKI(t)
	return newHomeserver(t, pki), newHomeserver(t, pki)
}

// mustCreateRoom creates a room with rs and returns its ID.
func mustCreateRoom(t *testing.T, rs *rooms.Service, req rooms.CreateRoomRequest) string {
	t.Helper()
	roomID, err := rs.CreateRoom(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	return roomID
}

// fakeBcrypt has the shape of a bcrypt hash, which registration insists on.
var fakeBcrypt = "$2a$10$" + strings.Repeat(".", 53)

// user registers localpart (with a display name) and returns its user ID.
func (hs *homeserver) user(t *testing.T, localpart string) string {
	t.Helper()
	userID := "@" + localpart + ":" + hs.name
	if _, _, err := hs.node.Propose(t.Context(), fsm.OpAccountRegister, fsm.RegisterCmd{UserID: userID,
		PasswordHash: fakeBcrypt, DisplayName: strings.ToUpper(localpart[:1]) + localpart[1:]}); err != nil {
		t.Fatal(err)
	}
	return userID
}

// membership is userID's membership in roomID on hs ("" if none).
func (hs *homeserver) membership(userID, roomID string) string {
	out := ""
	_ = hs.node.Store().View(func(rt *fsm.ReadTx) error {
		if m := rt.Membership(userID, roomID); m != nil {
			out = m.Membership
		}
		return nil
	})
	return out
}

// memberEvent is userID's member event in hs's current state of roomID,
// or, for a room hs is not in, the event its membership points at.
func (hs *homeserver) memberEvent(t *testing.T, userID, roomID string) *fsm.EventRecord {
	t.Helper()
	var rec *fsm.EventRecord
	_ = hs.node.Store().View(func(rt *fsm.ReadTx) error {
		if ev, err := rt.StateEvent(roomID, "m.room.member", userID); err == nil {
			rec = ev
		} else if m := rt.Membership(userID, roomID); m != nil {
			rec, _ = rt.Event(m.EventID)
		}
		return nil
	})
	if rec == nil {
		t.Fatalf("%s has no member event of %s in %s", hs.name, userID, roomID)
	}
	return rec
}

// buildLocal builds a signed event of hs's room on its forward extremities
// and current state, as rooms.Service would (for tests that drive the
// invite hook directly).
func (hs *homeserver) buildLocal(t *testing.T, roomID, sender, evType string, stateKey *string, content any) (*pdu.PDU, id.RoomVersion) {
	t.Helper()
	raw, _ := json.Marshal(content)
	p := &pdu.PDU{Type: evType, StateKey: stateKey, Sender: id.UserID(sender), RoomID: id.RoomID(roomID),
		Content: jsontext.Value(raw), OriginServerTS: time.Now().UnixMilli(), PrevEvents: []id.EventID{}, AuthEvents: []id.EventID{}}
	var ver id.RoomVersion
	_ = hs.node.Store().View(func(rt *fsm.ReadTx) error {
		room, err := rt.Room(roomID)
		if err != nil {
			t.Fatal(err)
		}
		ver, p.Depth = id.RoomVersion(room.Version), room.Depth+1
		for _, e := range room.Extremities {
			p.PrevEvents = append(p.PrevEvents, id.EventID(e))
		}
		state := rt.CurrentState(roomID)
		for _, k := range p.AuthEventSelection(ver) {
			if eid := state[[2]string{k.Type, k.StateKey}]; eid != "" {
				p.AuthEvents = append(p.AuthEvents, id.EventID(eid))
			}
		}
		return nil
	})
	key, err := hs.api.keys.Current()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Sign(ver, hs.name, key.ID, key.Priv); err != nil {
		t.Fatal(err)
	}
	return p, ver
}

// contentOf reads a field of a stored event's content.
func contentOf(rec *fsm.EventRecord, field string) gjson.Result {
	return gjson.GetBytes(rec.PDU, "content."+field)
}

// errcode is the status and Matrix error code of an error from the flows.
func errcode(err error) (int, string) {
	var fe *fsm.Error
	if errors.As(err, &fe) {
		return fe.Status, fe.Errcode
	}
	return 0, ""
}

func isCode(err error, status int, code string) bool {
	st, c := errcode(err)
	return st == status && c == code
}

// asHTTPError finds mautrix's error for another server's answer.
func asHTTPError(err error, he *mautrix.HTTPError) bool {
	return errors.As(err, he) && he.RespError != nil
}

// mustGet is a JSON field of raw.
func mustGet(t *testing.T, raw []byte, path string) string {
	t.Helper()
	v := gjson.GetBytes(raw, path)
	if !v.Exists() {
		t.Fatalf("%s missing in %s", path, raw)
	}
	return v.Raw
}
