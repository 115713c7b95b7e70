package federation

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/ganglion/ganglion/fsm"
)

func edu(typ string, content any) map[string]any {
	return map[string]any{"edu_type": typ, "content": content}
}

// TestSendEDUs: typing, presence, receipts and to-device messages of the
// origin's users are taken; those about users of other servers, or users
// not in the room, are ignored.
func TestSendEDUs(t *testing.T) {
	r := newFedRoom(t)
	sink := &sinkRecorder{}
	r.n.api.SetEphemeralSink(sink)
	if _, _, err := r.n.node.Propose(t.Context(), fsm.OpAccountRegister, fsm.RegisterCmd{UserID: r.alice,
		Device: &fsm.NewDevice{DeviceID: "ADEV", TokenHash: []byte("0123456789abcdef0123456789abcdef")}}); err != nil {
		t.Fatal(err)
	}
	msg, raw := r.message(t, "read me")
	wantAccepted(t, r.f.send(t, r.n, "m", []json.RawMessage{raw}), msg)
	stranger := "@mallory:elsewhere.example"
	carol := r.f.user("carol") // never joined
	receipt := map[string]any{"event_ids": []string{msg}, "data": map[string]any{"ts": 1}}
	toDevice := edu("m.direct_to_device", map[string]any{"sender": r.bob, "type": "m.test", "message_id": "msg1",
		"messages": map[string]any{r.alice: map[string]any{"ADEV": map[string]any{"n": 1}},
			"@nobody:" + r.f.name: map[string]any{"*": map[string]any{"n": 2}}}})
	r.f.send(t, r.n, "edus", nil,
		edu("m.typing", map[string]any{"room_id": r.roomID, "user_id": r.bob, "typing": true}),
		edu("m.typing", map[string]any{"room_id": r.roomID, "user_id": stranger, "typing": true}),
		edu("m.typing", map[string]any{"room_id": r.roomID, "user_id": carol, "typing": true}),
		edu("m.presence", map[string]any{"push": []any{
			map[string]any{"user_id": r.bob, "presence": "online", "status_msg": "hi", "last_active_ago": 1},
			map[string]any{"user_id": stranger, "presence": "online", "last_active_ago": 1},
			map[string]any{"user_id": r.bob, "presence": "bogus", "last_active_ago": 1}}}),
		edu("m.receipt", map[string]any{r.roomID: map[string]any{"m.read": map[string]any{
			r.bob: receipt, stranger: receipt, carol: receipt}}}),
		toDevice,
		edu("m.device_list_update", map[string]any{"user_id": r.bob, "device_id": "X", "stream_id": 1}),
	)
	typing, presence := sink.got()
	if want := []string{r.roomID + "|" + r.bob + "|true"}; !slices.Equal(typing, want) {
		t.Errorf("typing %v, want %v", typing, want)
	}
	if want := []string{r.bob + "|online|hi"}; !slices.Equal(presence, want) {
		t.Errorf("presence %v, want %v", presence, want)
	}
	r.n.view(func(rt *fsm.ReadTx) {
		if rec, ok := rt.UserReceipt(r.roomID, r.bob, fsm.ReceiptRead, ""); !ok || rec.EventID != msg {
			t.Errorf("bob's receipt %+v, want one on %s", rec, msg)
		}
		for _, u := range []string{stranger, carol} {
			if _, ok := rt.UserReceipt(r.roomID, u, fsm.ReceiptRead, ""); ok {
				t.Errorf("a receipt of %s was stored", u)
			}
		}
	})
	// The same message_id in another transaction is delivered once.
	r.f.send(t, r.n, "edus-again", nil, toDevice)
	r.n.view(func(rt *fsm.ReadTx) {
		msgs := rt.ToDeviceSince(r.alice, "ADEV", 0, 10)
		if len(msgs) != 1 || msgs[0].Sender != r.bob || msgs[0].Type != "m.test" {
			t.Errorf("alice's device has %+v, want one m.test from bob", msgs)
		}
	})
}
