package federation

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"go.mau.fi/util/jsontime"
	mfed "maunium.net/go/mautrix/federation"
	"maunium.net/go/mautrix/federation/signutil"
	"maunium.net/go/mautrix/id"
)

func getDocs(t *testing.T, hc *http.Client, req *http.Request) []json.RawMessage {
	t.Helper()
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("%s: %d %s", req.URL, resp.StatusCode, raw)
	}
	var out struct {
		ServerKeys []json.RawMessage `json:"server_keys"`
	}
	if err := json.Unmarshal(raw, &out); err != nil || out.ServerKeys == nil {
		t.Fatalf("%s: %s", req.URL, raw)
	}
	return out.ServerKeys
}

func TestServerKeysEndpoint(t *testing.T) {
	pki := newTestPKI(t)
	a := newTestServer(t, pki, nil)
	oldKey := NewSigningKey("old")
	a.keys.OldKeys = map[id.KeyID]mfed.OldVerifyKey{oldKey.ID: {Key: oldKey.Pub, ExpiredTS: jsontime.UMInt(1532645052628)}}
	hc := pki.httpsClient()
	for _, path := range []string{"/_matrix/key/v2/server", "/_matrix/key/v2/server/" + string(a.keys.Key.ID)} {
		status, out := do(t, hc, newRequest(t, http.MethodGet, a.url()+path, nil))
		if status != 200 {
			t.Fatalf("%s: %d %v", path, status, out)
		}
		raw, _ := json.Marshal(out)
		var skr mfed.ServerKeyResponse
		if err := json.Unmarshal(raw, &skr); err != nil {
			t.Fatal(err)
		}
		if skr.ServerName != a.name || skr.VerifyKeys[a.keys.Key.ID].Key != a.keys.Key.Pub {
			t.Fatalf("document = %s", raw)
		}
		if err := skr.VerifySelfSignature(); err != nil {
			t.Fatalf("self-signature: %v", err)
		}
		if old := skr.OldVerifyKeys[oldKey.ID]; old.Key != oldKey.Pub || old.ExpiredTS.UnixMilli() != 1532645052628 {
			t.Fatalf("old_verify_keys = %v", skr.OldVerifyKeys)
		}
		until := time.Until(skr.ValidUntilTS.Time)
		if until < 23*time.Hour || until > 25*time.Hour {
			t.Fatalf("valid_until_ts %s ahead", until)
		}
	}
}

// b acts as notary for a: its answers carry a's and b's signatures.
func TestNotaryAnswersSignedByBoth(t *testing.T) {
	pki := newTestPKI(t)
	a := newTestServer(t, pki, nil)
	b := newTestServer(t, pki, nil)
	hc := pki.httpsClient()
	check := func(doc json.RawMessage) {
		t.Helper()
		var skr mfed.ServerKeyResponse
		if err := json.Unmarshal(doc, &skr); err != nil || skr.ServerName != a.name {
			t.Fatalf("notary answer %s (%v)", doc, err)
		}
		if err := signutil.VerifyJSON(a.name, a.keys.Key.ID, a.keys.Key.Pub, doc); err != nil {
			t.Fatalf("origin signature: %v", err)
		}
		if err := signutil.VerifyJSON(b.name, b.keys.Key.ID, b.keys.Key.Pub, doc); err != nil {
			t.Fatalf("notary signature: %v", err)
		}
	}
	minValid := strconv.FormatInt(time.Now().Add(time.Hour).UnixMilli(), 10)
	docs := getDocs(t, hc, newRequest(t, http.MethodGet, b.url()+"/_matrix/key/v2/query/"+a.name+"?minimum_valid_until_ts="+minValid, nil))
	if len(docs) != 1 {
		t.Fatalf("GET query: %d documents", len(docs))
	}
	check(docs[0])
	body, _ := json.Marshal(map[string]any{"server_keys": map[string]any{
		a.name:          map[string]any{string(a.keys.Key.ID): map[string]any{"minimum_valid_until_ts": time.Now().UnixMilli()}},
		b.name:          map[string]any{},
		"localhost:1":   map[string]any{},
		"not a server!": map[string]any{},
	}})
	docs = getDocs(t, hc, newRequest(t, http.MethodPost, b.url()+"/_matrix/key/v2/query", body))
	if len(docs) != 2 {
		t.Fatalf("POST query: %d documents, want a's and b's", len(docs))
	}
	var own mfed.ServerKeyResponse
	for _, d := range docs {
		var probe struct {
			ServerName string `json:"server_name"`
		}
		_ = json.Unmarshal(d, &probe)
		if probe.ServerName == a.name {
			check(d)
		} else if err := json.Unmarshal(d, &own); err != nil || own.VerifySelfSignature() != nil {
			t.Fatalf("own document %s", d)
		}
	}
	// The second and third asks were served from b's cache.
	if n := a.hitCount("/_matrix/key/v2/server"); n != 1 {
		t.Errorf("a served its keys %d times, want 1", n)
	}
	if docs := getDocs(t, hc, newRequest(t, http.MethodGet, b.url()+"/_matrix/key/v2/query/localhost:1", nil)); len(docs) != 0 {
		t.Errorf("unreachable server: %d documents", len(docs))
	}
	if docs := getDocs(t, hc, newRequest(t, http.MethodPost, b.url()+"/_matrix/key/v2/query", []byte(`{"server_keys":{}}`))); len(docs) != 0 {
		t.Errorf("no servers asked: %d documents", len(docs))
	}
	status, out := do(t, hc, newRequest(t, http.MethodPost, b.url()+"/_matrix/key/v2/query", []byte(`{}`)))
	if status != 400 || out["errcode"] != "M_BAD_JSON" {
		t.Errorf("POST without server_keys = %d %v", status, out)
	}
	status, out = do(t, hc, newRequest(t, http.MethodGet, b.url()+"/_matrix/key/v2/query/"+a.name+"?minimum_valid_until_ts=soon", nil))
	if status != 400 || out["errcode"] != "M_INVALID_PARAM" {
		t.Errorf("bad minimum_valid_until_ts = %d %v", status, out)
	}
}

// When a is down, c gets a's keys from its trusted notary b, which
// remembers a's last answer; c checks both signatures.
func TestKeyringFallsBackToNotary(t *testing.T) {
	pki := newTestPKI(t)
	a := newTestServer(t, pki, nil)
	b := newTestServer(t, pki, nil)
	ctx := context.Background()
	if _, err := b.api.Keyring().Key(ctx, a.name, a.keys.Key.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	a.srv.Close()
	for _, pinned := range []bool{false, true} {
		c := newTestServer(t, pki, func(cfg *Config) {
			n := TrustedKeyServer{ServerName: b.name}
			if pinned {
				n.VerifyKeys = map[id.KeyID]id.SigningKey{b.keys.Key.ID: b.keys.Key.Pub}
			}
			cfg.TrustedKeyServers = []TrustedKeyServer{n}
		})
		sk, err := c.api.Keyring().Key(ctx, a.name, a.keys.Key.ID, time.Now())
		if err != nil || sk.Key != a.keys.Key.Pub {
			t.Fatalf("pinned=%v: key via notary = %+v, %v", pinned, sk, err)
		}
	}
	// A notary whose pinned key does not match is not believed.
	d := newTestServer(t, pki, func(cfg *Config) {
		cfg.TrustedKeyServers = []TrustedKeyServer{{ServerName: b.name,
			VerifyKeys: map[id.KeyID]id.SigningKey{b.keys.Key.ID: NewSigningKey("x").Pub}}}
	})
	if _, err := d.api.Keyring().Key(ctx, a.name, a.keys.Key.ID, time.Now()); err == nil {
		t.Fatal("accepted a notary answer signed by an unpinned key")
	}
}
