package clientapi

import (
	"encoding/json"
	"net/url"
	"testing"

	"github.com/ganglion/ganglion/fsm"
)

func TestReceiptsHTTP(t *testing.T) {
	base, api := testServerAPI(t)
	alice, aliceTok := registerUser(t, base, "alice")
	bob, bobTok := registerUser(t, base, "bob")
	_, carolTok := registerUser(t, base, "carol")
	roomID, eventID := udRoom(t, api, alice, bob)
	v3 := base + "/_matrix/client/v3"
	receipt := func(rType, ev string) string {
		return v3 + "/rooms/" + url.PathEscape(roomID) + "/receipt/" + rType + "/" + url.PathEscape(ev)
	}

	s, out := call(t, "POST", receipt("m.read", eventID), bobTok, map[string]any{})
	wantOK(t, "m.read", s, out)
	s, out = call(t, "POST", receipt("m.read.private", eventID), aliceTok, map[string]any{"thread_id": "main"})
	wantOK(t, "m.read.private threaded", s, out)
	s, out = call(t, "POST", receipt("m.read", eventID), bobTok, nil)
	wantOK(t, "m.read without body", s, out)

	var seenByCarol, seenByAlice map[string]map[string]map[string]map[string]any
	_ = api.store.View(func(rt *fsm.ReadTx) error {
		_ = json.Unmarshal(rt.ReceiptsSince(roomID, "@carol:test.local", 0), &seenByCarol)
		_ = json.Unmarshal(rt.ReceiptsSince(roomID, alice, 0), &seenByAlice)
		return nil
	})
	if seenByCarol[eventID]["m.read"][bob] == nil || seenByCarol[eventID]["m.read.private"] != nil {
		t.Fatalf("carol sees %v", seenByCarol)
	}
	if seenByAlice[eventID]["m.read.private"][alice]["thread_id"] != "main" {
		t.Fatalf("alice sees %v", seenByAlice)
	}

	s, out = call(t, "POST", receipt("m.bogus", eventID), bobTok, map[string]any{})
	wantErr(t, "bad type", s, out, 400, "M_INVALID_PARAM")
	s, out = call(t, "POST", receipt("m.read", eventID), bobTok, map[string]any{"thread_id": ""})
	wantErr(t, "empty thread", s, out, 400, "M_INVALID_PARAM")
	s, out = call(t, "POST", receipt("m.read", eventID), bobTok, map[string]any{"thread_id": 3})
	wantErr(t, "non-string thread", s, out, 400, "M_INVALID_PARAM")
	s, out = call(t, "POST", receipt("m.fully_read", eventID), bobTok, map[string]any{"thread_id": "main"})
	wantErr(t, "fully_read with thread", s, out, 400, "M_INVALID_PARAM")
	s, out = call(t, "POST", receipt("m.read", "$nope"), bobTok, map[string]any{})
	wantErr(t, "unknown event", s, out, 404, "M_NOT_FOUND")
	s, out = call(t, "POST", receipt("m.read", eventID), carolTok, map[string]any{})
	wantErr(t, "not joined", s, out, 403, "M_FORBIDDEN")

	// m.fully_read through /receipt lands in room account data.
	s, out = call(t, "POST", receipt("m.fully_read", eventID), bobTok, map[string]any{})
	wantOK(t, "m.fully_read", s, out)
	fullyRead := v3 + "/user/" + url.PathEscape(bob) + "/rooms/" + url.PathEscape(roomID) + "/account_data/m.fully_read"
	s, out = call(t, "GET", fullyRead, bobTok, nil)
	if s != 200 || out["event_id"] != eventID {
		t.Fatalf("m.fully_read data: %d %v", s, out)
	}
}

func TestReadMarkersHTTP(t *testing.T) {
	base, api := testServerAPI(t)
	alice, aliceTok := registerUser(t, base, "alice")
	_, carolTok := registerUser(t, base, "carol")
	roomID, eventID := udRoom(t, api, alice)
	markers := base + "/_matrix/client/v3/rooms/" + url.PathEscape(roomID) + "/read_markers"

	s, out := call(t, "POST", markers, aliceTok, map[string]any{"m.fully_read": eventID, "m.read": eventID, "m.read.private": eventID})
	wantOK(t, "read_markers", s, out)
	_ = api.store.View(func(rt *fsm.ReadTx) error {
		rec, err := rt.AccountData(alice, roomID, "m.fully_read")
		if err != nil || string(rec.Content) != `{"event_id":"`+eventID+`"}` {
			t.Errorf("m.fully_read = %+v %v", rec, err)
		}
		for _, rType := range []string{"m.read", "m.read.private"} {
			if r, ok := rt.UserReceipt(roomID, alice, rType, ""); !ok || r.EventID != eventID {
				t.Errorf("%s receipt = %+v %v", rType, r, ok)
			}
		}
		return nil
	})
	s, out = call(t, "POST", markers, aliceTok, map[string]any{})
	wantOK(t, "empty read_markers", s, out)
	s, out = call(t, "POST", markers, aliceTok, map[string]any{"m.read": 5})
	wantErr(t, "non-string marker", s, out, 400, "M_BAD_JSON")
	s, out = call(t, "POST", markers, aliceTok, map[string]any{"m.fully_read": "$nope"})
	wantErr(t, "unknown event", s, out, 404, "M_NOT_FOUND")
	s, out = call(t, "POST", markers, carolTok, map[string]any{"m.fully_read": eventID})
	wantErr(t, "not joined", s, out, 403, "M_FORBIDDEN")
}
