package clientapi

import (
	"testing"

	"github.com/ganglion/ganglion/fsm"
)

func TestSendToDeviceHTTP(t *testing.T) {
	base, api := testServerAPI(t)
	alice, aliceTok := registerUser(t, base, "alice")
	bob, _ := registerUser(t, base, "bob")
	send := func(txn string, body any) (int, map[string]any) {
		return call(t, "PUT", base+"/_matrix/client/v3/sendToDevice/m.room_key_request/"+txn, aliceTok, body)
	}
	body := map[string]any{"messages": map[string]any{bob: map[string]any{"*": map[string]any{"n": 1}}}}

	s, out := send("t1", body)
	wantOK(t, "send", s, out)
	s, out = send("t1", body) // retry: nothing new
	wantOK(t, "retry", s, out)
	s, out = send("t2", map[string]any{"messages": map[string]any{alice: map[string]any{"NOSUCHDEVICE": map[string]any{}}}})
	wantOK(t, "unknown device", s, out)

	_ = api.store.View(func(rt *fsm.ReadTx) error {
		devices := rt.Devices(bob)
		if len(devices) != 1 {
			t.Fatalf("bob has %d devices", len(devices))
		}
		msgs := rt.ToDeviceSince(bob, devices[0].DeviceID, 0, 0)
		if len(msgs) != 1 || msgs[0].Sender != alice || msgs[0].Type != "m.room_key_request" || string(msgs[0].Content) != `{"n":1}` {
			t.Fatalf("bob's inbox = %+v", msgs)
		}
		return nil
	})

	s, out = send("t3", map[string]any{})
	wantErr(t, "no messages", s, out, 400, "M_MISSING_PARAM")
	s, out = send("t4", map[string]any{"messages": map[string]any{bob: map[string]any{"*": "text"}}})
	wantErr(t, "non-object content", s, out, 400, "M_BAD_JSON")
	s, out = send("t5", map[string]any{"messages": map[string]any{"bob": map[string]any{"*": map[string]any{}}}})
	wantErr(t, "bad user id", s, out, 400, "M_INVALID_PARAM")
	s, out = send("t6", map[string]any{"messages": []any{}})
	wantErr(t, "messages not an object", s, out, 400, "M_BAD_JSON")
}
