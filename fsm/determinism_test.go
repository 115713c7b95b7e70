package fsm

import (
	"bytes"
	"runtime"
	"slices"
	"testing"

	"maunium.net/go/mautrix/crypto/canonicaljson"
)

// TestApplyIsDeterministic applies the scripted history (every op it can
// build: accounts, a room with a redaction of a PDU signed by several
// servers, receipts, account data, filters, push rules, pushers, e2ee keys
// and claims, cross-signing, key backup, to-device with "*", OpenID, media)
// to fresh stores, with different batch sizes and GOMAXPROCS, and requires
// the same state hash and the same results every time (invariant 2).
func TestApplyIsDeterministic(t *testing.T) {
	script, _ := worldScript(t)
	data := encodeScript(t, script)

	var wantHash string
	var wantResults []string
	run := 0
	for _, procs := range []int{1, 2, runtime.NumCPU()} {
		prev := runtime.GOMAXPROCS(procs)
		for _, batch := range []int{1, 7, len(data)} {
			for rep := 0; rep < 2; rep++ {
				f := newWorldFSM(t, t.TempDir())
				results := applyScript(t, f, script, data, batch)
				hash, err := f.Store().StateHash()
				if err != nil {
					t.Fatal(err)
				}
				if run == 0 {
					wantHash, wantResults = hash, results
				} else {
					if hash != wantHash {
						t.Fatalf("GOMAXPROCS=%d batch=%d run %d: state hash %s, want %s", procs, batch, rep, hash, wantHash)
					}
					if !slices.Equal(results, wantResults) {
						for i := range results {
							if results[i] != wantResults[i] {
								t.Fatalf("GOMAXPROCS=%d batch=%d: entry %d (%s) result %s, want %s", procs, batch, i+1, script[i].op, results[i], wantResults[i])
							}
						}
					}
				}
				run++
			}
		}
		runtime.GOMAXPROCS(prev)
	}
}

// TestRedactedPDUIsStoredCanonically: a redaction re-encodes its target.
// encoding/json/v2 writes a map (the PDU's signatures) in random order, so
// nodes used to store different bytes for the same redacted event.
func TestRedactedPDUIsStoredCanonically(t *testing.T) {
	script, ids := worldScript(t)
	data := encodeScript(t, script)
	var first []byte
	for i := 0; i < 8; i++ {
		f := newWorldFSM(t, t.TempDir())
		applyScript(t, f, script, data, len(data))
		var stored []byte
		_ = f.Store().View(func(r *ReadTx) error {
			ev, err := r.Event(string(ids["m1"]))
			if err != nil {
				t.Fatal(err)
			}
			if ev.RedactedBecause != string(ids["red"]) {
				t.Fatalf("m1 not redacted: %+v", ev)
			}
			stored = append([]byte{}, ev.PDU...)
			return nil
		})
		canon, err := canonicaljson.CanonicalJSON(stored)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(canon, stored) {
			t.Fatalf("redacted PDU is not canonical JSON:\n%s", stored)
		}
		if !bytes.Contains(stored, []byte(`"fourth.example"`)) || bytes.Contains(stored, []byte(`"hello"`)) {
			t.Fatalf("redacted PDU lost its signatures or kept its content: %s", stored)
		}
		if first == nil {
			first = stored
		} else if !bytes.Equal(first, stored) {
			t.Fatalf("run %d stored other bytes:\n%s\nwant\n%s", i, stored, first)
		}
	}
}

// TestScriptCoversEveryOp keeps the determinism script honest: a new op
// must be added to it (or listed here with the reason it cannot be).
func TestScriptCoversEveryOp(t *testing.T) {
	script, _ := worldScript(t)
	covered := map[string]bool{}
	for _, c := range script {
		covered[c.op] = true
	}
	for _, op := range Ops() {
		if isTestOp(op) {
			continue
		}
		if !covered[op] {
			t.Errorf("op %s is not in worldScript", op)
		}
	}
}

func isTestOp(op string) bool { return len(op) > 5 && op[:5] == "test." }
