package clientapi

import (
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"testing"
)

func TestRoomStateReadWrite(t *testing.T) {
	base := testServer(t)
	alice := newRMUser(t, base, "alice")
	bob := newRMUser(t, base, "bob")
	carol := newRMUser(t, base, "carol")
	room := alice.createRoom(map[string]any{"preset": "public_chat", "name": "First", "room_alias_name": "mine"})
	alice.createRoom(map[string]any{"room_alias_name": "elsewhere"}) // an alias of another room

	status, raw := alice.raw("GET", roomPath(room, "/state"), nil)
	var all []map[string]any
	if status != 200 || json.Unmarshal(raw, &all) != nil {
		t.Fatalf("GET state: %d %s", status, raw)
	}
	types := map[string]bool{}
	for _, ev := range all {
		types[fmt.Sprint(ev["type"])] = ev["event_id"] != nil && ev["state_key"] != nil
	}
	for _, want := range []string{"m.room.create", "m.room.member", "m.room.power_levels", "m.room.join_rules", "m.room.name"} {
		if !types[want] {
			t.Errorf("GET state lacks a complete %s event: %s", want, raw)
		}
	}

	ev := alice.ok("format=event", "GET", roomPath(room, "/state/m.room.name?format=event"), nil)
	if ev["type"] != "m.room.name" || ev["state_key"] != "" || ev["content"].(map[string]any)["name"] != "First" {
		t.Errorf("format=event answered %v", ev)
	}
	topic := alice.ok("put topic", "PUT", roomPath(room, "/state/m.room.topic"), map[string]any{"topic": "hi"})
	if again := alice.ok("same topic", "PUT", roomPath(room, "/state/m.room.topic"), map[string]any{"topic": "hi"}); again["event_id"] != topic["event_id"] {
		t.Errorf("re-sending the same state made a new event: %v then %v", topic, again)
	}
	if got := alice.ok("get topic", "GET", roomPath(room, "/state/m.room.topic"), nil); got["topic"] != "hi" {
		t.Errorf("topic = %v", got)
	}
	put := alice.ok("put keyed", "PUT", roomPath(room, "/state/m.widget/w1"), map[string]any{"url": "x"})
	if id, _ := put["event_id"].(string); len(id) < 2 || id[0] != '$' {
		t.Errorf("PUT state answered %v", put)
	}
	if got := alice.ok("get keyed", "GET", roomPath(room, "/state/m.widget/w1"), nil); got["url"] != "x" {
		t.Errorf("keyed state = %v", got)
	}

	errs := []struct {
		name, method, path string
		user               *rmUser
		body               any
		status             int
		errcode            string
	}{
		{"absent state", "GET", "/state/m.room.avatar", alice, nil, 404, "M_NOT_FOUND"},
		{"absent key", "GET", "/state/m.widget/nope", alice, nil, 404, "M_NOT_FOUND"},
		{"bad format", "GET", "/state/m.room.name?format=xml", alice, nil, 400, "M_INVALID_PARAM"},
		{"array body", "PUT", "/state/m.room.topic", alice, []int{1}, 400, "M_BAD_JSON"},
		{"not JSON", "PUT", "/state/m.room.topic", alice, "{x", 400, "M_NOT_JSON"},
		{"alias syntax", "PUT", "/state/m.room.canonical_alias", alice, map[string]any{"alias": "mine"}, 400, "M_INVALID_PARAM"},
		{"alias elsewhere", "PUT", "/state/m.room.canonical_alias", alice, map[string]any{"alias": "#elsewhere:test.local"}, 400, "M_BAD_ALIAS"},
		{"unmapped alias", "PUT", "/state/m.room.canonical_alias", alice, map[string]any{"alt_aliases": []string{"#ghost:test.local"}}, 400, "M_BAD_ALIAS"},
		{"outsider reads all", "GET", "/state", bob, nil, 403, "M_FORBIDDEN"},
		{"outsider reads one", "GET", "/state/m.room.name", bob, nil, 403, "M_FORBIDDEN"},
		{"outsider writes", "PUT", "/state/m.room.topic", bob, map[string]any{"topic": "x"}, 403, "M_FORBIDDEN"},
		{"unknown room", "GET", "/state", bob, nil, 403, "M_FORBIDDEN"},
	}
	for _, e := range errs {
		r := room
		if e.name == "unknown room" {
			r = "!nope:test.local"
		}
		e.user.expect(e.name, e.method, roomPath(r, e.path), e.body, e.status, e.errcode)
	}
	alice.ok("valid canonical alias", "PUT", roomPath(room, "/state/m.room.canonical_alias"),
		map[string]any{"alias": "#mine:test.local", "alt_aliases": []string{"#remote:elsewhere.org"}})

	// bob joins, cannot rename (power 0), leaves; he then sees the state as
	// of his leaving, not later changes.
	bob.ok("join", "POST", roomPath(room, "/join"), nil)
	bob.expect("rename without power", "PUT", roomPath(room, "/state/m.room.name"), map[string]any{"name": "B"}, 403, "M_FORBIDDEN")
	bob.ok("leave", "POST", roomPath(room, "/leave"), nil)
	alice.ok("rename", "PUT", roomPath(room, "/state/m.room.name"), map[string]any{"name": "Second"})
	if got := bob.ok("name after leaving", "GET", roomPath(room, "/state/m.room.name"), nil); got["name"] != "First" {
		t.Errorf("bob sees name %v after leaving, want First", got["name"])
	}
	if got := alice.ok("name now", "GET", roomPath(room, "/state/m.room.name"), nil); got["name"] != "Second" {
		t.Errorf("alice sees name %v, want Second", got["name"])
	}
	// A world-readable room's state is open to anyone.
	alice.ok("world readable", "PUT", roomPath(room, "/state/m.room.history_visibility"), map[string]any{"history_visibility": "world_readable"})
	if got := carol.ok("peek", "GET", roomPath(room, "/state/m.room.name"), nil); got["name"] != "Second" {
		t.Errorf("carol peeks name %v", got)
	}
}

func TestRoomMembersLists(t *testing.T) {
	base := testServer(t)
	alice := newRMUser(t, base, "alice")
	bob := newRMUser(t, base, "bob")
	carol := newRMUser(t, base, "carol")
	dave := newRMUser(t, base, "dave")
	room := alice.createRoom(map[string]any{"preset": "public_chat"})
	bob.ok("join", "POST", roomPath(room, "/join"), nil)
	mark := bob.sendText(room, "m1", "bob is here")
	at := alice.ok("context", "GET", roomPath(room, "/context/"+url.PathEscape(mark)+"?limit=0"), nil)["end"].(string)
	carol.ok("join", "POST", roomPath(room, "/join"), nil)
	carol.ok("leave", "POST", roomPath(room, "/leave"), nil)
	alice.ok("invite dave", "POST", roomPath(room, "/invite"), map[string]any{"user_id": dave.id})

	members := func(u *rmUser, query string) []string {
		t.Helper()
		out := u.ok("members"+query, "GET", roomPath(room, "/members"+query), nil)
		var got []string
		for _, ev := range out["chunk"].([]any) {
			e := ev.(map[string]any)
			got = append(got, fmt.Sprintf("%s=%s", e["state_key"], e["content"].(map[string]any)["membership"]))
		}
		sort.Strings(got)
		return got
	}
	all := []string{alice.id + "=join", bob.id + "=join", carol.id + "=leave", dave.id + "=invite"}
	sort.Strings(all)
	cases := []struct {
		user  *rmUser
		query string
		want  []string
	}{
		{alice, "", all},
		{alice, "?membership=join", []string{alice.id + "=join", bob.id + "=join"}},
		{alice, "?membership=leave", []string{carol.id + "=leave"}},
		{alice, "?not_membership=join", []string{carol.id + "=leave", dave.id + "=invite"}},
		{alice, "?membership=invite&not_membership=join", []string{carol.id + "=leave", dave.id + "=invite"}},
		{alice, "?at=" + url.QueryEscape(at), []string{alice.id + "=join", bob.id + "=join"}},
		// carol left: she sees the members as of her leaving.
		{carol, "", []string{alice.id + "=join", bob.id + "=join", carol.id + "=leave"}},
	}
	for _, c := range cases {
		if got := members(c.user, c.query); fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("members%s = %v, want %v", c.query, got, c.want)
		}
	}
	joined := alice.ok("joined_members", "GET", roomPath(room, "/joined_members"), nil)["joined"].(map[string]any)
	if len(joined) != 2 || joined[alice.id] == nil || joined[bob.id] == nil {
		t.Errorf("joined_members = %v", joined)
	}
	alice.expect("bad membership", "GET", roomPath(room, "/members?membership=gone"), nil, 400, "M_INVALID_PARAM")
	alice.expect("bad at", "GET", roomPath(room, "/members?at=xyz"), nil, 400, "M_INVALID_PARAM")
	dave.expect("invitee members", "GET", roomPath(room, "/members"), nil, 403, "M_FORBIDDEN")
	carol.expect("former member joined_members", "GET", roomPath(room, "/joined_members"), nil, 403, "M_FORBIDDEN")
	outsider := newRMUser(t, base, "eve")
	outsider.expect("outsider members", "GET", roomPath(room, "/members"), nil, 403, "M_FORBIDDEN")
	outsider.expect("outsider joined_members", "GET", roomPath(room, "/joined_members"), nil, 403, "M_FORBIDDEN")
}

// Clients (mautrix among them) write an empty state key as a trailing
// slash: /state/m.room.name/ (server.go rewrites it onto /state/{type}).
func TestStateEmptyKeyTrailingSlash(t *testing.T) {
	base := testServer(t)
	alice := newRMUser(t, base, "alice")
	room := alice.createRoom(map[string]any{"name": "slash"})
	if got := alice.ok("GET with slash", "GET", roomPath(room, "/state/m.room.name/"), nil); got["name"] != "slash" {
		t.Fatalf("GET state/m.room.name/ = %v", got)
	}
	put := alice.ok("PUT with slash", "PUT", roomPath(room, "/state/m.room.topic/"), map[string]any{"topic": "t"})
	if got := alice.ok("GET without slash", "GET", roomPath(room, "/state/m.room.topic"), nil); got["topic"] != "t" || put["event_id"] == nil {
		t.Fatalf("topic after PUT with trailing slash: %v", got)
	}
}
