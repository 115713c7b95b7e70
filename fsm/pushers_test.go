package fsm

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

func testPusher(userID, deviceID, appID, pushkey string) PusherSet {
	return PusherSet{UserID: userID, Pusher: PusherRecord{Pushkey: pushkey, Kind: "http", AppID: appID,
		AppDisplayName: "App", DeviceDisplayName: "Phone", Lang: "en", DeviceID: deviceID,
		Data: json.RawMessage(`{"url": "https://gw.example/_matrix/push/v1/notify"}`)}}
}

func pusherKeys(ps []PusherRecord) string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.AppID + "/" + p.Pushkey + "/" + p.DeviceDisplayName
	}
	return strings.Join(out, ",")
}

func (u *udFSM) pushers(userID string) string {
	var out string
	u.view(func(r *ReadTx) { out = pusherKeys(r.Pushers(userID)) })
	return out
}

func TestPusherSetModifyDelete(t *testing.T) {
	u := newUDFSM(t)
	u.world()
	u.mustApply(OpPusherSet, testPusher("@alice:t", "A1", "app.b", "k1"))
	u.mustApply(OpPusherSet, testPusher("@alice:t", "A1", "app.a", "k1"))
	if got := u.pushers("@alice:t"); got != "app.a/k1/Phone,app.b/k1/Phone" {
		t.Fatalf("pushers = %s", got)
	}
	mod := testPusher("@alice:t", "A1", "app.a", "k1")
	mod.Pusher.DeviceDisplayName = "Tablet"
	u.mustApply(OpPusherSet, mod)
	if got := u.pushers("@alice:t"); got != "app.a/k1/Tablet,app.b/k1/Phone" {
		t.Fatalf("after modify = %s", got)
	}
	del := PusherSet{UserID: "@alice:t", Delete: true, Pusher: PusherRecord{AppID: "app.b", Pushkey: "k1"}}
	u.mustApply(OpPusherSet, del)
	u.mustApply(OpPusherSet, del) // deleting what is gone is fine
	if got := u.pushers("@alice:t"); got != "app.a/k1/Tablet" {
		t.Fatalf("after delete = %s", got)
	}
	u.view(func(r *ReadTx) {
		if p := r.Pushers("@alice:t")[0]; p.TS == 0 || p.DeviceID != "A1" || string(p.Data) != `{"url":"https://gw.example/_matrix/push/v1/notify"}` {
			t.Fatalf("record = %+v", p)
		}
	})
}

func TestPusherAppend(t *testing.T) {
	u := newUDFSM(t)
	u.world()
	u.mustApply(OpPusherSet, testPusher("@alice:t", "A1", "app", "shared"))
	appended := testPusher("@bob:t", "B1", "app", "shared")
	appended.Append = true
	u.mustApply(OpPusherSet, appended)
	if u.pushers("@alice:t") == "" || u.pushers("@bob:t") == "" {
		t.Fatal("append=true removed the other user's pusher")
	}
	// append=false takes the app_id+pushkey away from every other user.
	u.mustApply(OpPusherSet, testPusher("@carol:t", "", "app", "shared"))
	if a, b, c := u.pushers("@alice:t"), u.pushers("@bob:t"), u.pushers("@carol:t"); a != "" || b != "" || c != "app/shared/Phone" {
		t.Fatalf("after replace: alice=%q bob=%q carol=%q", a, b, c)
	}
}

func TestPusherDeviceDeletion(t *testing.T) {
	u := newUDFSM(t)
	u.world()
	u.mustApply(OpPusherSet, testPusher("@alice:t", "A1", "app", "k1"))
	u.mustApply(OpPusherSet, testPusher("@alice:t", "A2", "app", "k2"))
	u.seed(func(w *WriteTx) error { return w.deleteDevicePushers("@alice:t", "A1") })
	if got := u.pushers("@alice:t"); got != "app/k2/Phone" {
		t.Fatalf("after device deletion = %s", got)
	}
	// The index entry went too: another user may now take k1 with no trace.
	u.view(func(r *ReadTx) {
		n := 0
		r.scan(bPushers, pusherIndexPrefix("app", "k1"), func(_, _ []byte) bool { n++; return true })
		if n != 0 {
			t.Fatalf("%d stale index entries", n)
		}
	})
}

func TestPusherRefusals(t *testing.T) {
	u := newUDFSM(t)
	u.world()
	long := testPusher("@alice:t", "A1", "app", strings.Repeat("k", MaxPushkeyBytes+1))
	longApp := testPusher("@alice:t", "A1", strings.Repeat("a", MaxAppIDChars+1), "k")
	nul := testPusher("@alice:t", "A1", "a\x00b", "k")
	noData := testPusher("@alice:t", "A1", "app", "k")
	noData.Pusher.Data = nil
	cases := []struct {
		name    string
		cmd     PusherSet
		status  int
		errcode string
	}{
		{"unknown user", testPusher("@ghost:t", "", "app", "k"), http.StatusNotFound, "M_NOT_FOUND"},
		{"no pushkey", testPusher("@alice:t", "A1", "app", ""), http.StatusBadRequest, "M_MISSING_PARAM"},
		{"long pushkey", long, http.StatusBadRequest, "M_INVALID_PARAM"},
		{"long app_id", longApp, http.StatusBadRequest, "M_INVALID_PARAM"},
		{"NUL", nul, http.StatusBadRequest, "M_INVALID_PARAM"},
		{"no data", noData, http.StatusBadRequest, "M_MISSING_PARAM"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := u.apply(OpPusherSet, c.cmd)
			wantErrcode(t, err, c.status, c.errcode)
		})
	}
	if got := u.pushers("@alice:t"); got != "" {
		t.Fatalf("refusals wrote %s", got)
	}
}

func TestPushersBucketExists(t *testing.T) {
	u := newUDFSM(t)
	u.view(func(r *ReadTx) {
		if r.tx.Bucket(bPushers) == nil {
			t.Fatal("pushers bucket missing")
		}
	})
}
