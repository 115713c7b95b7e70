package fsm

import (
	"net/http"
	"testing"
)

func TestOpenIDIssueAndExpiry(t *testing.T) {
	a := newAcctFSM(t)
	registerAlice(a)
	// The harness's command timestamps are 1700000000000 + index.
	const now = int64(1700000000000)
	a.mustApply(OpOpenIDIssue, OpenIDIssueCmd{UserID: alice, TokenHash: th("oid1"), ExpiresTS: now + 100})
	a.view(func(r *ReadTx) {
		if u, ok := r.OpenIDTokenUser(th("oid1"), now+50); !ok || u != alice {
			t.Fatalf("fresh token: %q %v", u, ok)
		}
		if _, ok := r.OpenIDTokenUser(th("oid1"), now+100); ok {
			t.Fatal("token valid at its expiry")
		}
		if _, ok := r.OpenIDTokenUser(th("nope"), now); ok {
			t.Fatal("unknown token accepted")
		}
	})

	_, err := a.apply(OpOpenIDIssue, OpenIDIssueCmd{UserID: alice, TokenHash: th("oid1"), ExpiresTS: now + 500})
	wantErrcode(t, err, http.StatusBadRequest, "M_BAD_JSON")
	_, err = a.apply(OpOpenIDIssue, OpenIDIssueCmd{UserID: "@bob:test.local", TokenHash: th("oid2"), ExpiresTS: now + 500})
	wantErrcode(t, err, http.StatusNotFound, "M_NOT_FOUND")
	_, err = a.apply(OpOpenIDIssue, OpenIDIssueCmd{UserID: alice, TokenHash: []byte("short"), ExpiresTS: now + 500})
	wantErrcode(t, err, http.StatusBadRequest, "M_BAD_JSON")
	_, err = a.apply(OpOpenIDIssue, OpenIDIssueCmd{UserID: alice, TokenHash: th("oid3"), ExpiresTS: now})
	wantErrcode(t, err, http.StatusBadRequest, "M_BAD_JSON")

	// Issuing after oid1 expired prunes it from the store.
	a.index = 150
	a.mustApply(OpOpenIDIssue, OpenIDIssueCmd{UserID: alice, TokenHash: th("oid4"), ExpiresTS: now + 10000})
	a.view(func(r *ReadTx) {
		if r.get(bOpenIDTokens, th("oid1")) != nil {
			t.Fatal("expired token not pruned")
		}
		if u, ok := r.OpenIDTokenUser(th("oid4"), now+200); !ok || u != alice {
			t.Fatalf("new token: %q %v", u, ok)
		}
	})
}
