package fsm

import (
	"encoding/json"
	"errors"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	bolt "go.etcd.io/bbolt"
)

// udFSM is a real FSM over a temp store for the user-data commands. Users,
// rooms, memberships and events are seeded straight into the store: these
// tests are about the commands that read them, not about how they got there.
type udFSM struct {
	t     *testing.T
	f     *FSM
	store *Store
	index uint64
}

func newUDFSM(t *testing.T) *udFSM {
	t.Helper()
	st, err := OpenStore(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &udFSM{t: t, f: New(st, hclog.NewNullLogger()), store: st}
}

// apply runs one command through ApplyBatch as the next log entry.
func (u *udFSM) apply(op string, payload any) (any, error) {
	u.t.Helper()
	u.index++
	data, err := Encode(op, 1700000000000+int64(u.index), payload)
	if err != nil {
		u.t.Fatal(err)
	}
	res := u.f.ApplyBatch([]*raft.Log{{Index: u.index, Type: raft.LogCommand, Data: data}})
	r, ok := res[0].(Result)
	if !ok {
		u.t.Fatalf("%s: no Result", op)
	}
	return r.Value, r.Err
}

func (u *udFSM) mustApply(op string, payload any) any {
	u.t.Helper()
	v, err := u.apply(op, payload)
	if err != nil {
		u.t.Fatalf("%s: %v", op, err)
	}
	return v
}

// wantRefusal checks a command is refused with status and errcode.
func (u *udFSM) wantRefusal(op string, payload any, status int, errcode string) {
	u.t.Helper()
	_, err := u.apply(op, payload)
	var fe *Error
	if !errors.As(err, &fe) || fe.Status != status || fe.Errcode != errcode {
		u.t.Fatalf("%s: want %d %s, got %v", op, status, errcode, err)
	}
}

// seed writes records directly, as the entry at the next index, and
// returns the touched sets.
func (u *udFSM) seed(fn func(w *WriteTx) error) *Touched {
	u.t.Helper()
	u.index++
	touched := &Touched{Users: map[string]bool{}, Rooms: map[string]bool{}}
	err := u.store.update(func(tx *bolt.Tx) error {
		w := &WriteTx{ReadTx: ReadTx{tx: tx}, index: u.index, touched: touched}
		if err := fn(w); err != nil {
			return err
		}
		return tx.Bucket(bMeta).Put(keyAppliedIndex, u64(u.index))
	})
	if err != nil {
		u.t.Fatal(err)
	}
	return touched
}

// world seeds users alice, bob (devices A1, A2 / B1), carol (not in the
// room), room !r:t with alice and bob joined, and events $e1..$e3.
func (u *udFSM) world() {
	u.seed(func(w *WriteTx) error {
		for _, user := range []string{"@alice:t", "@bob:t", "@carol:t"} {
			if err := w.putJSON(bUsers, []byte(user), UserRecord{UserID: user}); err != nil {
				return err
			}
		}
		for _, d := range [][2]string{{"@alice:t", "A1"}, {"@alice:t", "A2"}, {"@bob:t", "B1"}} {
			if err := w.putJSON(bDevices, key(d[0], d[1]), DeviceRecord{UserID: d[0], DeviceID: d[1]}); err != nil {
				return err
			}
		}
		if err := w.putJSON(bRooms, []byte("!r:t"), RoomRecord{RoomID: "!r:t", Version: "11"}); err != nil {
			return err
		}
		for _, user := range []string{"@alice:t", "@bob:t"} {
			if err := w.putJSON(bMembership, key(user, "!r:t"), MembershipRecord{Membership: "join"}); err != nil {
				return err
			}
		}
		for _, id := range []string{"$e1", "$e2", "$e3"} {
			if err := w.putJSON(bEvents, []byte(id), EventRecord{EventID: id, RoomID: "!r:t", Pos: w.NextPos()}); err != nil {
				return err
			}
		}
		return nil
	})
}

func (u *udFSM) view(fn func(r *ReadTx)) {
	u.t.Helper()
	if err := u.store.View(func(r *ReadTx) error { fn(r); return nil }); err != nil {
		u.t.Fatal(err)
	}
}

func (u *udFSM) maxPos() int64 { return MaxPosAt(u.index) }

func TestAccountDataPutAndRead(t *testing.T) {
	u := newUDFSM(t)
	u.world()
	start := u.maxPos()
	u.mustApply(OpAccountDataPut, AccountDataPut{UserID: "@alice:t", Type: "m.z", Content: json.RawMessage(`{"a": 1}`)})
	u.mustApply(OpAccountDataPut, AccountDataPut{UserID: "@alice:t", Type: "m.a", Content: json.RawMessage(`{}`)})
	u.mustApply(OpAccountDataPut, AccountDataPut{UserID: "@alice:t", RoomID: "!r:t", Type: "m.tag", Content: json.RawMessage(`{"tags":{}}`)})
	mid := u.maxPos()
	u.mustApply(OpAccountDataPut, AccountDataPut{UserID: "@alice:t", Type: "m.z", Content: json.RawMessage(`{"a":2}`)})

	u.view(func(r *ReadTx) {
		rec, err := r.AccountData("@alice:t", "", "m.z")
		if err != nil || string(rec.Content) != `{"a":2}` || IndexOfPos(rec.Pos) != u.index {
			t.Fatalf("AccountData m.z = %+v, %v", rec, err)
		}
		if _, err := r.AccountData("@alice:t", "", "m.tag"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("room entry visible globally: %v", err)
		}
		if _, err := r.AccountData("@bob:t", "", "m.z"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("alice's data visible to bob: %v", err)
		}
		for _, since := range []int64{0, start} {
			global, rooms := r.AccountDataSince("@alice:t", since)
			if len(global) != 2 || global[0].Type != "m.a" || global[1].Type != "m.z" || string(global[1].Content) != `{"a":2}` {
				t.Fatalf("since %d: global = %+v", since, global)
			}
			if len(rooms) != 1 || len(rooms["!r:t"]) != 1 || rooms["!r:t"][0].Type != "m.tag" {
				t.Fatalf("since %d: rooms = %+v", since, rooms)
			}
		}
		// After mid only the rewrite of m.z, once (its old index entry is gone).
		global, rooms := r.AccountDataSince("@alice:t", mid)
		if len(global) != 1 || global[0].Type != "m.z" || rooms != nil {
			t.Fatalf("since mid: %+v %+v", global, rooms)
		}
		if g, rm := r.AccountDataSince("@alice:t", u.maxPos()); g != nil || rm != nil {
			t.Fatalf("since now: %+v %+v", g, rm)
		}
	})
}

func TestAccountDataRefusals(t *testing.T) {
	u := newUDFSM(t)
	u.world()
	u.wantRefusal(OpAccountDataPut, AccountDataPut{UserID: "@alice:t", RoomID: "!nope:t", Type: "m.tag", Content: json.RawMessage(`{}`)}, http.StatusNotFound, "M_NOT_FOUND")
	u.wantRefusal(OpAccountDataPut, AccountDataPut{UserID: "@carol:t", RoomID: "!r:t", Type: "m.tag", Content: json.RawMessage(`{}`)}, http.StatusForbidden, "M_FORBIDDEN")
	u.wantRefusal(OpAccountDataPut, AccountDataPut{UserID: "@alice:t", Type: "m.x", Content: json.RawMessage(`[1]`)}, http.StatusBadRequest, "M_BAD_JSON")
	u.wantRefusal(OpAccountDataPut, AccountDataPut{UserID: "@alice:t", Type: "", Content: json.RawMessage(`{}`)}, http.StatusBadRequest, "M_BAD_JSON")
	u.wantRefusal(OpAccountDataPut, AccountDataPut{UserID: "@ghost:t", Type: "m.x", Content: json.RawMessage(`{}`)}, http.StatusNotFound, "M_NOT_FOUND")
}

func TestAccountDataTouchesUser(t *testing.T) {
	u := newUDFSM(t)
	u.world()
	data, _ := Encode(OpAccountDataPut, 1, AccountDataPut{UserID: "@bob:t", Type: "m.x", Content: json.RawMessage(`{}`)})
	touched := u.seed(func(w *WriteTx) error {
		_, err := u.f.applyOne(w, data)
		return err
	})
	if !touched.Users["@bob:t"] || len(touched.Users) != 1 {
		t.Fatalf("touched = %+v", touched)
	}
}

func TestFilterCreateAndRead(t *testing.T) {
	u := newUDFSM(t)
	u.world()
	v := u.mustApply(OpFilterCreate, FilterCreate{UserID: "@alice:t", Filter: json.RawMessage(`{"room": {"timeline": {"limit": 5}}}`)})
	id, ok := v.(string)
	if !ok || id == "" || id[0] == '{' {
		t.Fatalf("filter id = %#v", v)
	}
	u.view(func(r *ReadTx) {
		f, err := r.Filter("@alice:t", id)
		if err != nil || string(f) != `{"room":{"timeline":{"limit":5}}}` {
			t.Fatalf("Filter = %s, %v", f, err)
		}
		if _, err := r.Filter("@bob:t", id); !errors.Is(err, ErrNotFound) {
			t.Fatalf("bob reads alice's filter: %v", err)
		}
		if _, err := r.Filter("@alice:t", "999"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown filter: %v", err)
		}
	})
	v2 := u.mustApply(OpFilterCreate, FilterCreate{UserID: "@alice:t", Filter: json.RawMessage(`{}`)})
	if v2 == v {
		t.Fatalf("two filters share id %v", v)
	}
	u.wantRefusal(OpFilterCreate, FilterCreate{UserID: "@alice:t", Filter: json.RawMessage(`"x"`)}, http.StatusBadRequest, "M_BAD_JSON")
	u.wantRefusal(OpFilterCreate, FilterCreate{UserID: "@ghost:t", Filter: json.RawMessage(`{}`)}, http.StatusNotFound, "M_NOT_FOUND")
}
