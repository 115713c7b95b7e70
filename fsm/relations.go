package fsm

import (
	"encoding/json"

	"github.com/tidwall/gjson"
)

// Relations index (spec "Forming relationships between events"): which
// events point at a parent through content.m.relates_to, so /relations and
// /threads read a short key range instead of walking the room's timeline.
//
//	relations:    room \x00 parent \x00 pos(8) -> RelationRecord
//	threads:      room \x00 latest reply pos(8) -> root event ID
//	thread_heads: room \x00 root -> latest reply pos(8)
//
// The index is written by storeEvent in the same Apply, keyed by stream
// positions only, so it is identical on every node.
var (
	bRelations   = []byte("relations")
	bThreads     = []byte("threads")
	bThreadHeads = []byte("thread_heads")
)

// Added here rather than in store.go's list so the index stays in one file;

// RelThread is the rel_type of thread replies.
const RelThread = "m.thread"

// RelationRecord is one child of a parent event.
type RelationRecord struct {
	EventID string `json:"event_id"`
	RelType string `json:"rel_type"`
	Type    string `json:"type"`
	Sender  string `json:"sender"`
}

// relationOf reads content.m.relates_to: both rel_type and event_id must be
// strings, as Synapse requires (a bare m.in_reply_to is not a relation).
func relationOf(content []byte) (parent, relType string, ok bool) {
	rel := gjson.GetBytes(content, `m\.relates_to`)
	p, t := rel.Get("event_id"), rel.Get("rel_type")
	if p.Type != gjson.String || t.Type != gjson.String || p.Str == "" || t.Str == "" {
		return "", "", false
	}
	return p.Str, t.Str, true
}

func relationKey(roomID, parentID string, pos int64) []byte {
	return append(prefix(roomID, parentID), u64(uint64(pos))...)
}

// indexRelation records rec as a child of the event its content relates
// to, and moves the thread to the top of the room's thread list for an
// m.thread reply. It is called from storeEvent once rec.Pos is set.
func (w *WriteTx) indexRelation(rec *EventRecord, content []byte) error {
	if rec.Rejected {
		return nil
	}
	parent, relType, ok := relationOf(content)
	if !ok || parent == rec.EventID {
		return nil
	}
	err := w.putJSON(bRelations, relationKey(rec.RoomID, parent, rec.Pos),
		RelationRecord{EventID: rec.EventID, RelType: relType, Type: rec.Type, Sender: rec.Sender})
	if err != nil || relType != RelThread {
		return err
	}
	headKey := key(rec.RoomID, parent)
	if old := w.get(bThreadHeads, headKey); old != nil {
		if err := w.del(bThreads, append(prefix(rec.RoomID), old...)); err != nil {
			return err
		}
	}
	if err := w.put(bThreads, append(prefix(rec.RoomID), u64(uint64(rec.Pos))...), []byte(parent)); err != nil {
		return err
	}
	return w.put(bThreadHeads, headKey, u64(uint64(rec.Pos)))
}

// unindexRelation drops rec's relation entry; a redaction strips
// m.relates_to, so the redacted event is no longer a child. content is the
// event's content from before the redaction. The thread list keeps its
// order (a later reply moves it again).
func (w *WriteTx) unindexRelation(rec *EventRecord, content []byte) error {
	parent, _, ok := relationOf(content)
	if !ok {
		return nil
	}
	return w.del(bRelations, relationKey(rec.RoomID, parent, rec.Pos))
}

// Relations walks parentID's children in roomID by stream position, with
// boundary semantics: forward yields pos >= from oldest first, backward
// pos < from newest first. It stops when fn returns false.
func (r *ReadTx) Relations(roomID, parentID string, from int64, forward bool, fn func(pos int64, rel RelationRecord) bool) {
	pfx := prefix(roomID, parentID)
	visit := func(k, v []byte) bool {
		var rel RelationRecord
		if json.Unmarshal(v, &rel) != nil {
			return true
		}
		return fn(int64(getU64(k[len(pfx):])), rel)
	}
	if forward {
		r.scanFrom(bRelations, pfx, relationKey(roomID, parentID, max(from, 0)), visit)
		return
	}
	if from <= 0 {
		return
	}
	r.scanBack(bRelations, pfx, relationKey(roomID, parentID, from), visit)
}

// ThreadRoots walks the room's thread roots, most recently replied first,
// whose latest reply is before the boundary (pos < before). It stops when
// fn returns false.
func (r *ReadTx) ThreadRoots(roomID string, before int64, fn func(latestPos int64, rootID string) bool) {
	if before <= 0 {
		return
	}
	pfx := prefix(roomID)
	end := append(append([]byte{}, pfx...), u64(uint64(before))...)
	r.scanBack(bThreads, pfx, end, func(k, v []byte) bool {
		return fn(int64(getU64(k[len(pfx):])), string(v))
	})
}
