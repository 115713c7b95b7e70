package clientapi

import (
	"math"

	"github.com/tidwall/gjson"

	"github.com/ganglion/ganglion/fsm"
)

// Bundled aggregations (client-server spec "Aggregations of child events"):
// unsigned["m.relations"] on the events served by /event, /messages,
// /context, limited /sync timelines, /search, /relations and /threads:
// m.replace (event_replacements.md), m.thread (threading.md) and
// m.reference (reference_relations.md). They are read from the FSM's
// relations index inside the request's read transaction; an event without
// children costs one index seek.

const (
	relReplace    = "m.replace"
	relAnnotation = "m.annotation"
	relReference  = "m.reference"

	// maxAggregationScan bounds the children examined per parent; a thread
	// count past it is approximate, as the spec allows.
	maxAggregationScan = 2000
	// maxBundledReferences bounds m.reference's chunk and
	// maxEditCandidates the edits loaded to find the most recent one.
	maxBundledReferences = 50
	maxEditCandidates    = 50
)

// bundler computes bundled aggregations for one viewer.
type bundler struct {
	rt        *fsm.ReadTx
	viewer    *Caller
	ignored   map[string]bool
	vis       func(roomID string) *roomVisibility
	stripRoom bool // bundled events drop room_id too (/sync)
}

// bundler aggregates for events of the reader's room.
func (rr *roomReader) bundler(viewer *Caller) *bundler {
	return &bundler{rt: rr.rt, viewer: viewer, ignored: rr.ignored,
		vis: func(string) *roomVisibility { return rr.view }}
}

// add sets ev's unsigned["m.relations"] when rec has children to bundle.
func (b *bundler) add(ev *ClientEvent, rec *fsm.EventRecord) {
	b.addDepth(ev, rec, 0)
}

// addAll is add for parallel lists of formatted and stored events.
func (b *bundler) addAll(evs []*ClientEvent, recs []*fsm.EventRecord) {
	for i := range evs {
		b.add(evs[i], recs[i])
	}
}

func (b *bundler) addDepth(ev *ClientEvent, rec *fsm.EventRecord, depth int) {
	if ev == nil {
		return
	}
	if agg := b.relations(rec, depth); agg != nil {
		ev.Unsigned["m.relations"] = agg
	}
}

// relations is rec's aggregation, or nil. depth limits the nesting of a
// thread's latest_event, which carries its own aggregations.
func (b *bundler) relations(rec *fsm.EventRecord, depth int) map[string]any {
	// State events get none (the spec's warning), nor do edits and
	// annotations, which may not be the target of other relations.
	if rec == nil || rec.StateKey != nil || rec.Rejected || !b.hasChildren(rec) {
		return nil
	}
	ownRel := gjson.GetBytes(rec.PDU, `content.m\.relates_to.rel_type`).Str
	if ownRel == relReplace || ownRel == relAnnotation {
		return nil
	}
	var (
		edits, refs  []string
		threadCount  int
		participated = rec.Sender == b.viewer.UserID
		latest       *fsm.EventRecord
		latestTries  int // children loaded looking for a visible latest reply
		examined     int
		threadRoot   = ownRel != fsm.RelThread   // a reply cannot root a thread
		editable     = rec.RedactedBecause == "" // a redacted event bundles no edit
	)
	b.rt.Relations(rec.RoomID, rec.EventID, math.MaxInt64, false, func(_ int64, rel fsm.RelationRecord) bool {
		if examined++; examined > maxAggregationScan {
			return false
		}
		if b.ignored[rel.Sender] {
			return true
		}
		switch rel.RelType {
		case relReplace:
			if editable && rel.Sender == rec.Sender && rel.Type == rec.Type && len(edits) < maxEditCandidates {
				edits = append(edits, rel.EventID)
			}
		case relReference:
			if len(refs) < maxBundledReferences {
				refs = append(refs, rel.EventID)
			}
		case fsm.RelThread:
			if !threadRoot {
				return true
			}
			threadCount++
			participated = participated || rel.Sender == b.viewer.UserID
			if latest == nil && latestTries < maxEditCandidates {
				latestTries++
				latest = b.visibleChild(rec.RoomID, rel.EventID)
			}
		}
		return true
	})
	out := map[string]any{}
	if edit := b.latestEdit(rec, edits); edit != nil {
		out[relReplace] = b.format(edit)
	}
	if threadCount > 0 {
		summary := map[string]any{"count": threadCount, "current_user_participated": participated}
		if latest != nil {
			ev := b.format(latest)
			if depth < 1 {
				b.addDepth(ev, latest, depth+1)
			}
			summary["latest_event"] = ev
		}
		out[fsm.RelThread] = summary
	}
	if chunk := b.references(rec.RoomID, refs); len(chunk) > 0 {
		out[relReference] = map[string]any{"chunk": chunk}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// hasChildren is the cheap check first: one index seek.
func (b *bundler) hasChildren(rec *fsm.EventRecord) bool {
	found := false
	b.rt.Relations(rec.RoomID, rec.EventID, math.MaxInt64, false, func(int64, fsm.RelationRecord) bool {
		found = true
		return false
	})
	return found
}

// visibleChild loads a child the viewer may see, or nil.
func (b *bundler) visibleChild(roomID, eventID string) *fsm.EventRecord {
	rec, err := b.rt.Event(eventID)
	if err != nil || rec.RoomID != roomID || rec.Rejected || rec.RedactedBecause != "" {
		return nil
	}
	if b.vis != nil {
		if v := b.vis(roomID); v != nil && !v.canSee(rec) {
			return nil
		}
	}
	return rec
}

// latestEdit picks the most recent valid replacement among the candidates
// (newest first by stream position): greatest origin_server_ts, then
// greatest event ID (event_replacements.md). Same sender and type were
// checked from the index; a valid edit also has m.new_content and no state
// key.
func (b *bundler) latestEdit(orig *fsm.EventRecord, ids []string) *fsm.EventRecord {
	var best *fsm.EventRecord
	for _, id := range ids {
		e := b.visibleChild(orig.RoomID, id)
		if e == nil || e.StateKey != nil || e.Sender != orig.Sender || e.Type != orig.Type ||
			!gjson.GetBytes(e.PDU, `content.m\.new_content`).IsObject() {
			continue
		}
		if best == nil || e.TS > best.TS || (e.TS == best.TS && e.EventID > best.EventID) {
			best = e
		}
	}
	return best
}

// references lists the visible referencing events, oldest first.
func (b *bundler) references(roomID string, ids []string) []map[string]string {
	var out []map[string]string
	for i := len(ids) - 1; i >= 0; i-- {
		if b.visibleChild(roomID, ids[i]) != nil {
			out = append(out, map[string]string{"event_id": ids[i]})
		}
	}
	return out
}

func (b *bundler) format(rec *fsm.EventRecord) *ClientEvent {
	ev := formatEvent(b.rt, rec, b.viewer)
	if b.stripRoom {
		ev.RoomID = ""
	}
	return ev
}
