package federation

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/id"
)

// signObject signs obj without its unsigned member (mautrix's SignJSON
// keeps it), as the appendix says, then puts it back.
func signObject(t *testing.T, ts *testServer, obj map[string]any) json.RawMessage {
	t.Helper()
	unsigned, hasUnsigned := obj["unsigned"]
	delete(obj, "unsigned")
	sig, err := ts.keys.Key.SignJSON(obj)
	if err != nil {
		t.Fatal(err)
	}
	if hasUnsigned {
		obj["unsigned"] = unsigned
	}
	obj["signatures"] = map[string]any{ts.name: map[string]any{string(ts.keys.Key.ID): sig}}
	raw, _ := json.Marshal(obj)
	return raw
}

func TestVerifyJSON(t *testing.T) {
	pki := newTestPKI(t)
	a := newTestServer(t, pki, nil)
	b := newTestServer(t, pki, nil)
	kr := b.api.Keyring()
	ctx := context.Background()
	raw := signObject(t, a, map[string]any{"a": 1, "unsigned": map[string]any{"x": 1}})
	if err := kr.VerifyJSON(ctx, a.name, raw, time.Now()); err != nil {
		t.Fatalf("good: %v", err)
	}
	if err := kr.VerifyJSON(ctx, "other.test", raw, time.Now()); !errors.Is(err, ErrNoValidSignature) {
		t.Fatalf("other server: %v", err)
	}
	tampered := signObject(t, a, map[string]any{"a": 1})
	tampered = json.RawMessage(string(tampered[:len(tampered)-1]) + `,"b":2}`)
	if err := kr.VerifyJSON(ctx, a.name, tampered, time.Now()); err == nil {
		t.Fatal("tampered object verified")
	}
	if err := kr.VerifyJSON(ctx, a.name, raw, time.Now().Add(30*24*time.Hour)); err == nil {
		t.Fatal("verified with a key not valid that far ahead")
	}
	if err := kr.VerifyJSON(ctx, a.name, json.RawMessage(`{"a":1}`), time.Now()); !errors.Is(err, ErrNoValidSignature) {
		t.Fatalf("unsigned: %v", err)
	}
	// Our own signatures verify with no fetch.
	own := signObject(t, b, map[string]any{"x": "y"})
	if err := kr.VerifyJSON(ctx, b.name, own, time.Now()); err != nil {
		t.Fatalf("own: %v", err)
	}
}

func newSignedPDU(t *testing.T, ts *testServer, ver id.RoomVersion, originTS time.Time) *pdu.PDU {
	t.Helper()
	p := &pdu.PDU{
		AuthEvents:     []id.EventID{"$create", "$member"},
		PrevEvents:     []id.EventID{"$prev"},
		Content:        json.RawMessage(`{"body":"hi","msgtype":"m.text"}`),
		Depth:          3,
		OriginServerTS: originTS.UnixMilli(),
		RoomID:         "!room:" + id.RoomID(ts.name),
		Sender:         id.UserID("@alice:" + ts.name),
		Type:           "m.room.message",
	}
	if err := p.Sign(ver, ts.name, ts.keys.Key.ID, ts.keys.Key.Priv); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestVerifyEventSignatures(t *testing.T) {
	pki := newTestPKI(t)
	a := newTestServer(t, pki, nil)
	b := newTestServer(t, pki, nil)
	kr := b.api.Keyring()
	ctx := context.Background()
	now := time.Now()
	for _, ver := range []id.RoomVersion{"3", "10", "12"} {
		p := newSignedPDU(t, a, ver, now)
		if err := kr.VerifyEventSignatures(ctx, ver, p); err != nil {
			t.Fatalf("v%s good: %v", ver, err)
		}
		// Content is redacted away before signing: a changed body still
		// verifies (the content hash catches it); a changed sender does not.
		p.Content = json.RawMessage(`{"body":"changed","msgtype":"m.text"}`)
		if err := kr.VerifyEventSignatures(ctx, ver, p); err != nil {
			t.Fatalf("v%s changed content: %v", ver, err)
		}
		if p.VerifyContentHash() {
			t.Fatalf("v%s: content hash still matches", ver)
		}
		p.Depth++
		if err := kr.VerifyEventSignatures(ctx, ver, p); err == nil {
			t.Fatalf("v%s: changed depth verified", ver)
		}
		// Sent by a user of b but signed only by a.
		q := newSignedPDU(t, a, ver, now)
		q.Sender = id.UserID("@mallory:" + b.name)
		if err := kr.VerifyEventSignatures(ctx, ver, q); err == nil {
			t.Fatalf("v%s: event signed by another server verified", ver)
		}
	}
	// Room versions 5+ need the key valid at origin_server_ts; v3 does not.
	future := now.Add(10 * 24 * time.Hour)
	if err := kr.VerifyEventSignatures(ctx, "10", newSignedPDU(t, a, "10", future)); err == nil {
		t.Fatal("v10: event after the key's validity verified")
	}
	if err := kr.VerifyEventSignatures(ctx, "3", newSignedPDU(t, a, "3", future)); err != nil {
		t.Fatalf("v3 ignores valid_until_ts: %v", err)
	}
	// An invite made from a third-party invite needs no sender signature.
	inv := newSignedPDU(t, a, "10", now)
	inv.Type, inv.StateKey = "m.room.member", new(string)
	*inv.StateKey = "@bob:" + b.name
	inv.Content = json.RawMessage(`{"membership":"invite","third_party_invite":{"display_name":"b"}}`)
	inv.Signatures = nil
	if got := RequiredSigners(inv); len(got) != 0 {
		t.Fatalf("third-party invite signers = %v", got)
	}
}
