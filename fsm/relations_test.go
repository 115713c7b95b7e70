package fsm

import (
	"encoding/json"
	"slices"
	"testing"
)

func TestRelationsIndex(t *testing.T) {
	u := newUDFSM(t)
	store := func(id, evType, sender, content string) *EventRecord {
		var rec *EventRecord
		u.seed(func(w *WriteTx) error {
			rec = &EventRecord{EventID: id, RoomID: "!r:t", Type: evType, Sender: sender, Pos: w.NextPos()}
			return w.indexRelation(rec, []byte(content))
		})
		return rec
	}
	thread := func(root string) string {
		raw, _ := json.Marshal(map[string]any{"m.relates_to": map[string]any{"rel_type": RelThread, "event_id": root}})
		return string(raw)
	}
	store("$root1", "m.room.message", "@a:t", `{"body":"root"}`)
	store("$root2", "m.room.message", "@b:t", `{"body":"root"}`)
	store("$t1", "m.room.message", "@a:t", thread("$root1"))
	store("$t2", "m.room.message", "@b:t", thread("$root2"))
	react := store("$x1", "m.reaction", "@b:t", `{"m.relates_to":{"rel_type":"m.annotation","event_id":"$root1","key":"y"}}`)
	store("$reply", "m.room.message", "@b:t", `{"m.relates_to":{"m.in_reply_to":{"event_id":"$root1"}}}`)
	store("$bad", "m.room.message", "@b:t", `{"m.relates_to":{"rel_type":7,"event_id":"$root1"}}`)
	store("$t3", "m.room.message", "@b:t", thread("$root1"))

	children := func(parent string, from int64, forward bool) (ids []string, types []string) {
		u.view(func(r *ReadTx) {
			r.Relations("!r:t", parent, from, forward, func(_ int64, rel RelationRecord) bool {
				ids = append(ids, rel.EventID)
				types = append(types, rel.RelType)
				return true
			})
		})
		return ids, types
	}
	ids, types := children("$root1", 0, true)
	if !slices.Equal(ids, []string{"$t1", "$x1", "$t3"}) || !slices.Equal(types, []string{RelThread, "m.annotation", RelThread}) {
		t.Fatalf("children of root1 forward: %v %v", ids, types)
	}
	if ids, _ := children("$root1", react.Pos, false); !slices.Equal(ids, []string{"$t1"}) {
		t.Errorf("backward before the reaction: %v", ids)
	}
	if ids, _ := children("$root1", react.Pos, true); !slices.Equal(ids, []string{"$x1", "$t3"}) {
		t.Errorf("forward from the reaction: %v", ids)
	}

	// The latest reply orders the thread list: root1 ($t3) before root2 ($t2).
	var roots []string
	u.view(func(r *ReadTx) {
		r.ThreadRoots("!r:t", 1<<62, func(_ int64, root string) bool { roots = append(roots, root); return true })
	})
	if !slices.Equal(roots, []string{"$root1", "$root2"}) {
		t.Errorf("thread roots %v", roots)
	}

	// A redacted child leaves the index.
	u.seed(func(w *WriteTx) error {
		return w.unindexRelation(react, []byte(`{"m.relates_to":{"rel_type":"m.annotation","event_id":"$root1","key":"y"}}`))
	})
	if ids, _ := children("$root1", 0, true); !slices.Equal(ids, []string{"$t1", "$t3"}) {
		t.Errorf("after unindex: %v", ids)
	}
}
