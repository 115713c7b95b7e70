package clientapi

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/ganglion/ganglion/config"
	"github.com/ganglion/ganglion/fsm"
)

// synapseMAC computes the MAC the way Synapse's register_new_matrix_user
// script does, independently of adminMAC.
func synapseMAC(t *testing.T, secret, nonce, user, password string, admin bool) string {
	t.Helper()
	kind := "notadmin"
	if admin {
		kind = "admin"
	}
	return hmacSHA1Hex(secret, nonce+"\x00"+user+"\x00"+password+"\x00"+kind)
}

func adminNonce(t *testing.T, base string) string {
	t.Helper()
	status, out := call(t, "GET", base+"/_synapse/admin/v1/register", "", nil)
	wantResp(t, "nonce", status, out, 200, "")
	n, _ := out["nonce"].(string)
	if n == "" {
		t.Fatalf("no nonce in %v", out)
	}
	return n
}

func TestAdminRegister(t *testing.T) {
	base, api := testServerAPI(t)
	url := base + "/_synapse/admin/v1/register"

	n := adminNonce(t, base)
	body := map[string]any{"nonce": n, "username": "Root", "password": "pw", "admin": true,
		"displayname": "The Admin", "mac": synapseMAC(t, "s3cret", n, "Root", "pw", true)}
	status, out := call(t, "POST", url, "", body)
	wantResp(t, "register admin", status, out, 200, "")
	if out["user_id"] != "@root:test.local" || out["home_server"] != "test.local" || out["access_token"] == nil || out["device_id"] == nil {
		t.Fatalf("answer %v", out)
	}
	status, who := call(t, "GET", base+csV3+"/account/whoami", fmt.Sprint(out["access_token"]), nil)
	wantResp(t, "whoami", status, who, 200, "")
	var u *fsm.UserRecord
	_ = api.store.View(func(rt *fsm.ReadTx) error { u, _ = rt.User("@root:test.local"); return nil })
	if u == nil || !u.Admin || u.DisplayName != "The Admin" {
		t.Fatalf("user record %+v", u)
	}

	// The nonce was single use.
	status, out = call(t, "POST", url, "", body)
	wantResp(t, "nonce reuse", status, out, 400, "M_UNKNOWN")

	fresh := func(user, password string, admin bool, mac string) map[string]any {
		n := adminNonce(t, base)
		if mac == "" {
			mac = synapseMAC(t, "s3cret", n, user, password, admin)
		}
		return map[string]any{"nonce": n, "username": user, "password": password, "admin": admin, "mac": mac}
	}
	cases := []struct {
		name    string
		body    map[string]any
		status  int
		errcode string
	}{
		{"non-admin", fresh("plain", "pw", false, ""), 200, ""},
		{"bad mac", fresh("mallory", "pw", false, "00"), 403, "M_FORBIDDEN"},
		{"mac for admin claimed as notadmin", func() map[string]any {
			b := fresh("mallory", "pw", true, "")
			b["admin"] = false
			return b
		}(), 403, "M_FORBIDDEN"},
		{"taken", fresh("root", "pw", false, ""), 400, "M_USER_IN_USE"},
		{"invalid username", fresh("no way", "pw", false, ""), 400, "M_INVALID_USERNAME"},
		{"unknown nonce", map[string]any{"nonce": "abc", "username": "x", "password": "y", "mac": "z"}, 400, "M_UNKNOWN"},
		{"no nonce", map[string]any{"username": "x", "password": "y", "mac": "z"}, 400, "M_BAD_JSON"},
		{"no mac", func() map[string]any { b := fresh("x", "y", false, ""); delete(b, "mac"); return b }(), 400, "M_BAD_JSON"},
		{"no username", func() map[string]any { b := fresh("x", "y", false, ""); delete(b, "username"); return b }(), 400, "M_BAD_JSON"},
		{"no password", func() map[string]any { b := fresh("x", "y", false, ""); delete(b, "password"); return b }(), 400, "M_BAD_JSON"},
		{"user_type in mac", func() map[string]any {
			b := fresh("botty", "pw", false, "")
			b["user_type"] = "bot"
			b["mac"] = hmacSHA1Hex("s3cret", b["nonce"].(string)+"\x00botty\x00pw\x00notadmin\x00bot")
			return b
		}(), 200, ""},
		{"bad user_type", func() map[string]any { b := fresh("x", "y", false, ""); b["user_type"] = "god"; return b }(), 400, "M_UNKNOWN"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, out := call(t, "POST", url, "", tc.body)
			wantResp(t, tc.name, status, out, tc.status, tc.errcode)
		})
	}
}

func TestAdminRegisterDisabled(t *testing.T) {
	base := testServer(t, func(c *config.Config) { c.Registration.SharedSecret = "" })
	status, out := call(t, "GET", base+"/_synapse/admin/v1/register", "", nil)
	wantResp(t, "nonce", status, out, 400, "M_UNKNOWN")
	status, out = call(t, "POST", base+"/_synapse/admin/v1/register", "", map[string]any{"nonce": "x"})
	wantResp(t, "register", status, out, 400, "M_UNKNOWN")
}

func TestNonceStore(t *testing.T) {
	ns := newNonceStore()
	now := time.Unix(1000, 0)
	ns.now = func() time.Time { return now }
	a, b := ns.issue(), ns.issue()
	if a == b || len(a) != 64 {
		t.Fatalf("nonces %q %q", a, b)
	}
	if !ns.take(a) || ns.take(a) {
		t.Fatal("nonce not single use")
	}
	now = now.Add(nonceTTL)
	if ns.take(b) {
		t.Fatal("expired nonce accepted")
	}
	for range maxNonces + 10 {
		ns.issue()
	}
	if ns.order.Len() != maxNonces || len(ns.byVal) != maxNonces {
		t.Fatalf("%d nonces kept, bound is %d", ns.order.Len(), maxNonces)
	}
}

func TestUIASessions(t *testing.T) {
	s := newUIASessions()
	now := time.Unix(1000, 0)
	s.now = func() time.Time { return now }
	s.max = 3

	a := s.create("POST /register", "")
	if sess, ok := s.lookup(a); !ok || sess.endpoint != "POST /register" {
		t.Fatalf("lookup %+v %v", sess, ok)
	}
	s.finish(a)
	if _, ok := s.lookup(a); ok {
		t.Fatal("finished session still live")
	}

	b := s.create("x", "@u:h")
	now = now.Add(uiaTTL - time.Second)
	if _, ok := s.lookup(b); !ok {
		t.Fatal("session expired early")
	}
	now = now.Add(time.Second)
	if _, ok := s.lookup(b); ok {
		t.Fatal("session outlived its TTL")
	}

	// Bounded: the oldest go first.
	ids := []string{s.create("x", ""), s.create("x", ""), s.create("x", ""), s.create("x", "")}
	if s.len() != 3 {
		t.Fatalf("%d sessions, bound 3", s.len())
	}
	if _, ok := s.lookup(ids[0]); ok {
		t.Fatal("oldest session not evicted")
	}
	if _, ok := s.lookup(ids[3]); !ok {
		t.Fatal("newest session evicted")
	}
}

func hmacSHA1Hex(key, msg string) string {
	m := hmac.New(sha1.New, []byte(key))
	m.Write([]byte(msg))
	return hex.EncodeToString(m.Sum(nil))
}
