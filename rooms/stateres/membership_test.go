package stateres

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"testing"

	"maunium.net/go/mautrix/federation/eventauth"
	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/id"
)

var carolKey = StateKey{Type: "m.room.member", StateKey: carol}

// thirdPartyInvite adds alice's m.room.third_party_invite (token "tok",
// the identity server key pub) and invite, the invite of carol that
// redeems it with signed signed by priv, and a revocation at revokeTS.
func (b *builder) thirdPartyInvite(pub string, priv ed25519.PrivateKey, revokeTS int64) {
	b.event(ev{name: "tpi", typ: "m.room.third_party_invite", key: "tok", sender: alice, ts: 6,
		content: `{"display_name":"carol","key_validity_url":"https://id.example/isvalid","public_key":"` + pub +
			`","public_keys":[{"public_key":"` + pub + `","key_validity_url":"https://id.example/isvalid"}]}`,
		auth: []string{"m-alice", "pl1"}})
	signed := `{"mxid":"` + carol + `","token":"tok"}`
	sig := base64.RawStdEncoding.EncodeToString(ed25519.Sign(priv, []byte(signed)))
	b.event(ev{name: "m-carol", typ: "m.room.member", key: carol, sender: alice, ts: 20,
		content: `{"membership":"invite","third_party_invite":{"display_name":"carol","signed":{"mxid":"` + carol +
			`","token":"tok","signatures":{"id.example":{"ed25519:0":"` + sig + `"}}}}}`,
		auth: []string{"m-alice", "pl1", "jr1", "tpi"}})
	b.event(ev{name: "tpi-revoke", typ: "m.room.third_party_invite", key: "tok", sender: alice, ts: revokeTS,
		content: `{}`, auth: []string{"m-alice", "pl1"}})
}

// TestThirdPartyInvite: carol's invite redeems a third-party invite that
// alice revokes on another branch. The invite survives resolution only if
// it is applied while the m.room.third_party_invite it names is in the
// state, and only with a valid identity server signature.
func TestThirdPartyInvite(t *testing.T) {
	priv, pub, _ := testKey(7, "id.example")
	otherPriv, _, _ := testKey(8, "id.example")
	cases := []struct {
		name      string
		priv      ed25519.PrivateKey
		revokeTS  int64
		wantCarol string
		invalid   bool // the invite fails the auth rules on receipt
	}{
		{"revoked after the invite", priv, 30, "m-carol", false},
		{"revoked before the invite", priv, 10, "", false},
		{"bad signature", otherPriv, 30, "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			perVersion(t, func(t *testing.T, b *builder) {
				s0 := b.base()
				b.thirdPartyInvite(string(pub), tc.priv, tc.revokeTS)
				if tc.invalid {
					b.invalid = append(b.invalid, "m-carol")
				}
				got := b.resolve(nil, b.with(s0, "tpi", "m-carol"), b.with(s0, "tpi-revoke"))
				wantEntry(t, got, carolKey, tc.wantCarol)
				wantEntry(t, got, StateKey{Type: "m.room.third_party_invite", StateKey: "tok"}, "tpi-revoke")
			})
		})
	}
}

// TestThirdPartyInviteUpstream pins why the package patches rule 5.4.1.7:
// mautrix v0.32.0's eventauth refuses a validly signed third-party
// invite. When this fails, mautrix has been fixed; drop the workaround.
func TestThirdPartyInviteUpstream(t *testing.T) {
	priv, pub, _ := testKey(7, "id.example")
	b := newBuilder(t, id.RoomV11)
	b.base()
	b.thirdPartyInvite(string(pub), priv, 30)
	invite := b.rm.events[eid("m-carol")]
	err := eventauth.Authorize(b.rm.version, invite, nil, b.rm.positional, noKeys)
	if !errors.Is(err, eventauth.ErrThirdPartyInviteNotSigned) {
		t.Fatalf("eventauth.Authorize = %v, want ErrThirdPartyInviteNotSigned (upstream bug fixed?)", err)
	}
	auth, _ := b.rm.positional(invite.AuthEvents)
	if err := thirdPartyInviteSigned(invite, auth); err != nil {
		t.Fatalf("thirdPartyInviteSigned = %v", err)
	}
}

// restrictedJoin makes the room restricted (jr2) and adds carol's join
// authorised by mod, signed by mod's server with priv (nil: unsigned).
func (b *builder) restrictedJoin(priv ed25519.PrivateKey) {
	b.event(ev{name: "jr2", typ: "m.room.join_rules", sender: alice, ts: 6, auth: []string{"m-alice", "pl1"},
		content: `{"join_rule":"restricted","allow":[{"type":"m.room_membership","room_id":"!other:a.example"}]}`})
	join := b.event(ev{name: "m-carol", typ: "m.room.member", key: carol, sender: carol, ts: 20,
		content: `{"membership":"join","join_authorised_via_users_server":"` + mod + `"}`,
		auth:    []string{"pl1", "jr2", "m-mod"}})
	if priv != nil {
		if err := b.rm.events[join].Sign(b.rm.version, "a.example", "ed25519:1", priv); err != nil {
			b.t.Fatal(err)
		}
	}
}

// TestRestrictedJoin: carol joins a restricted room on the word of mod
// (join_authorised_via_users_server) while alice, on another branch,
// changes the topic or raises the invite level above mod's.
func TestRestrictedJoin(t *testing.T) {
	priv, _, getKey := testKey(9, "a.example")
	otherPriv, _, _ := testKey(10, "a.example")
	cases := []struct {
		name      string
		priv      ed25519.PrivateKey
		getKey    pdu.GetKeyFunc
		raise     bool
		wantCarol string
		invalid   bool // the join fails the auth rules on receipt (with these keys)
	}{
		{"concurrent topic", priv, getKey, false, "m-carol", false},
		{"invite level raised above the authoriser", priv, getKey, true, "", false},
		{"authoriser signature by another key", otherPriv, getKey, false, "", true},
		{"no key source: documented refusal", priv, nil, false, "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			perVersion(t, func(t *testing.T, b *builder) {
				s0 := b.base()
				b.restrictedJoin(tc.priv)
				if tc.invalid {
					b.invalid = append(b.invalid, "m-carol")
				}
				b.topic("topic-a", alice, 21, "m-alice", "pl1")
				b.powerLevels("pl2", alice, 15, `"invite":60`, map[string]int{alice: 100, mod: 50}, "m-alice", "pl1")
				other := "topic-a"
				if tc.raise {
					other = "pl2"
				}
				got := b.resolve(tc.getKey, b.with(s0, "jr2", "m-carol"), b.with(s0, "jr2", other))
				wantEntry(t, got, carolKey, tc.wantCarol)
				if tc.raise {
					wantEntry(t, got, plKey, "pl2")
				} else {
					wantEntry(t, got, topicKey, "topic-a")
				}
			})
		})
	}
}
