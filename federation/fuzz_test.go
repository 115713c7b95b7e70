package federation

import (
	"bytes"
	"encoding/json"
	jsonv2 "encoding/json/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/crypto/canonicaljson"
	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/federation/signutil"
	"maunium.net/go/mautrix/id"
)

// FuzzCanonicalJSON: the canonicaliser the signing code uses (mautrix's,
// on encoding/json/v2) never panics; on valid JSON its output is valid,
// canonical again unchanged, means the same, and a signature over it
// verifies.
func FuzzCanonicalJSON(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"one":1,"two":"Two"}`, `{"b":"2","a":"1"}`,
		`{"auth":{"success":true,"mxid":"@john.doe:example.com","profile":{"display_name":"John Doe","three_pids":[{"medium":"email","address":"john.doe@example.org"},{"medium":"msisdn","address":"123456789"}]}}}`,
		`{"a":"日本語"}`, `{"本":2,"日":1}`, `{"a":"\u65E5"}`, `{"a":null}`, `{"a":-0,"b":1e10}`,
		`{"a":"\u0000\u001f\"\\\/"}`, `{"\ud83d\ude00":"\ud83d\ude00"}`, `[1,[2,{"z":[],"y":{}}]]`,
		`{"a":9007199254740991,"b":-9007199254740991}`, `{"a":1.5}`, `{"a":"x","a":"y"}`, " \t\n{ \"a\" : [ true , false ] }\n",
	} {
		f.Add([]byte(s))
	}
	key := NewSigningKey("fuzz")
	f.Fuzz(func(t *testing.T, in []byte) {
		out := json.RawMessage(bytes.Clone(in))
		err := canonicaljson.Canonicalize(&out)
		if err != nil || !json.Valid(in) {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("canonical form of %q is not JSON: %q", in, out)
		}
		again := bytes.Clone(out)
		if err := canonicaljson.Canonicalize((*json.RawMessage)(&again)); err != nil || !bytes.Equal(again, out) {
			t.Fatalf("not idempotent: %q -> %q -> %q (%v)", in, out, again, err)
		}
		var x, y any
		if json.Unmarshal(in, &x) == nil && json.Unmarshal(out, &y) == nil && !reflect.DeepEqual(x, y) {
			t.Fatalf("meaning changed: %q -> %q", in, out)
		}
		// Sign the input as it came and verify the re-encoded object.
		obj, ok := y.(map[string]any)
		if !ok {
			return
		}
		_, hasSigs := obj["signatures"]
		_, hasUnsigned := obj["unsigned"]
		if hasSigs || hasUnsigned {
			return
		}
		sig, err := key.SignJSON(json.RawMessage(in))
		if err != nil {
			t.Fatalf("sign %q: %v", in, err)
		}
		obj["signatures"] = map[string]any{"s": map[string]any{string(key.ID): sig}}
		raw, _ := json.Marshal(obj)
		if err := signutil.VerifyJSON("s", key.ID, key.Pub, json.RawMessage(raw)); err != nil {
			t.Fatalf("signature over %q does not verify on %q: %v", in, raw, err)
		}
	})
}

// FuzzXMatrix: the header parser never panics, and what it accepts formats
// and parses back to the same.
func FuzzXMatrix(f *testing.F) {
	for _, s := range []string{
		`X-Matrix origin="origin.hs.example.com",destination="destination.hs.example.com",key="ed25519:key1",sig="ABCDEF"`,
		`X-Matrix origin=a.example:8448,key=ed25519:k,sig=abc+/=`,
		"x-matrix  ORIGIN=\"a\" ,\tkey=\"ed25519:k\" , sig=\"s\\\"x\",foo=bar",
		`X-Matrix ,,origin="a",key="k",sig="s",`, `X-Matrix origin="a`, `X-Matrix origin="a\`, `X-Matrix =`, `Bearer x`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		got, err := ParseXMatrix(h)
		if err != nil {
			return
		}
		again, err := ParseXMatrix(FormatXMatrix(got))
		if err != nil || again != got {
			t.Fatalf("%q parsed as %+v; formatted and parsed again: %+v, %v", h, got, again, err)
		}
		if !strings.ContainsAny(got.Origin+got.Destination+string(got.KeyID)+got.Signature, `"\`) {
			if m, err := ParseXMatrix(got.String()); err != nil || m != got {
				t.Fatalf("mautrix's format of %+v parses as %+v, %v", got, m, err)
			}
		}
	})
}

// FuzzPDU: decoding a PDU and everything done to it before it is trusted
// (event ID, hashes, redaction, client form, signature check) never panics.
func FuzzPDU(f *testing.F) {
	key := NewSigningKey("fuzz")
	for _, ver := range []id.RoomVersion{"3", "10", "12"} {
		p := &pdu.PDU{AuthEvents: []id.EventID{"$a"}, PrevEvents: []id.EventID{"$b"}, Depth: 2,
			Content: json.RawMessage(`{"membership":"join","displayname":"x"}`), OriginServerTS: 1700000000000,
			RoomID: "!r:s.test", Sender: "@u:s.test", StateKey: new(string), Type: "m.room.member",
			Unsigned: json.RawMessage(`{"age":1}`)}
		*p.StateKey = "@u:s.test"
		_ = p.Sign(ver, "s.test", key.ID, key.Priv)
		raw, _ := jsonv2.Marshal(p)
		f.Add(raw, string(ver))
	}
	for _, s := range []string{
		`{"type":"m.room.create","content":{"room_version":"12"},"sender":"@u:s","state_key":"","depth":1,"auth_events":[],"prev_events":[],"origin_server_ts":1}`,
		`{"type":"m.room.redaction","redacts":"$x","content":{"redacts":"$x"},"room_id":"!r:s","sender":"@u:s","hashes":{"sha256":"AAAA"},"signatures":{"s":{"ed25519:x":"AAAA"}}}`,
		`{"type":"m.room.power_levels","content":{"users":{"@u:s":1e400}},"depth":-1}`,
		`{"content":null,"unsigned":[],"hashes":{"sha256":123}}`, `[]`, `null`, `{"depth":"1"}`,
	} {
		f.Add([]byte(s), "10")
	}
	getKey := func(server string, keyID id.KeyID, _ time.Time) (id.SigningKey, time.Time, error) {
		if server == "s.test" && keyID == key.ID {
			return key.Pub, time.Now().Add(time.Hour), nil
		}
		return "", time.Time{}, nil
	}
	f.Fuzz(func(t *testing.T, raw []byte, version string) {
		var p pdu.PDU
		if err := jsonv2.Unmarshal(raw, &p); err != nil {
			return
		}
		ver := id.RoomVersion(version)
		_, _ = p.GetEventID(ver)
		_, _ = p.GetReferenceHash(ver)
		_, _ = p.CalculateContentHash()
		_ = p.VerifyContentHash()
		_, _ = p.GetRoomID()
		_ = p.AuthEventSelection(ver)
		_, _ = p.ToClientEvent(ver)
		_ = RequiredSigners(&p)
		_ = p.VerifySignature(ver, "s.test", getKey)
		_ = p.Clone().Redact(ver)
		_, _ = jsonv2.Marshal(p.Clone().RedactForSignature(ver))
	})
}
