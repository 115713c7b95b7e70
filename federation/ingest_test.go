package federation

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/tidwall/gjson"
	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/id"
)

// TestIngestFetchesMissingPrevEvents: only the newest of a chain is sent;
// the node fetches the rest with get_missing_events and stores them all in
// order.
func TestIngestFetchesMissingPrevEvents(t *testing.T) {
	r := newFedRoom(t)
	chain := r.messageChain(t, 5, nil)
	last := chain[len(chain)-1]
	wantAccepted(t, r.f.send(t, r.n, "gme", []json.RawMessage{r.f.lookup(r.n, last).Raw}), last)
	if r.f.hitCount("get_missing_events") == 0 {
		t.Error("get_missing_events was not called")
	}
	tl := r.n.timeline(r.roomID)
	if i := slices.Index(tl, chain[0]); i < 0 || !slices.Equal(tl[i:], chain) {
		t.Fatalf("timeline %v, want it to end with %v", tl, chain)
	}
}

// TestIngestFillsAGap: a chain longer than get_missing_events fetches is
// stored from the gap on, with the state before the gap from /state_ids.
func TestIngestFillsAGap(t *testing.T) {
	r := newFedRoom(t)
	state := r.currentStateIDs() // messages change no state: the state before each
	chain := r.messageChain(t, gmeLimit*gmeRounds+10, func(evID string) {
		r.f.mu.Lock()
		r.f.stateBefore[evID] = state
		r.f.mu.Unlock()
	})
	last := chain[len(chain)-1]
	wantAccepted(t, r.f.send(t, r.n, "gap", []json.RawMessage{r.f.lookup(r.n, last).Raw}), last)
	if r.f.hitCount("state_ids") == 0 {
		t.Error("state_ids was not called for the gap")
	}
	tl := r.n.timeline(r.roomID)
	if tl[len(tl)-1] != last {
		t.Fatalf("timeline does not end with the sent event: %v", tl[max(len(tl)-3, 0):])
	}
	if r.n.event(r.roomID, chain[0]) != nil {
		t.Error("an event beyond the fetch bound was stored")
	}
	// The room goes on: both sides can build on it.
	r.localSend(t, "m.room.message", nil, `{"msgtype":"m.text","body":"after the gap"}`)
	msg, raw := r.message(t, "after the gap too")
	wantAccepted(t, r.f.send(t, r.n, "after", []json.RawMessage{raw}), msg)
}

// TestIngestFetchesMissingAuthEvents: an event names an auth event the
// node never saw; it is fetched with /event_auth and stored as an outlier.
func TestIngestFetchesMissingAuthEvents(t *testing.T) {
	r := newFedRoom(t)
	// bob changes his display name on a branch the node is not sent.
	rename, _ := r.f.build(t, r.n, r.roomID, evSpec{sender: r.bob, typ: "m.room.member", stateKey: sk(r.bob),
		content: map[string]any{"membership": "join", "displayname": "Bob"}, prev: []string{r.join}})
	msg, raw := r.message(t, "with a new name", func(s *evSpec) {
		s.prev = []string{r.join}
		s.mod = func(p *pdu.PDU) {
			for i, a := range p.AuthEvents {
				if string(a) == r.join {
					p.AuthEvents[i] = id.EventID(rename)
				}
			}
		}
	})
	wantAccepted(t, r.f.send(t, r.n, "auth", []json.RawMessage{raw}), msg)
	if r.f.hitCount("event_auth") == 0 {
		t.Error("event_auth was not called")
	}
	rec := r.n.event(r.roomID, rename)
	if rec == nil || !rec.Outlier {
		t.Fatalf("the missing auth event is %+v, want it stored as an outlier", rec)
	}
}

// TestIngestForkResolvesState: a remote state event built on an older
// event competes with a newer local one; state resolution decides, and
// the loser is not shown as current.
func TestIngestForkResolvesState(t *testing.T) {
	r := newFedRoom(t)
	pl := r.n.stateID(r.roomID, "m.room.power_levels", "")
	plContent := gjson.GetBytes(r.n.event(r.roomID, pl).PDU, "content").Raw
	var levels map[string]any
	_ = json.Unmarshal([]byte(plContent), &levels)
	levels["users"].(map[string]any)[r.bob] = 50
	raised, _ := json.Marshal(levels)
	plID := r.localSend(t, "m.room.power_levels", sk(""), string(raised))
	localTopic := r.localSend(t, "m.room.topic", sk(""), `{"topic":"local"}`)
	localTS := r.n.event(r.roomID, localTopic).TS

	remoteTopic, raw := r.f.build(t, r.n, r.roomID, evSpec{sender: r.bob, typ: "m.room.topic", stateKey: sk(""),
		content: map[string]any{"topic": "remote"}, prev: []string{plID}, ts: localTS - 1000,
		auth: nil})
	res := r.f.send(t, r.n, "fork", []json.RawMessage{raw})
	wantAccepted(t, res, remoteTopic)
	if got := r.n.stateID(r.roomID, "m.room.topic", ""); got != localTopic {
		t.Fatalf("current topic %s, want the local one %s (resolution orders the older remote one first)", got, localTopic)
	}
	if rec := r.n.event(r.roomID, remoteTopic); rec == nil || !rec.Superseded {
		t.Fatalf("remote topic %+v, want it stored as superseded", rec)
	}
	if slices.Contains(r.n.timeline(r.roomID), remoteTopic) {
		t.Error("superseded state entered the live timeline")
	}
	// Local sends build on the merged extremities.
	r.localSend(t, "m.room.message", nil, `{"msgtype":"m.text","body":"after the fork"}`)
}

// TestIngestSoftFailsBanEvasion: bob is banned; a message of his built on
// the DAG before the ban passes its own state but not the current one: it
// is accepted (no error) but never shown.
func TestIngestSoftFailsBanEvasion(t *testing.T) {
	r := newFedRoom(t)
	// Built (prev and auth events) before the ban, sent after it.
	msg, raw := r.message(t, "evading")
	r.localSend(t, "m.room.member", sk(r.bob), `{"membership":"ban"}`)
	wantAccepted(t, r.f.send(t, r.n, "evade", []json.RawMessage{raw}), msg)
	rec := r.n.event(r.roomID, msg)
	if rec == nil || !rec.SoftFailed {
		t.Fatalf("message %+v, want it soft-failed", rec)
	}
	if slices.Contains(r.n.timeline(r.roomID), msg) {
		t.Error("a soft-failed message entered the timeline")
	}
	if got := gjson.GetBytes(r.n.event(r.roomID, r.n.stateID(r.roomID, "m.room.member", r.bob)).PDU, "content.membership").Str; got != "ban" {
		t.Errorf("bob's membership is %q, want ban", got)
	}
}
