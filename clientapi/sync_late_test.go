package clientapi

import (
	"encoding/json"
	"net/url"
	"slices"
	"testing"

	"github.com/ganglion/ganglion/fsm"
)

// lateRoom is alice's public room (v11) that dave of remote.example joined
// over federation; alice then sent two messages. It returns the DAG (with
// dave's join named "dave") for building dave's events.
func lateRoom(t *testing.T, api *API, alice *rmUser) (string, *fedDAG) {
	room := alice.createRoom(map[string]any{"preset": "public_chat", "room_version": string(fedVer)})
	d := newFedDAG(t, room)
	_ = api.store.View(func(rt *fsm.ReadTx) error {
		rr, err := rt.Room(room)
		if err != nil {
			t.Fatal(err)
		}
		for i, e := range rr.Extremities {
			ev, _ := rt.Event(e)
			d.known("ext"+string(rune('0'+i)), e, ev.Depth)
		}
		for _, k := range [][2]string{{"create", "m.room.create"}, {"pl", "m.room.power_levels"}, {"jr", "m.room.join_rules"}} {
			d.known(k[0], rt.StateEventID(room, k[1], ""), 0)
		}
		return nil
	})
	const dave = "@dave:remote.example"
	propose(t, api, fsm.RemoteEventsCmd{RoomID: room, Events: []json.RawMessage{
		d.ev("dave", "m.room.member", strp(dave), dave, map[string]any{"membership": "join"}, []string{"ext0"}, []string{"create", "pl", "jr"}),
	}})
	alice.sendText(room, "late1", "newer 1")
	alice.sendText(room, "late2", "newer 2")
	return room, d
}

// sendLate stores dave's message built on his join, older than alice's
// messages: it arrives late.
func sendLate(t *testing.T, api *API, room string, d *fedDAG) string {
	res := propose(t, api, fsm.RemoteEventsCmd{RoomID: room, Events: []json.RawMessage{
		d.ev("old", "m.room.message", nil, "@dave:remote.example", map[string]any{"msgtype": "m.text", "body": "written long ago"},
			[]string{"dave"}, []string{"create", "pl", "dave"}),
	}})
	if !slices.Contains(res.Accepted, d.ids["old"]) {
		t.Fatalf("late message: %+v", res)
	}
	_ = api.store.View(func(rt *fsm.ReadTx) error {
		if ev, err := rt.Event(d.ids["old"]); err != nil || !ev.Late || ev.After != d.ids["dave"] {
			t.Fatalf("not stored as late after dave's join: %+v", ev)
		}
		return nil
	})
	return d.ids["old"]
}

// lateIn finds the event in a timeline and reports whether it is last.
func lateIn(events []any, eventID string) (ev map[string]any, last bool) {
	for i, e := range events {
		if m := e.(map[string]any); m["event_id"] == eventID {
			return m, i == len(events)-1
		}
	}
	return nil, false
}

func TestLateEventsOptIn(t *testing.T) {
	base, api := testServerAPI(t)
	alice := newRMUser(t, base, "alice")
	room, d := lateRoom(t, api, alice)
	optIn := `{"room":{"timeline":{"org.ganglion.late_events":true}}}`
	since := sySync(t, base, alice.token, "")["next_batch"].(string)
	lateID := sendLate(t, api, room, d)

	// Without the opt-in the late message is never sent; the room did not
	// change otherwise.
	plain := sySync(t, base, alice.token, syQuery("since", since))
	if jr := syJoined(plain, room); jr != nil {
		if ev, _ := lateIn(syList(jr, "timeline", "events"), lateID); ev != nil {
			t.Fatal("late message sent without the opt-in")
		}
	}
	full := sySync(t, base, alice.token, "")
	if ev, _ := lateIn(syList(syJoined(full, room), "timeline", "events"), lateID); ev != nil {
		t.Fatal("late message in an initial sync without the opt-in")
	}

	// With it (inline or stored filter), the incremental sync covering its
	// arrival carries it after the normal events, annotated.
	filterID := alice.ok("filter", "POST", "/user/"+url.PathEscape(alice.id)+"/filter", json.RawMessage(optIn))["filter_id"].(string)
	for _, f := range []string{optIn, filterID} {
		resp := sySync(t, base, alice.token, syQuery("since", since, "filter", f))
		ev, last := lateIn(syList(syJoined(resp, room), "timeline", "events"), lateID)
		if ev == nil || !last {
			t.Fatalf("filter %s: late message missing or not last: %v", f, syJoined(resp, room))
		}
		if after := syObj(ev, "unsigned")[lateAfterKey]; after != d.ids["dave"] {
			t.Errorf("unsigned.%s = %v, want dave's join %s", lateAfterKey, after, d.ids["dave"])
		}
		// The next sync has nothing more to say about it.
		next := sySync(t, base, alice.token, syQuery("since", resp["next_batch"].(string), "filter", f))
		if jr := syJoined(next, room); jr != nil {
			if ev, _ := lateIn(syList(jr, "timeline", "events"), lateID); ev != nil {
				t.Fatal("late message sent twice")
			}
		}
	}
	// An initial sync whose timeline spans its arrival has it too.
	initial := sySync(t, base, alice.token, syQuery("filter", optIn))
	if ev, last := lateIn(syList(syJoined(initial, room), "timeline", "events"), lateID); ev == nil || !last {
		t.Fatal("late message missing from an opted-in initial sync")
	}

	// /messages: only with the opt-in, in arrival order (newest first).
	page := func(filter string) []any {
		q := "?dir=b&limit=5"
		if filter != "" {
			q += "&filter=" + url.QueryEscape(filter)
		}
		return alice.ok("messages", "GET", roomPath(room, "/messages"+q), nil)["chunk"].([]any)
	}
	if ev, _ := lateIn(page(""), lateID); ev != nil {
		t.Fatal("late message in /messages without the opt-in")
	}
	chunk := page(`{"org.ganglion.late_events":true}`)
	if len(chunk) != 5 || chunk[0].(map[string]any)["event_id"] != lateID {
		t.Fatalf("opted-in /messages chunk %v", chunk)
	}
	if after := syObj(chunk[0], "unsigned")[lateAfterKey]; after != d.ids["dave"] {
		t.Errorf("/messages unsigned.%s = %v", lateAfterKey, after)
	}
	alice.expect("bad opt-in", "POST", "/user/"+url.PathEscape(alice.id)+"/filter",
		json.RawMessage(`{"room":{"timeline":{"org.ganglion.late_events":"yes"}}}`), 400, "M_BAD_JSON")
}
