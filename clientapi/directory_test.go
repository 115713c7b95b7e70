package clientapi

import (
	"fmt"
	"net/url"
	"sort"
	"testing"
)

func aliasPath(alias string) string { return "/directory/room/" + url.PathEscape(alias) }

func TestRoomAliases(t *testing.T) {
	base := testServer(t)
	alice := newRMUser(t, base, "alice")
	bob := newRMUser(t, base, "bob")
	carol := newRMUser(t, base, "carol")
	room := alice.createRoom(map[string]any{"preset": "public_chat", "room_alias_name": "main"})
	bob.ok("join", "POST", roomPath(room, "/join"), nil)

	bob.ok("bob adds alias", "PUT", aliasPath("#bobs:test.local"), map[string]any{"room_id": room})
	alice.ok("alice adds alias", "PUT", aliasPath("#alices:test.local"), map[string]any{"room_id": room})
	anon := &rmUser{t: t, base: base}
	got := anon.ok("resolve", "GET", aliasPath("#bobs:test.local"), nil)
	if got["room_id"] != room || fmt.Sprint(got["servers"]) != "[test.local]" {
		t.Fatalf("GET alias = %v", got)
	}
	list := bob.ok("aliases", "GET", roomPath(room, "/aliases"), nil)["aliases"].([]any)
	if fmt.Sprint(list) != "[#alices:test.local #bobs:test.local #main:test.local]" {
		t.Fatalf("room aliases = %v", list)
	}

	errs := []struct {
		name, method, path string
		user               *rmUser
		body               any
		status             int
		errcode            string
	}{
		{"exists", "PUT", aliasPath("#bobs:test.local"), alice, map[string]any{"room_id": room}, 409, "M_UNKNOWN"},
		{"remote alias", "PUT", aliasPath("#x:other.org"), alice, map[string]any{"room_id": room}, 400, "M_INVALID_PARAM"},
		{"invalid alias", "PUT", aliasPath("nohash:test.local"), alice, map[string]any{"room_id": room}, 400, "M_INVALID_PARAM"},
		{"no room_id", "PUT", aliasPath("#new:test.local"), alice, map[string]any{}, 400, "M_BAD_JSON"},
		{"bad room_id", "PUT", aliasPath("#new:test.local"), alice, map[string]any{"room_id": "#x:y"}, 400, "M_INVALID_PARAM"},
		{"unknown room", "PUT", aliasPath("#new:test.local"), alice, map[string]any{"room_id": "!nope:test.local"}, 404, "M_NOT_FOUND"},
		{"not a member", "PUT", aliasPath("#new:test.local"), carol, map[string]any{"room_id": room}, 403, "M_FORBIDDEN"},
		{"resolve unknown", "GET", aliasPath("#none:test.local"), anon, nil, 404, "M_NOT_FOUND"},
		{"resolve invalid", "GET", aliasPath("#nocolon"), anon, nil, 400, "M_INVALID_PARAM"},
		{"delete without power", "DELETE", aliasPath("#alices:test.local"), bob, nil, 403, "M_FORBIDDEN"},
		{"delete as outsider", "DELETE", aliasPath("#bobs:test.local"), carol, nil, 403, "M_FORBIDDEN"},
		{"delete unknown", "DELETE", aliasPath("#none:test.local"), alice, nil, 404, "M_NOT_FOUND"},
		{"aliases as outsider", "GET", roomPath(room, "/aliases"), carol, nil, 403, "M_FORBIDDEN"},
	}
	for _, e := range errs {
		e.user.expect(e.name, e.method, e.path, e.body, e.status, e.errcode)
	}
	bob.ok("creator deletes own alias", "DELETE", aliasPath("#bobs:test.local"), nil)
	alice.ok("room admin deletes alias", "DELETE", aliasPath("#main:test.local"), nil)
	alice.expect("deleted", "GET", aliasPath("#main:test.local"), nil, 404, "M_NOT_FOUND")
	list = alice.ok("aliases", "GET", roomPath(room, "/aliases"), nil)["aliases"].([]any)
	if fmt.Sprint(list) != "[#alices:test.local]" {
		t.Fatalf("room aliases after deletes = %v", list)
	}
}

func TestDirectoryVisibility(t *testing.T) {
	base := testServer(t)
	alice := newRMUser(t, base, "alice")
	bob := newRMUser(t, base, "bob")
	room := alice.createRoom(map[string]any{"preset": "public_chat"})
	bob.ok("join", "POST", roomPath(room, "/join"), nil)
	path := "/directory/list/room/" + url.PathEscape(room)
	anon := &rmUser{t: t, base: base}
	if v := anon.ok("get", "GET", path, nil); v["visibility"] != "private" {
		t.Fatalf("visibility = %v, want private", v)
	}
	alice.ok("publish (default public)", "PUT", path, map[string]any{})
	if v := anon.ok("get", "GET", path, nil); v["visibility"] != "public" {
		t.Fatalf("visibility = %v, want public", v)
	}
	alice.ok("unpublish", "PUT", path, map[string]any{"visibility": "private"})
	if v := anon.ok("get", "GET", path, nil); v["visibility"] != "private" {
		t.Fatalf("visibility = %v, want private", v)
	}
	unknown := "/directory/list/room/" + url.PathEscape("!nope:test.local")
	anon.expect("unknown room", "GET", unknown, nil, 404, "M_NOT_FOUND")
	alice.expect("unknown room put", "PUT", unknown, map[string]any{"visibility": "public"}, 404, "M_NOT_FOUND")
	alice.expect("bad value", "PUT", path, map[string]any{"visibility": "hidden"}, 400, "M_INVALID_PARAM")
	bob.expect("no power", "PUT", path, map[string]any{"visibility": "public"}, 403, "M_FORBIDDEN")
	anon.expect("no token", "PUT", path, map[string]any{"visibility": "public"}, 401, "M_MISSING_TOKEN")
}

func TestPublicRooms(t *testing.T) {
	base := testServer(t)
	alice := newRMUser(t, base, "alice")
	bob := newRMUser(t, base, "bob")
	big := alice.createRoom(map[string]any{"visibility": "public", "preset": "public_chat", "name": "Big Room", "topic": "lots of people", "room_alias_name": "big"})
	bob.ok("join", "POST", roomPath(big, "/join"), nil)
	alice.createRoom(map[string]any{"visibility": "public", "name": "Cheese", "topic": "Tasty"})
	alice.createRoom(map[string]any{"visibility": "public", "name": "Wine", "creation_content": map[string]any{"type": "m.space"}})
	alice.createRoom(map[string]any{"visibility": "private", "name": "Secret"})

	anon := &rmUser{t: t, base: base}
	all := anon.ok("list", "GET", "/publicRooms", nil)
	chunk := all["chunk"].([]any)
	if len(chunk) != 3 || all["total_room_count_estimate"] != float64(3) {
		t.Fatalf("publicRooms = %v", all)
	}
	first := chunk[0].(map[string]any)
	want := map[string]any{"room_id": big, "name": "Big Room", "topic": "lots of people", "canonical_alias": "#big:test.local",
		"num_joined_members": float64(2), "world_readable": false, "guest_can_join": false, "join_rule": "public"}
	for k, v := range want {
		if first[k] != v {
			t.Errorf("largest room first: %s = %v, want %v", k, first[k], v)
		}
	}
	// Paging with limit 2: the pages cover every room once.
	page1 := anon.ok("page 1", "GET", "/publicRooms?limit=2", nil)
	next, _ := page1["next_batch"].(string)
	page2 := anon.ok("page 2", "GET", "/publicRooms?limit=2&since="+url.QueryEscape(next), nil)
	if _, more := page2["next_batch"]; more || page2["prev_batch"] == nil {
		t.Errorf("last page tokens: %v", page2)
	}
	var names []string
	for _, p := range []map[string]any{page1, page2} {
		for _, r := range p["chunk"].([]any) {
			names = append(names, fmt.Sprint(r.(map[string]any)["name"]))
		}
	}
	sort.Strings(names)
	if fmt.Sprint(names) != "[Big Room Cheese Wine]" {
		t.Errorf("pages hold %v", names)
	}
	search := []struct {
		filter map[string]any
		want   string
	}{
		{map[string]any{"generic_search_term": "TASTY"}, "[Cheese]"},
		{map[string]any{"generic_search_term": "#big"}, "[Big Room]"},
		{map[string]any{"room_types": []any{"m.space"}}, "[Wine]"},
		{map[string]any{"room_types": []any{nil}}, "[Big Room Cheese]"},
	}
	for _, s := range search {
		out := alice.ok("search", "POST", "/publicRooms", map[string]any{"filter": s.filter})
		var got []string
		for _, r := range out["chunk"].([]any) {
			got = append(got, fmt.Sprint(r.(map[string]any)["name"]))
		}
		sort.Strings(got)
		if fmt.Sprint(got) != s.want {
			t.Errorf("filter %v found %v, want %s", s.filter, got, s.want)
		}
	}
	anon.expect("bad since", "GET", "/publicRooms?since=zzz", nil, 400, "M_INVALID_PARAM")
	anon.expect("bad limit", "GET", "/publicRooms?limit=x", nil, 400, "M_INVALID_PARAM")
	anon.expect("POST needs a token", "POST", "/publicRooms", map[string]any{}, 401, "M_MISSING_TOKEN")
	alice.expect("POST bad JSON", "POST", "/publicRooms", "{", 400, "M_NOT_JSON")
	anon.expect("remote server", "GET", "/publicRooms?server=other.org", nil, 404, "M_NOT_FOUND")
}
