package clientapi

import (
	"fmt"
	"net/url"
	"slices"
	"testing"
)

func TestRelations(t *testing.T) {
	base := testServer(t)
	alice := newRMUser(t, base, "alice")
	bob := newRMUser(t, base, "bob")
	room := alice.createRoom(map[string]any{"preset": "private_chat"})
	root := alice.sendText(room, "root", "root")
	var all []string // oldest first
	for i := range 3 {
		all = append(all, exReply(alice, room, root, "m.thread", fmt.Sprint("reply ", i)))
	}
	for _, key := range []string{"👍", "🎉"} {
		all = append(all, exSend(alice, room, "m.reaction", map[string]any{
			"m.relates_to": map[string]any{"rel_type": "m.annotation", "event_id": root, "key": key}}))
	}
	alice.sendText(room, "plain", "not related")
	rel := roomPath(room, "/relations/"+url.PathEscape(root))
	newestFirst := slices.Clone(all)
	slices.Reverse(newestFirst)

	out := exV1(alice, "all children", "GET", rel, 200, "")
	if got := exIDs(out["chunk"]); !slices.Equal(got, newestFirst) || out["next_batch"] != nil {
		t.Fatalf("children %v, want %v (%v)", got, newestFirst, out)
	}
	if got := exIDs(exV1(alice, "threads", "GET", rel+"/m.thread", 200, "")["chunk"]); len(got) != 3 {
		t.Errorf("m.thread children: %v", got)
	}
	if got := exIDs(exV1(alice, "reactions", "GET", rel+"/m.annotation/m.reaction", 200, "")["chunk"]); len(got) != 2 {
		t.Errorf("m.reaction annotations: %v", got)
	}
	if got := exIDs(exV1(alice, "no such type", "GET", rel+"/m.annotation/m.room.message", 200, "")["chunk"]); len(got) != 0 {
		t.Errorf("m.room.message annotations: %v", got)
	}

	// Pages of two, both directions, cover everything once.
	for _, dir := range []string{"b", "f"} {
		var got []string
		from, pages := "", 0
		for pages = 1; pages < 10; pages++ {
			q := "?limit=2&dir=" + dir
			if from != "" {
				q += "&from=" + url.QueryEscape(from)
			}
			out := exV1(alice, "page", "GET", rel+q, 200, "")
			got = append(got, exIDs(out["chunk"])...)
			next, _ := out["next_batch"].(string)
			if next == "" {
				break
			}
			from = next
		}
		want := newestFirst
		if dir == "f" {
			want = all
		}
		if !slices.Equal(got, want) || pages != 3 {
			t.Errorf("dir %s: paged %v in %d pages, want %v", dir, got, pages, want)
		}
	}
	// to stops a backward page at a boundary from an earlier page.
	first := exV1(alice, "first page", "GET", rel+"?limit=2", 200, "")
	out = exV1(alice, "to", "GET", rel+"?from="+url.QueryEscape(first["next_batch"].(string))+"&to="+url.QueryEscape(fmt.Sprint(first["next_batch"])), 200, "")
	if len(syList(out, "chunk")) != 0 {
		t.Errorf("from == to gives %v", out)
	}

	// recurse reaches a reaction to a reply; a redacted child disappears.
	nested := exSend(alice, room, "m.reaction", map[string]any{
		"m.relates_to": map[string]any{"rel_type": "m.annotation", "event_id": all[0], "key": "x"}})
	if got := exIDs(exV1(alice, "direct", "GET", rel, 200, "")["chunk"]); slices.Contains(got, nested) {
		t.Errorf("nested reaction without recurse: %v", got)
	}
	out = exV1(alice, "recurse", "GET", rel+"?recurse=true", 200, "")
	if got := exIDs(out["chunk"]); len(got) != 6 || got[0] != nested || out["recursion_depth"] != 3.0 {
		t.Errorf("recurse: %v", out)
	}
	alice.ok("redact", "PUT", roomPath(room, "/redact/"+url.PathEscape(all[1])+"/rd1"), map[string]any{})
	if got := exIDs(exV1(alice, "after redaction", "GET", rel, 200, "")["chunk"]); slices.Contains(got, all[1]) || len(got) != 4 {
		t.Errorf("redacted child still listed: %v", got)
	}

	exV1(alice, "unknown parent", "GET", roomPath(room, "/relations/$nope"), 404, "M_NOT_FOUND")
	exV1(bob, "not in room", "GET", rel, 404, "M_NOT_FOUND")
	exV1(alice, "bad dir", "GET", rel+"?dir=x", 400, "M_INVALID_PARAM")
	exV1(alice, "bad from", "GET", rel+"?from=zzz", 400, "M_INVALID_PARAM")
	exV1(alice, "bad recurse", "GET", rel+"?recurse=maybe", 400, "M_INVALID_PARAM")
}

func TestThreadsList(t *testing.T) {
	base := testServer(t)
	alice := newRMUser(t, base, "alice")
	bob := newRMUser(t, base, "bob")
	carol := newRMUser(t, base, "carol")
	room := alice.createRoom(map[string]any{"preset": "public_chat"})
	bob.ok("join", "POST", roomPath(room, "/join"), nil)
	root1 := alice.sendText(room, "r1", "first thread")
	root2 := bob.sendText(room, "r2", "second thread")
	alice.sendText(room, "r3", "no thread")
	exReply(alice, room, root1, "m.thread", "alice in 1")
	latest2 := exReply(bob, room, root2, "m.thread", "bob in 2")
	threads := roomPath(room, "/threads")

	out := exV1(alice, "threads", "GET", threads, 200, "")
	if got := exIDs(out["chunk"]); !slices.Equal(got, []string{root2, root1}) {
		t.Fatalf("threads %v, want [%s %s]", got, root2, root1)
	}
	summary := syObj(syList(out, "chunk")[0], "unsigned", "m.relations", "m.thread")
	if summary["count"] != 1.0 || summary["current_user_participated"] != false || syObj(summary, "latest_event")["event_id"] != latest2 {
		t.Errorf("root2 summary for alice: %v", summary)
	}
	if got := exIDs(exV1(alice, "participated", "GET", threads+"?include=participated", 200, "")["chunk"]); !slices.Equal(got, []string{root1}) {
		t.Errorf("alice participated in %v", got)
	}

	// A new reply moves its thread to the top; pages of one.
	exReply(bob, room, root1, "m.thread", "bob in 1")
	var got []string
	from := ""
	for range 5 {
		q := "?limit=1"
		if from != "" {
			q += "&from=" + url.QueryEscape(from)
		}
		out := exV1(alice, "page", "GET", threads+q, 200, "")
		got = append(got, exIDs(out["chunk"])...)
		next, _ := out["next_batch"].(string)
		if next == "" {
			break
		}
		from = next
	}
	if !slices.Equal(got, []string{root1, root2}) {
		t.Errorf("paged threads %v", got)
	}

	exV1(alice, "bad include", "GET", threads+"?include=some", 400, "M_INVALID_PARAM")
	exV1(alice, "zero limit", "GET", threads+"?limit=0", 400, "M_INVALID_PARAM")
	exV1(alice, "bad from", "GET", threads+"?from=zzz", 400, "M_INVALID_PARAM")
	exV1(carol, "not in room", "GET", threads, 403, "M_FORBIDDEN")
}
