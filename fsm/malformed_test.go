package fsm

import (
	"encoding/json"
	"errors"
	"sort"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// Malformed input must never panic Apply (every node would crash on the
// same entry, and again after each restart) and must be refused or change
// nothing (invariant 9).

var errRollback = errors.New("rollback")

// worldFSM is an FSM that applied the whole script, for handlers to find
// users, devices, keys, a room and its events.
func worldFSM(t testing.TB) *FSM {
	t.Helper()
	script, _ := worldScript(t)
	f := newWorldFSM(t, t.TempDir())
	applyScript(t, f, script, encodeScript(t, script), 16)
	return f
}

// tryHandler runs op's handler directly (no recover, so a panic fails the
// test) on payload as the next entry, then rolls the transaction back.
func tryHandler(f *FSM, op string, payload []byte) (v any, err error, dirty bool) {
	h := handlers[op]
	_ = f.store.update(func(tx *bolt.Tx) error {
		applied := getU64(tx.Bucket(bMeta).Get(keyAppliedIndex))
		w := &WriteTx{ReadTx: ReadTx{tx: tx}, index: applied + 1, cache: f.cache,
			touched: &Touched{Users: map[string]bool{}, Rooms: map[string]bool{}}}
		v, err = h(w, &Command{Op: op, TS: 1700000001000, Data: payload})
		dirty = w.dirty
		return errRollback
	})
	// What the rolled-back handler read from its own writes may be cached.
	f.cache.clear()
	return v, err, dirty
}

// genericMalformed are payloads no handler can make sense of.
var genericMalformed = []string{
	``, `{}`, `null`, `[]`, `""`, `0`, `-1`, `true`, `{"a":`, `{"user_id":""}`, `{"user_id":null,"room_id":null}`,
	`{"user_id":1,"room_id":[],"device_id":{},"events":"x","messages":[],"device_ids":"x","keys":[],"claims":[],` +
		`"rooms":[],"entries":{},"receipts":{},"pusher":[],"filter":1,"content":[],"data":1,"index":"x","create":"x"}`,
}

// idsMalformed name real users, devices and rooms of the world but carry
// nulls, empty strings, wrong shapes and extreme numbers elsewhere.
var idsMalformed = []string{
	`{"user_id":"@alice:test","index":1e30,"chunks":1e400}`,
	`{"user_id":"@alice:test","device_id":"A1","room_id":"!det:test","type":"","content":null,"events":[null,{},"x",1],` +
		`"messages":{"@alice:test":null,"@bob:test":{"*":null}},"claims":{"@alice:test":null},"rooms":{"!r":null,"":{}},` +
		`"one_time_keys":{"a:b":null,"":{}},"fallback_keys":{"x":null},"device_keys":null,"keys":{"master":null},` +
		`"entries":[null,{}],"receipts":[null,{}],"device_ids":[null,""],"filter":null,"pusher":{"app_id":"","pushkey":""},"rule":null}`,
	`{"user_id":"@alice:test","device_id":"A1","up_to":-9223372036854775808,"expires_ts":9223372036854775807,` +
		`"unused_expires_at":-1,"chunks":-1,"size":-1,"index":-1,"blob":"b","media_id":"m","sha256":"zz"}`,
	`{"user_id":"` + strings.Repeat("@", 40000) + `:test","device_id":"` + strings.Repeat("D", 40000) + `","alias":"#` + strings.Repeat("a", 40000) + `"}`,
	`{"room_id":"!det:test","create":{"version":"bogus","creator":"@x:y"},"events":[{}]}`,
	`{"room_id":"!new:test","create":{"version":"","creator":""},"events":[{"type":"m.room.create","state_key":"","content":null}]}`,
	`{"room_id":"!new:test","create":{"version":"11","creator":"@alice:test","aliases":[""]},"events":[null]}`,
	`{"room_id":"!det:test","events":[{"type":"m.room.redaction","content":{"redacts":5},"sender":"@alice:test","room_id":"!det:test"}]}`,
	`{"room_id":"!det:test","events":[{"type":"m.room.message","prev_events":[null,""],"auth_events":"x","depth":-1}]}`,
	`{"user_id":"@alice:test","change":"put","kind":"room","rule_id":"r","rule":{"actions":null},"defaults":null}`,
	`{"user_id":"@alice:test","change":"put","kind":"override","rule_id":"r","rule":{"actions":[]},"before":".m.rule.master","defaults":{"global":null}}`,
	`{"user_id":"@alice:test","change":"delete","kind":"underride","rule_id":"","defaults":{"global":{"underride":[null]}}}`,
	`{"signer":"@alice:test","entries":[{"target_user":"@alice:test","target_key":"A1","signer_key_id":"k","signature":""}]}`,
	`{"user_id":"@alice:test","version":"999999999999999999999","rooms":{"!r:test":{"s":{"session_data":null}}}}`,
	`{"sender":"@alice:test","type":"m.x","messages":{"@alice:test":{"*":[]}},"txn":{}}`,
	`{"key_id":"ed25519:x","seed":"AAAA"}`,
}

// TestMalformedPayloadsNeverPanic feeds every registered op generic junk
// (refused or changing nothing) and the world's IDs with malformed fields,
// and every field of a valid payload set to null, "", 0, -1, [], {}, a
// huge number and a wrong-typed value (no panic).
func TestMalformedPayloadsNeverPanic(t *testing.T) {
	f := worldFSM(t)
	script, _ := worldScript(t)
	valid := map[string][]json.RawMessage{}
	for _, c := range script {
		raw, err := json.Marshal(c.payload)
		if err != nil {
			t.Fatal(err)
		}
		valid[c.op] = append(valid[c.op], raw)
	}
	for _, op := range Ops() {
		if isTestOp(op) {
			continue
		}
		for _, p := range genericMalformed {
			_, err, dirty := tryHandler(f, op, []byte(p))
			if err == nil && dirty {
				t.Errorf("%s accepted %.80q and wrote", op, p)
			}
		}
		for _, p := range idsMalformed {
			tryHandler(f, op, []byte(p))
		}
		for _, raw := range valid[op] {
			for _, p := range fieldMutations(t, raw) {
				tryHandler(f, op, p)
			}
		}
	}
}

// fieldMutations replaces each top-level field of a JSON object (and each
// field of its nested objects, one level down) with bad values.
func fieldMutations(t testing.TB, raw json.RawMessage) [][]byte {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		t.Fatal(err)
	}
	bad := []string{`null`, `""`, `0`, `-1`, `[]`, `{}`, `1e300`, `9223372036854775807`, `"\u0000"`, `[null]`, `{"":null}`, `true`}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out [][]byte
	for _, k := range keys {
		for _, b := range bad {
			m := map[string]json.RawMessage{}
			for kk, vv := range obj {
				m[kk] = vv
			}
			m[k] = json.RawMessage(b)
			enc, _ := json.Marshal(m)
			out = append(out, enc)
		}
		var inner map[string]json.RawMessage
		if json.Unmarshal(obj[k], &inner) == nil && len(inner) > 0 {
			for _, sub := range fieldMutations(t, obj[k]) {
				m := map[string]json.RawMessage{}
				for kk, vv := range obj {
					m[kk] = vv
				}
				m[k] = sub
				enc, _ := json.Marshal(m)
				out = append(out, enc)
			}
		}
	}
	return out
}

// FuzzApplyCommand: no op may panic on any payload. Plain `go test` runs
// the seed corpus (every op with the script's valid payloads and the
// malformed ones above); `go test -fuzz FuzzApplyCommand ./fsm` explores.
func FuzzApplyCommand(f *testing.F) {
	ops := fuzzOps()
	script, _ := worldScript(f)
	for _, c := range script {
		raw, err := json.Marshal(c.payload)
		if err != nil {
			f.Fatal(err)
		}
		if len(raw) > 4096 {
			continue // keep the corpus small: the media chunk
		}
		f.Add(uint8(sort.SearchStrings(ops, c.op)), raw)
	}
	for i := range ops {
		for _, p := range append(append([]string{}, genericMalformed...), idsMalformed[:2]...) {
			f.Add(uint8(i), []byte(p))
		}
	}
	w := worldFSM(f)
	f.Fuzz(func(t *testing.T, opIndex uint8, payload []byte) {
		op := ops[int(opIndex)%len(ops)]
		_, err, dirty := tryHandler(w, op, payload)
		var fe *Error
		if err != nil && !errors.As(err, &fe) && !dirty {
			// A refusal before any write should be a Matrix error; store
			// errors come from a write (and are rolled back).
			t.Errorf("%s: refusal is not an *Error: %v", op, err)
		}
	})
}

// fuzzOps is the sorted list of real ops.
func fuzzOps() []string {
	var ops []string
	for _, op := range Ops() {
		if !isTestOp(op) {
			ops = append(ops, op)
		}
	}
	return ops
}
