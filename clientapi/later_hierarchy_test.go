package clientapi

import (
	"fmt"
	"net/url"
	"reflect"
	"testing"
	"time"
)

// laterHierarchy fetches one page of a room's hierarchy.
func laterHierarchy(t *testing.T, base, token, root string, q url.Values) ([]string, map[string]any) {
	t.Helper()
	u := base + "/_matrix/client/v1/rooms/" + url.PathEscape(root) + "/hierarchy?" + q.Encode()
	out := laterDo(t, "GET", u, token, nil)
	rooms, _ := out["rooms"].([]any)
	ids := []string{}
	for _, r := range rooms {
		ids = append(ids, fmt.Sprint(r.(map[string]any)["room_id"]))
	}
	return ids, out
}

// childKeys lists "parent>child" for every children_state entry.
func childKeys(out map[string]any) []string {
	keys := []string{}
	for _, r := range out["rooms"].([]any) {
		room := r.(map[string]any)
		for _, c := range room["children_state"].([]any) {
			ev := c.(map[string]any)
			if ev["type"] != "m.space.child" || ev["origin_server_ts"] == nil || ev["sender"] == nil {
				panic(fmt.Sprintf("bad child event %v", ev))
			}
			keys = append(keys, fmt.Sprint(room["room_id"], ">", ev["state_key"]))
		}
	}
	return keys
}

// A two-level space:
//
//	root (space)
//	├── r1
//	├── ss1 (space, suggested)
//	│   ├── r2
//	│   └── hidden (invite-only, bob not in it)
//	└── r3 (not a space, so its own child link to r4 is ignored)
func TestSpaceHierarchy(t *testing.T) {
	base := testServer(t)
	_, alice := registerUser(t, base, "alice")
	_, bob := registerUser(t, base, "bob")
	space := map[string]any{"type": "m.space"}
	root := laterCreateRoom(t, base, alice, map[string]any{"preset": "public_chat", "name": "Root", "creation_content": space})
	r1 := laterCreateRoom(t, base, alice, map[string]any{"preset": "public_chat", "name": "R1"})
	ss1 := laterCreateRoom(t, base, alice, map[string]any{"preset": "public_chat", "name": "SS1", "topic": "sub", "creation_content": space})
	r2 := laterCreateRoom(t, base, alice, map[string]any{"preset": "public_chat", "name": "R2"})
	hidden := laterCreateRoom(t, base, alice, map[string]any{"preset": "private_chat", "name": "Hidden"})
	r3 := laterCreateRoom(t, base, alice, map[string]any{"preset": "public_chat", "name": "R3"})
	r4 := laterCreateRoom(t, base, alice, map[string]any{"preset": "public_chat", "name": "R4"})
	link := func(parent, child string, extra map[string]any) {
		content := map[string]any{"via": []string{"test.local"}}
		for k, v := range extra {
			content[k] = v
		}
		laterPutState(t, base, alice, parent, "m.space.child", child, content)
		time.Sleep(2 * time.Millisecond) // distinct origin_server_ts: they order children
	}
	link(root, r1, nil)
	link(root, ss1, map[string]any{"suggested": true})
	link(root, r3, nil)
	link(ss1, hidden, nil)
	link(ss1, r2, map[string]any{"order": "a"}) // an order key puts it first
	link(r3, r4, nil)

	ids, out := laterHierarchy(t, base, alice, root, nil)
	if want := []string{root, r1, ss1, r2, hidden, r3}; !reflect.DeepEqual(ids, want) {
		t.Fatalf("alice's walk %v, want %v", ids, want)
	}
	if _, more := out["next_batch"]; more {
		t.Fatalf("next_batch on the only page: %v", out)
	}
	wantLinks := []string{root + ">" + r1, root + ">" + ss1, root + ">" + r3, ss1 + ">" + r2, ss1 + ">" + hidden}
	if got := childKeys(out); !reflect.DeepEqual(got, wantLinks) {
		t.Fatalf("children_state %v, want %v", got, wantLinks)
	}
	first := out["rooms"].([]any)[0].(map[string]any)
	if first["name"] != "Root" || first["room_type"] != "m.space" || first["join_rule"] != "public" ||
		first["num_joined_members"] != float64(1) || first["world_readable"] != false || first["guest_can_join"] != false {
		t.Fatalf("root chunk %v", first)
	}

	// bob joined nothing: public rooms show, the invite-only one does not.
	ids, _ = laterHierarchy(t, base, bob, root, nil)
	if want := []string{root, r1, ss1, r2, r3}; !reflect.DeepEqual(ids, want) {
		t.Fatalf("bob's walk %v, want %v", ids, want)
	}

	// Pagination: two rooms a page, the token carrying the walk position.
	var pages []string
	q := url.Values{"limit": {"2"}}
	for i := 0; i < 5; i++ {
		ids, out := laterHierarchy(t, base, alice, root, q)
		pages = append(pages, ids...)
		next, ok := out["next_batch"].(string)
		if !ok {
			break
		}
		q = url.Values{"limit": {"2"}, "from": {next}}
	}
	if want := []string{root, r1, ss1, r2, hidden, r3}; !reflect.DeepEqual(pages, want) {
		t.Fatalf("paginated walk %v, want %v", pages, want)
	}

	ids, _ = laterHierarchy(t, base, alice, root, url.Values{"max_depth": {"1"}})
	if want := []string{root, r1, ss1, r3}; !reflect.DeepEqual(ids, want) {
		t.Fatalf("max_depth=1 walk %v", ids)
	}
	ids, out = laterHierarchy(t, base, alice, root, url.Values{"suggested_only": {"true"}})
	if want := []string{root, ss1}; !reflect.DeepEqual(ids, want) {
		t.Fatalf("suggested_only walk %v", ids)
	}
	if got := childKeys(out); !reflect.DeepEqual(got, []string{root + ">" + ss1}) {
		t.Fatalf("suggested_only children_state %v", got)
	}

	// Removing a link (content without via) drops the subtree.
	laterPutState(t, base, alice, root, "m.space.child", ss1, map[string]any{})
	ids, _ = laterHierarchy(t, base, alice, root, nil)
	if want := []string{root, r1, r3}; !reflect.DeepEqual(ids, want) {
		t.Fatalf("walk after unlinking %v", ids)
	}
}

func TestSpaceHierarchyErrors(t *testing.T) {
	base := testServer(t)
	_, alice := registerUser(t, base, "alice")
	_, bob := registerUser(t, base, "bob")
	private := laterCreateRoom(t, base, alice, map[string]any{"preset": "private_chat",
		"creation_content": map[string]any{"type": "m.space"}})
	u := func(room, query string) string {
		return base + "/_matrix/client/v1/rooms/" + url.PathEscape(room) + "/hierarchy" + query
	}
	laterWantErr(t, "GET", u(private, ""), bob, nil, 403, "M_FORBIDDEN")
	laterWantErr(t, "GET", u("!unknown:test.local", ""), alice, nil, 403, "M_FORBIDDEN")
	laterWantErr(t, "GET", u(private, "?limit=0"), alice, nil, 400, "M_INVALID_PARAM")
	laterWantErr(t, "GET", u(private, "?limit=x"), alice, nil, 400, "M_INVALID_PARAM")
	laterWantErr(t, "GET", u(private, "?max_depth=-1"), alice, nil, 400, "M_INVALID_PARAM")
	laterWantErr(t, "GET", u(private, "?suggested_only=maybe"), alice, nil, 400, "M_INVALID_PARAM")
	laterWantErr(t, "GET", u(private, "?from=garbage!"), alice, nil, 400, "M_INVALID_PARAM")
	tok := hierarchyToken{Root: private, Skip: 1, MaxDepth: hierarchyMaxDepth}.encode()
	laterWantErr(t, "GET", u(private, "?suggested_only=true&from="+tok), alice, nil, 400, "M_INVALID_PARAM")
	other := hierarchyToken{Root: "!other:test.local", Skip: 1, MaxDepth: hierarchyMaxDepth}.encode()
	laterWantErr(t, "GET", u(private, "?from="+other), alice, nil, 400, "M_INVALID_PARAM")
	// A valid token past the end is an empty last page.
	out := laterDo(t, "GET", u(private, "?from="+tok), alice, nil)
	if rooms, _ := out["rooms"].([]any); len(rooms) != 0 || out["next_batch"] != nil {
		t.Fatalf("page past the end %v", out)
	}
}
