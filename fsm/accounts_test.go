package fsm

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"path/filepath"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// acctFSM is a real FSM over a store in a temp dir; apply feeds it one log
// entry at a time.
type acctFSM struct {
	t     *testing.T
	f     *FSM
	store *Store
	index uint64
}

func newAcctFSM(t *testing.T) *acctFSM {
	t.Helper()
	st, err := OpenStore(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &acctFSM{t: t, f: New(st, hclog.NewNullLogger()), store: st}
}

func (a *acctFSM) apply(op string, payload any) (any, error) {
	a.t.Helper()
	data, err := Encode(op, 1700000000000+int64(a.index), payload)
	if err != nil {
		a.t.Fatal(err)
	}
	a.index++
	res, ok := a.f.Apply(&raft.Log{Index: a.index, Type: raft.LogCommand, Data: data}).(Result)
	if !ok {
		a.t.Fatalf("%s: Apply did not return a Result", op)
	}
	return res.Value, res.Err
}

func (a *acctFSM) mustApply(op string, payload any) any {
	a.t.Helper()
	v, err := a.apply(op, payload)
	if err != nil {
		a.t.Fatalf("%s: %v", op, err)
	}
	return v
}

func (a *acctFSM) view(fn func(r *ReadTx)) {
	a.t.Helper()
	if err := a.store.View(func(r *ReadTx) error { fn(r); return nil }); err != nil {
		a.t.Fatal(err)
	}
}

func (a *acctFSM) owner(token string) (TokenOwner, bool) {
	var o TokenOwner
	var ok bool
	a.view(func(r *ReadTx) { o, ok = r.LookupToken(th(token)) })
	return o, ok
}

// ph is a stand-in bcrypt hash (the shape Apply insists on), distinct per
// name.
func ph(name string) string {
	h := "$2a$10$" + name
	for len(h) < 60 {
		h += "."
	}
	return h
}

func th(token string) []byte {
	s := sha256.Sum256([]byte(token))
	return s[:]
}

func wantErrcode(t *testing.T, err error, status int, errcode string) {
	t.Helper()
	var fe *Error
	if !errors.As(err, &fe) {
		t.Fatalf("want %d %s, got %v", status, errcode, err)
	}
	if fe.Status != status || fe.Errcode != errcode {
		t.Fatalf("want %d %s, got %d %s (%s)", status, errcode, fe.Status, fe.Errcode, fe.Message)
	}
}

const alice = "@alice:test.local"

func registerAlice(a *acctFSM) {
	a.t.Helper()
	a.mustApply(OpAccountRegister, RegisterCmd{UserID: alice, PasswordHash: ph("h1"), DisplayName: "alice",
		Device: &NewDevice{DeviceID: "DEV1", DisplayName: "phone", TokenHash: th("tok1"), IP: "127.0.0.1"}})
}

func TestAccountRegister(t *testing.T) {
	a := newAcctFSM(t)
	registerAlice(a)
	a.view(func(r *ReadTx) {
		u, err := r.User(alice)
		if err != nil || u.PasswordHash != ph("h1") || u.DisplayName != "alice" || u.CreatedTS != 1700000000000 {
			t.Fatalf("user record: %+v %v", u, err)
		}
		d, err := r.Device(alice, "DEV1")
		if err != nil || d.DisplayName != "phone" || !bytes.Equal(d.TokenHash, th("tok1")) || d.LastSeenIP != "127.0.0.1" {
			t.Fatalf("device record: %+v %v", d, err)
		}
	})
	if o, ok := a.owner("tok1"); !ok || o.UserID != alice || o.DeviceID != "DEV1" {
		t.Fatalf("token owner %+v %v", o, ok)
	}

	cases := []struct {
		name    string
		cmd     RegisterCmd
		status  int
		errcode string
	}{
		{"taken", RegisterCmd{UserID: alice}, 400, "M_USER_IN_USE"},
		{"bad user id", RegisterCmd{UserID: "alice"}, 400, "M_INVALID_USERNAME"},
		{"empty localpart", RegisterCmd{UserID: "@:test.local"}, 400, "M_INVALID_USERNAME"},
		{"short token hash", RegisterCmd{UserID: "@bob:test.local", Device: &NewDevice{DeviceID: "D", TokenHash: []byte("x")}}, 400, "M_BAD_JSON"},
		{"empty device", RegisterCmd{UserID: "@bob:test.local", Device: &NewDevice{TokenHash: th("b")}}, 400, "M_BAD_JSON"},
		{"token collision", RegisterCmd{UserID: "@bob:test.local", Device: &NewDevice{DeviceID: "D", TokenHash: th("tok1")}}, 500, "M_UNKNOWN"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := a.apply(OpAccountRegister, tc.cmd)
			wantErrcode(t, err, tc.status, tc.errcode)
		})
	}
	// A refused registration wrote nothing.
	a.view(func(r *ReadTx) {
		if _, err := r.User("@bob:test.local"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("refused registration left a user: %v", err)
		}
	})

	// inhibit_login: an account without devices.
	a.mustApply(OpAccountRegister, RegisterCmd{UserID: "@carol:test.local"})
	a.view(func(r *ReadTx) {
		if n := len(r.Devices("@carol:test.local")); n != 0 {
			t.Fatalf("inhibit_login created %d devices", n)
		}
	})
}

func TestAccountLogin(t *testing.T) {
	a := newAcctFSM(t)
	registerAlice(a)

	// A new device.
	v := a.mustApply(OpAccountLogin, LoginCmd{UserID: alice, PasswordHash: ph("h1"), Device: NewDevice{DeviceID: "DEV2", DisplayName: "laptop", TokenHash: th("tok2")}})
	if res := v.(LoginResult); res.Existed || res.DeviceID != "DEV2" {
		t.Fatalf("login result %+v", res)
	}
	// Reusing DEV1 replaces its token and keeps its display name.
	v = a.mustApply(OpAccountLogin, LoginCmd{UserID: alice, PasswordHash: ph("h1"), Device: NewDevice{DeviceID: "DEV1", DisplayName: "ignored", TokenHash: th("tok1b")}})
	if res := v.(LoginResult); !res.Existed {
		t.Fatalf("login result %+v", res)
	}
	if _, ok := a.owner("tok1"); ok {
		t.Fatal("old token of DEV1 still valid")
	}
	if o, ok := a.owner("tok1b"); !ok || o.DeviceID != "DEV1" {
		t.Fatalf("new token of DEV1: %+v %v", o, ok)
	}
	a.view(func(r *ReadTx) {
		d, _ := r.Device(alice, "DEV1")
		if d.DisplayName != "phone" {
			t.Fatalf("display name changed to %q", d.DisplayName)
		}
		if n := len(r.Devices(alice)); n != 2 {
			t.Fatalf("%d devices, want 2", n)
		}
	})

	cases := []struct {
		name    string
		cmd     LoginCmd
		status  int
		errcode string
	}{
		{"unknown user", LoginCmd{UserID: "@nobody:test.local", PasswordHash: ph("h1"), Device: NewDevice{DeviceID: "X", TokenHash: th("x")}}, 403, "M_FORBIDDEN"},
		{"password changed meanwhile", LoginCmd{UserID: alice, PasswordHash: ph("old"), Device: NewDevice{DeviceID: "X", TokenHash: th("x")}}, 403, "M_FORBIDDEN"},
		{"token collision", LoginCmd{UserID: alice, PasswordHash: ph("h1"), Device: NewDevice{DeviceID: "X", TokenHash: th("tok2")}}, 500, "M_UNKNOWN"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := a.apply(OpAccountLogin, tc.cmd)
			wantErrcode(t, err, tc.status, tc.errcode)
		})
	}

	// An account without a password cannot log in with an empty hash.
	a.mustApply(OpAccountRegister, RegisterCmd{UserID: "@nopass:test.local"})
	_, err := a.apply(OpAccountLogin, LoginCmd{UserID: "@nopass:test.local", Device: NewDevice{DeviceID: "X", TokenHash: th("y")}})
	wantErrcode(t, err, 403, "M_FORBIDDEN")
}

func TestAccountLogoutAndDevices(t *testing.T) {
	a := newAcctFSM(t)
	registerAlice(a)
	for _, d := range []string{"DEV2", "DEV3", "DEV4"} {
		a.mustApply(OpAccountLogin, LoginCmd{UserID: alice, PasswordHash: ph("h1"), Device: NewDevice{DeviceID: d, TokenHash: th(d)}})
	}
	a.mustApply(OpAccountLogout, LogoutCmd{UserID: alice, DeviceID: "DEV2"})
	if _, ok := a.owner("DEV2"); ok {
		t.Fatal("token valid after logout")
	}
	// Logging out a device that is already gone is not an error.
	a.mustApply(OpAccountLogout, LogoutCmd{UserID: alice, DeviceID: "DEV2"})

	name := "renamed"
	a.mustApply(OpDeviceUpdate, DeviceUpdateCmd{UserID: alice, DeviceID: "DEV3", DisplayName: &name})
	_, err := a.apply(OpDeviceUpdate, DeviceUpdateCmd{UserID: alice, DeviceID: "NOPE", DisplayName: &name})
	wantErrcode(t, err, 404, "M_NOT_FOUND")
	a.view(func(r *ReadTx) {
		if d, _ := r.Device(alice, "DEV3"); d.DisplayName != "renamed" {
			t.Fatalf("display name %q", d.DisplayName)
		}
	})

	v := a.mustApply(OpDeviceDelete, DeviceDeleteCmd{UserID: alice, DeviceIDs: []string{"DEV3", "NOPE"}})
	if res := v.(DeviceDeleteResult); len(res.Deleted) != 1 || res.Deleted[0] != "DEV3" {
		t.Fatalf("deleted %v", res.Deleted)
	}
	if _, ok := a.owner("DEV3"); ok {
		t.Fatal("token valid after device delete")
	}

	a.mustApply(OpAccountLogoutAll, LogoutAllCmd{UserID: alice})
	for _, tok := range []string{"tok1", "DEV4"} {
		if _, ok := a.owner(tok); ok {
			t.Fatalf("token %s valid after logout/all", tok)
		}
	}
	a.view(func(r *ReadTx) {
		if n := len(r.Devices(alice)); n != 0 {
			t.Fatalf("%d devices after logout/all", n)
		}
	})
}

func TestAccountSetPassword(t *testing.T) {
	a := newAcctFSM(t)
	registerAlice(a)
	a.mustApply(OpAccountLogin, LoginCmd{UserID: alice, PasswordHash: ph("h1"), Device: NewDevice{DeviceID: "DEV2", TokenHash: th("tok2")}})
	a.mustApply(OpAccountLogin, LoginCmd{UserID: alice, PasswordHash: ph("h1"), Device: NewDevice{DeviceID: "DEV3", TokenHash: th("tok3")}})

	// Without logout_devices every token survives.
	a.mustApply(OpAccountSetPassword, SetPasswordCmd{UserID: alice, PasswordHash: ph("h2")})
	for _, tok := range []string{"tok1", "tok2", "tok3"} {
		if _, ok := a.owner(tok); !ok {
			t.Fatalf("token %s revoked", tok)
		}
	}
	// With it only the kept device survives.
	a.mustApply(OpAccountSetPassword, SetPasswordCmd{UserID: alice, PasswordHash: ph("h3"), LogoutDevices: true, KeepDevice: "DEV2"})
	if _, ok := a.owner("tok2"); !ok {
		t.Fatal("kept device lost its token")
	}
	for _, tok := range []string{"tok1", "tok3"} {
		if _, ok := a.owner(tok); ok {
			t.Fatalf("token %s survived logout_devices", tok)
		}
	}
	a.view(func(r *ReadTx) {
		if u, _ := r.User(alice); u.PasswordHash != ph("h3") {
			t.Fatalf("hash %q", u.PasswordHash)
		}
	})
	// A login checked against the old hash is refused.
	_, err := a.apply(OpAccountLogin, LoginCmd{UserID: alice, PasswordHash: ph("h1"), Device: NewDevice{DeviceID: "X", TokenHash: th("x")}})
	wantErrcode(t, err, 403, "M_FORBIDDEN")

	_, err = a.apply(OpAccountSetPassword, SetPasswordCmd{UserID: "@nobody:test.local", PasswordHash: ph("h")})
	wantErrcode(t, err, 404, "M_NOT_FOUND")
}

func TestAccountDeactivate(t *testing.T) {
	a := newAcctFSM(t)
	registerAlice(a)
	a.mustApply(OpAccountDeactivate, DeactivateCmd{UserID: alice})
	if _, ok := a.owner("tok1"); ok {
		t.Fatal("token valid after deactivation")
	}
	a.view(func(r *ReadTx) {
		u, _ := r.User(alice)
		if !u.Deactivated || u.DisplayName != "alice" {
			t.Fatalf("user %+v", u)
		}
		if n := len(r.Devices(alice)); n != 0 {
			t.Fatalf("%d devices", n)
		}
	})
	_, err := a.apply(OpAccountLogin, LoginCmd{UserID: alice, PasswordHash: ph("h1"), Device: NewDevice{DeviceID: "X", TokenHash: th("x")}})
	wantErrcode(t, err, 403, "M_USER_DEACTIVATED")
	_, err = a.apply(OpAccountSetPassword, SetPasswordCmd{UserID: alice, PasswordHash: ph("h2")})
	wantErrcode(t, err, 403, "M_USER_DEACTIVATED")
	_, err = a.apply(OpAccountRegister, RegisterCmd{UserID: alice})
	wantErrcode(t, err, 400, "M_USER_IN_USE")

	// erase clears the profile.
	a.mustApply(OpAccountRegister, RegisterCmd{UserID: "@bob:test.local", DisplayName: "Bob"})
	a.mustApply(OpAccountDeactivate, DeactivateCmd{UserID: "@bob:test.local", Erase: true})
	a.view(func(r *ReadTx) {
		if u, _ := r.User("@bob:test.local"); u.DisplayName != "" || !u.Deactivated {
			t.Fatalf("erased user %+v", u)
		}
	})
}

func TestProfileSet(t *testing.T) {
	a := newAcctFSM(t)
	registerAlice(a)
	name, avatar := "Alice", "mxc://test.local/abc"
	v := a.mustApply(OpProfileSet, ProfileSetCmd{UserID: alice, DisplayName: &name})
	if p := v.(ProfileResult); p.DisplayName != "Alice" || p.AvatarURL != "" {
		t.Fatalf("profile %+v", p)
	}
	v = a.mustApply(OpProfileSet, ProfileSetCmd{UserID: alice, AvatarURL: &avatar})
	if p := v.(ProfileResult); p.DisplayName != "Alice" || p.AvatarURL != avatar {
		t.Fatalf("profile %+v", p)
	}
	empty := ""
	v = a.mustApply(OpProfileSet, ProfileSetCmd{UserID: alice, DisplayName: &empty})
	if p := v.(ProfileResult); p.DisplayName != "" || p.AvatarURL != avatar {
		t.Fatalf("profile %+v", p)
	}
	_, err := a.apply(OpProfileSet, ProfileSetCmd{UserID: "@nobody:test.local", DisplayName: &name})
	wantErrcode(t, err, 404, "M_NOT_FOUND")
}

// Two stores fed the same log end byte-identical (invariant 2).
func TestAccountsDeterministic(t *testing.T) {
	run := func() []byte {
		a := newAcctFSM(t)
		registerAlice(a)
		for _, d := range []string{"B", "A", "C"} {
			a.mustApply(OpAccountLogin, LoginCmd{UserID: alice, PasswordHash: ph("h1"), Device: NewDevice{DeviceID: d, TokenHash: th(d)}})
		}
		a.mustApply(OpAccountSetPassword, SetPasswordCmd{UserID: alice, PasswordHash: ph("h2"), LogoutDevices: true, KeepDevice: "A"})
		var buf bytes.Buffer
		a.view(func(r *ReadTx) {
			for _, b := range [][]byte{bUsers, bDevices, bTokens} {
				r.scan(b, nil, func(k, v []byte) bool {
					buf.Write(k)
					buf.WriteByte('=')
					buf.Write(v)
					buf.WriteByte('\n')
					return true
				})
			}
		})
		return buf.Bytes()
	}
	if a, b := run(), run(); !bytes.Equal(a, b) {
		t.Fatalf("state differs:\n%s\n---\n%s", a, b)
	}
}
