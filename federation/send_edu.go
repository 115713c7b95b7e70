package federation

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/tidwall/gjson"
	"maunium.net/go/mautrix/id"

	"github.com/ganglion/ganglion/fsm"
)

// EDUs of an inbound transaction. Each is about users of the origin server
// only (an EDU for a user of another server is ignored); room EDUs also
// pass the room's server ACL. Typing and presence are ephemeral: they go
// to the EphemeralSink (the client API's typing/presence gossip). Receipts
// and to-device messages are durable: they go through the Raft log.

// EphemeralSink takes remote typing and presence updates; the lead's
// client API implements it (serve.go wires it with SetEphemeralSink).
type EphemeralSink interface {
	RemoteTyping(roomID, userID string, typing bool, timeout time.Duration)
	RemotePresence(userID, presence, statusMsg string)
}

// SetEphemeralSink sets where remote typing and presence go (nil: dropped).
func (a *API) SetEphemeralSink(s EphemeralSink) {
	st := a.inbound
	st.mu.Lock()
	st.sink = s
	st.mu.Unlock()
}

const (
	// remoteTypingTimeout is how long a remote typing notification lasts
	// (the EDU carries none; Synapse uses the same).
	remoteTypingTimeout = 60 * time.Second
	// maxEDUItems bounds the receipts and presence updates taken from one
	// transaction.
	maxEDUItems = 1000
	// toDeviceEndpoint scopes the message_id of m.direct_to_device.
	toDeviceEndpoint = "federation/m.direct_to_device"
)

// processEDUs handles what it can; failures are logged, never fatal.
func (a *API) processEDUs(ctx context.Context, origin string, edus []json.RawMessage) {
	budget := maxEDUItems
	for _, raw := range edus {
		content := gjson.GetBytes(raw, "content")
		switch typ := gjson.GetBytes(raw, "edu_type").Str; typ {
		case "m.typing":
			a.remoteTyping(origin, content)
		case "m.receipt":
			a.remoteReceipts(ctx, origin, content, &budget)
		case "m.presence":
			a.remotePresence(origin, content, &budget)
		case "m.direct_to_device":
			a.remoteToDevice(ctx, origin, content)
		default:
			// m.device_list_update, m.signing_key_update and unknown types:
			// nothing here caches remote device lists yet.
			a.log.Trace("EDU ignored", "origin", origin, "edu_type", typ)
		}
	}
}

// userOf reports whether userID is a valid user ID of server.
func userOf(userID, server string) bool {
	_, hs, err := id.UserID(userID).ParseAndValidateRelaxed()
	return err == nil && hs == server
}

func (a *API) remoteTyping(origin string, c gjson.Result) {
	roomID, userID := c.Get("room_id").Str, c.Get("user_id").Str
	if !userOf(userID, origin) {
		a.log.Debug("typing EDU for a user of another server", "origin", origin, "user_id", userID)
		return
	}
	joined := false
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		m := rt.Membership(userID, roomID)
		joined = m != nil && m.Membership == "join" && roomACL(rt, roomID).allows(origin)
		return nil
	})
	if !joined {
		return
	}
	if sink := a.inbound.ephemeralSink(); sink != nil {
		sink.RemoteTyping(roomID, userID, c.Get("typing").Bool(), remoteTypingTimeout)
	}
}

func (a *API) remotePresence(origin string, c gjson.Result, budget *int) {
	sink := a.inbound.ephemeralSink()
	for _, u := range c.Get("push").Array() {
		if *budget <= 0 {
			return
		}
		*budget--
		userID, presence := u.Get("user_id").Str, u.Get("presence").Str
		if !userOf(userID, origin) {
			continue
		}
		switch presence {
		case "online", "unavailable", "offline":
		default:
			continue
		}
		if sink != nil {
			sink.RemotePresence(userID, presence, u.Get("status_msg").Str)
		}
	}
}

// remoteReceipts stores the m.read receipts of origin's users that are
// joined to the room, for events the room has.
func (a *API) remoteReceipts(ctx context.Context, origin string, c gjson.Result, budget *int) {
	var puts []fsm.ReceiptPut
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		c.ForEach(func(room, rc gjson.Result) bool {
			roomID := room.Str
			if !strings.HasPrefix(roomID, "!") || !roomACL(rt, roomID).allows(origin) {
				return true
			}
			rc.Get(`m\.read`).ForEach(func(user, ur gjson.Result) bool {
				if *budget <= 0 {
					return false
				}
				*budget--
				userID := user.Str
				evID := ur.Get("event_ids.0").Str
				if !userOf(userID, origin) {
					a.log.Debug("receipt for a user of another server", "origin", origin, "user_id", userID)
					return true
				}
				if m := rt.Membership(userID, roomID); m == nil || m.Membership != "join" {
					return true
				}
				if ev, err := rt.Event(evID); err != nil || ev.RoomID != roomID {
					return true
				}
				puts = append(puts, fsm.ReceiptPut{RoomID: roomID, UserID: userID, Receipts: []fsm.ReceiptMark{
					{Type: fsm.ReceiptRead, EventID: evID, ThreadID: ur.Get("data.thread_id").Str}}})
				return true
			})
			return *budget > 0
		})
		return nil
	})
	for _, put := range puts {
		if _, _, err := a.node.Propose(ctx, fsm.OpReceiptPut, put); err != nil {
			a.log.Debug("remote receipt not stored", "origin", origin, "user_id", put.UserID, "error", err)
		}
	}
}

// remoteToDevice queues a to-device message for local recipients; its
// message_id makes a redelivery a no-op.
func (a *API) remoteToDevice(ctx context.Context, origin string, c gjson.Result) {
	sender, typ, msgID := c.Get("sender").Str, c.Get("type").Str, c.Get("message_id").Str
	if !userOf(sender, origin) || typ == "" {
		a.log.Debug("to-device EDU refused", "origin", origin, "sender", sender)
		return
	}
	msgs := map[string]map[string]json.RawMessage{}
	c.Get("messages").ForEach(func(user, devices gjson.Result) bool {
		if !userOf(user.Str, a.cfg.ServerName) || !devices.IsObject() {
			return true
		}
		devices.ForEach(func(dev, content gjson.Result) bool {
			if content.IsObject() {
				if msgs[user.Str] == nil {
					msgs[user.Str] = map[string]json.RawMessage{}
				}
				msgs[user.Str][dev.Str] = json.RawMessage(content.Raw)
			}
			return true
		})
		return true
	})
	if len(msgs) == 0 {
		return
	}
	cmd := fsm.ToDeviceSend{Sender: sender, Type: typ, Messages: msgs}
	if msgID != "" && !strings.ContainsRune(msgID, 0) {
		cmd.Txn = &fsm.TxnKey{UserID: sender, DeviceID: origin, Endpoint: toDeviceEndpoint, TxnID: msgID}
	}
	if _, _, err := a.node.Propose(ctx, fsm.OpToDeviceSend, cmd); err != nil {
		a.log.Debug("remote to-device message not stored", "origin", origin, "sender", sender, "error", err)
	}
}
