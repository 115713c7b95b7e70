package federation

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"go.mau.fi/util/jsontime"
	mfed "maunium.net/go/mautrix/federation"
	"maunium.net/go/mautrix/id"
)

// fakeClock lets a test move the keyring's time.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestKeyringCachesAndRefetches(t *testing.T) {
	pki := newTestPKI(t)
	a := newTestServer(t, pki, nil)
	b := newTestServer(t, pki, nil)
	clock := &fakeClock{t: time.Now()}
	kr := b.api.Keyring()
	kr.now = clock.now
	ctx := context.Background()
	keyID := a.keys.Key.ID

	sk, err := kr.Key(ctx, a.name, keyID, clock.now())
	if err != nil || sk.Key != a.keys.Key.Pub || sk.Expired {
		t.Fatalf("Key = %+v, %v", sk, err)
	}
	if !sk.ValidUntil.After(clock.now().Add(23 * time.Hour)) {
		t.Fatalf("valid until %s, want about a day ahead", sk.ValidUntil)
	}
	if _, err := kr.Key(ctx, a.name, keyID, clock.now()); err != nil {
		t.Fatal(err)
	}
	if n := a.hitCount("/_matrix/key/v2/server"); n != 1 {
		t.Fatalf("fetched %d times, want 1 (cached)", n)
	}
	// An unknown key ID asked for within the refetch interval makes no fetch.
	for i := 0; i < 3; i++ {
		if _, err := kr.Key(ctx, a.name, "ed25519:other", clock.now()); !errors.Is(err, ErrKeyNotFound) {
			t.Fatalf("unknown key: %v", err)
		}
	}
	clock.add(2 * time.Minute)
	if n := a.hitCount("/_matrix/key/v2/server"); n != 1 {
		t.Fatalf("fetched %d times within the refetch interval, want 1", n)
	}
	// Past valid_until_ts (a's clock is real: its new answer is valid from
	// now, so move our clock only a little past the old one).
	sk, _ = kr.Key(ctx, a.name, keyID, sk.ValidUntil.Add(time.Millisecond))
	if n := a.hitCount("/_matrix/key/v2/server"); n != 2 {
		t.Fatalf("fetched %d times, want 2 (stale key refetched)", n)
	}
	if sk.Key != a.keys.Key.Pub {
		t.Fatalf("key after refetch = %+v", sk)
	}
	// The own server needs no fetch.
	own, err := kr.Key(ctx, b.name, b.keys.Key.ID, clock.now())
	if err != nil || own.Key != b.keys.Key.Pub {
		t.Fatalf("own key = %+v, %v", own, err)
	}
}

func TestKeyringBacksOffAfterFailure(t *testing.T) {
	pki := newTestPKI(t)
	b := newTestServer(t, pki, nil)
	kr := b.api.Keyring()
	ctx := context.Background()
	if _, err := kr.Key(ctx, "localhost:1", "ed25519:x", time.Now()); err == nil || errors.Is(err, ErrKeyFetchBackoff) {
		t.Fatalf("first fetch: %v", err)
	}
	if _, err := kr.Key(ctx, "localhost:1", "ed25519:x", time.Now()); !errors.Is(err, ErrKeyFetchBackoff) {
		t.Fatalf("second fetch: %v, want backoff", err)
	}
}

// A server whose document is signed by a key it does not list, or names
// another server, is refused.
func TestKeyringRefusesBadDocuments(t *testing.T) {
	pki := newTestPKI(t)
	b := newTestServer(t, pki, nil)
	kr := b.api.Keyring()
	good := NewSigningKey("good")
	other := NewSigningKey("other")
	doc := func(server string, listed, signer *mfed.SigningKey) json.RawMessage {
		d := keyDocument{ServerName: server, VerifyKeys: map[id.KeyID]mfed.ServerVerifyKey{listed.ID: {Key: listed.Pub}},
			ValidUntilTS: time.Now().Add(time.Hour).UnixMilli()}
		raw, err := signDocument(d, server, signer)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	forged := NewSigningKey("good")
	for name, raw := range map[string]json.RawMessage{
		"signed by unlisted key": doc("x.test", good, other),
		"bad self-signature":     doc("x.test", good, forged),
		"other server's name":    doc("y.test", good, good),
		"not JSON":               json.RawMessage(`{`),
	} {
		if err := kr.accept("x.test", raw, ""); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if err := kr.accept("x.test", doc("x.test", good, good), ""); err != nil {
		t.Fatalf("good document refused: %v", err)
	}
}

// Keys valid for more than 7 days are capped at 7 days after receipt.
func TestKeyringCapsValidity(t *testing.T) {
	pki := newTestPKI(t)
	b := newTestServer(t, pki, nil)
	kr := b.api.Keyring()
	k := NewSigningKey("long")
	d := keyDocument{ServerName: "x.test", VerifyKeys: map[id.KeyID]mfed.ServerVerifyKey{k.ID: {Key: k.Pub}},
		OldVerifyKeys: map[id.KeyID]mfed.OldVerifyKey{"ed25519:old": {Key: NewSigningKey("old").Pub, ExpiredTS: jsontime.UM(time.Now().Add(-time.Hour))}},
		ValidUntilTS:  time.Now().Add(365 * 24 * time.Hour).UnixMilli()}
	raw, _ := signDocument(d, "x.test", k)
	if err := kr.accept("x.test", raw, ""); err != nil {
		t.Fatal(err)
	}
	sk, _ := kr.cached("x.test", k.ID)
	if sk.ValidUntil.After(time.Now().Add(maxKeyValidity)) {
		t.Fatalf("valid until %s, beyond 7 days", sk.ValidUntil)
	}
	old, ok := kr.cached("x.test", "ed25519:old")
	if !ok || !old.Expired || old.ValidUntil.After(time.Now()) {
		t.Fatalf("old key = %+v %v", old, ok)
	}
}
