package clientapi

import (
	"fmt"
	"net/url"
	"testing"
)

// TestBundledAggregations: an event with an edit, a thread reply and a
// reference shows unsigned["m.relations"] on every endpoint the spec lists;
// an edit by another user is ignored.
func TestBundledAggregations(t *testing.T) {
	base := testServer(t)
	alice := newRMUser(t, base, "alice")
	bob := newRMUser(t, base, "bob")
	room := alice.createRoom(map[string]any{"preset": "public_chat"})
	bob.ok("join", "POST", roomPath(room, "/join"), nil)
	root := alice.sendText(room, "root", "zebracake original")
	edit := func(u *rmUser, target, body string) string {
		return exSend(u, room, "m.room.message", map[string]any{"msgtype": "m.text", "body": "* " + body,
			"m.new_content": map[string]any{"msgtype": "m.text", "body": body},
			"m.relates_to":  map[string]any{"rel_type": "m.replace", "event_id": target}})
	}
	aliceEdit := edit(alice, root, "edited by alice")
	edit(bob, root, "edited by bob") // newer, but not the sender's: ignored
	reply := exReply(bob, room, root, "m.thread", "in the thread")
	replyEdit := edit(bob, reply, "reply edited")
	ref := exReply(bob, room, root, "m.reference", "a reference")
	alice.sendText(room, "after", "plain message")

	check := func(where string, ev map[string]any) {
		t.Helper()
		if ev == nil {
			t.Fatalf("%s: root event missing", where)
		}
		rel := syObj(ev, "unsigned", "m.relations")
		if got := syObj(rel, "m.replace"); got["event_id"] != aliceEdit || syObj(got, "content", "m.new_content")["body"] != "edited by alice" {
			t.Errorf("%s: m.replace %v, want alice's edit %s", where, got, aliceEdit)
		}
		thread := syObj(rel, "m.thread")
		latest := syObj(thread, "latest_event")
		if thread["count"] != 1.0 || thread["current_user_participated"] != true || latest["event_id"] != reply {
			t.Errorf("%s: m.thread %v", where, thread)
		}
		if got := syObj(latest, "unsigned", "m.relations", "m.replace")["event_id"]; got != replyEdit {
			t.Errorf("%s: latest_event's own m.replace %v, want %s", where, got, replyEdit)
		}
		chunk := syList(syObj(rel, "m.reference"), "chunk")
		if len(chunk) != 1 || syObj(chunk[0])["event_id"] != ref {
			t.Errorf("%s: m.reference %v", where, syObj(rel, "m.reference"))
		}
	}
	find := func(events []any, id string) map[string]any {
		for _, e := range events {
			if syObj(e)["event_id"] == id {
				return syObj(e)
			}
		}
		return nil
	}

	check("/event", alice.ok("event", "GET", roomPath(room, "/event/"+url.PathEscape(root)), nil))
	msgs := alice.ok("messages", "GET", roomPath(room, "/messages?dir=b&limit=20"), nil)
	check("/messages", find(syList(msgs, "chunk"), root))
	if plain := find(syList(msgs, "chunk"), aliceEdit); syObj(plain, "unsigned")["m.relations"] != nil {
		t.Errorf("an edit has aggregations: %v", plain)
	}
	check("/context", syObj(alice.ok("context", "GET", roomPath(room, "/context/"+url.PathEscape(root)), nil), "event"))

	filter := url.QueryEscape(`{"room":{"timeline":{"limit":7}}}`)
	sync := alice.ok("sync", "GET", "/sync?filter="+filter, nil)
	tl := syObj(syJoined(sync, room), "timeline")
	if tl["limited"] != true {
		t.Fatalf("timeline not limited: %v", tl)
	}
	check("/sync", find(syList(tl, "events"), root))

	search := alice.ok("search", "POST", "/search", map[string]any{"search_categories": map[string]any{
		"room_events": map[string]any{"search_term": "zebracake"}}})
	var results []any
	for _, r := range syList(search, "search_categories", "room_events", "results") {
		results = append(results, syObj(r, "result"))
	}
	check("/search", find(results, root))

	// /relations bundles its children's own aggregations.
	rel := exV1(bob, "relations", "GET", roomPath(room, "/relations/"+url.PathEscape(root)), 200, "")
	if got := syObj(find(syList(rel, "chunk"), reply), "unsigned", "m.relations", "m.replace")["event_id"]; got != replyEdit {
		t.Errorf("/relations: reply's m.replace %v, want %s", got, replyEdit)
	}
	threads := exV1(bob, "threads", "GET", roomPath(room, "/threads"), 200, "")
	check("/threads", find(syList(threads, "chunk"), root))

	// Participation is the viewer's: carol took no part.
	carol := newRMUser(t, base, "carol")
	carol.ok("join", "POST", roomPath(room, "/join"), nil)
	ev := carol.ok("event", "GET", roomPath(room, "/event/"+url.PathEscape(root)), nil)
	if got := syObj(ev, "unsigned", "m.relations", "m.thread")["current_user_participated"]; got != false {
		t.Errorf("carol participated = %v", got)
	}
	if got := fmt.Sprint(syObj(ev, "unsigned", "m.relations", "m.replace")["event_id"]); got != aliceEdit {
		t.Errorf("carol sees m.replace %s", got)
	}
}
