package fsm

import (
	"bytes"
	"encoding/json"
)

// Reads for the room endpoints (history visibility, /members at a token).

// StateChangeAt is one state log entry with its stream position.
type StateChangeAt struct {
	Pos int64
	StateChange
}

// StateHistory lists, in stream order, every change of the given
// (type, state key) pairs in the room's state log. Entries that cannot
// match are skipped before decoding, so a walk over a large room stays
// cheap.
func (r *ReadTx) StateHistory(roomID string, keys ...[2]string) []StateChangeAt {
	want := make(map[[2]string]bool, len(keys))
	var needles [][]byte
	for _, k := range keys {
		want[k] = true
		// The needle is the type as json.Marshal writes it (it escapes <>&).
		enc, _ := json.Marshal(k[0])
		needles = append(needles, enc)
	}
	var out []StateChangeAt
	pfx := prefix(roomID)
	r.scan(bStateLog, pfx, func(k, v []byte) bool {
		hit := false
		for _, n := range needles {
			if bytes.Contains(v, n) {
				hit = true
				break
			}
		}
		if !hit {
			return true
		}
		var sc StateChange
		if json.Unmarshal(v, &sc) == nil && want[[2]string{sc.Type, sc.StateKey}] {
			out = append(out, StateChangeAt{Pos: int64(getU64(k[len(pfx):])), StateChange: sc})
		}
		return true
	})
	return out
}
