package clientapi

import (
	"net/url"
	"slices"
	"testing"
)

// exSearch runs a room_events search and returns the result IDs and the
// room_events object.
func exSearch(u *rmUser, crit map[string]any, nextBatch string) ([]string, map[string]any) {
	u.t.Helper()
	path := "/search"
	if nextBatch != "" {
		path += "?next_batch=" + url.QueryEscape(nextBatch)
	}
	out := u.ok("search", "POST", path, map[string]any{"search_categories": map[string]any{"room_events": crit}})
	re := syObj(out, "search_categories", "room_events")
	var ids []string
	for _, r := range syList(re, "results") {
		ids = append(ids, syObj(r, "result")["event_id"].(string))
	}
	return ids, re
}

func TestSearchRoomEvents(t *testing.T) {
	base := testServer(t)
	alice := newRMUser(t, base, "alice")
	bob := newRMUser(t, base, "bob")
	shared := alice.createRoom(map[string]any{"preset": "public_chat", "name": "Martian Council"})
	bob.ok("join", "POST", roomPath(shared, "/join"), nil)
	m1 := alice.sendText(shared, "s1", "hello Martians")
	alice.sendText(shared, "s2", "nothing to see")
	m3 := bob.sendText(shared, "s3", "of MARTIANS and men and martians")
	secretRoom := alice.createRoom(map[string]any{"preset": "private_chat"})
	secret := alice.sendText(secretRoom, "s4", "secret martians")

	ids, re := exSearch(bob, map[string]any{"search_term": "martians", "keys": []string{"content.body"}}, "")
	if len(ids) != 2 || !slices.Contains(ids, m1) || !slices.Contains(ids, m3) || re["count"] != 2.0 {
		t.Fatalf("bob's search: %v", re)
	}
	if ids[0] != m3 {
		t.Errorf("rank order: %v, want %s (two hits) first", ids, m3)
	}
	if ids, _ := exSearch(bob, map[string]any{"search_term": "secret"}, ""); len(ids) != 0 {
		t.Errorf("bob finds events of a room he is not in: %v", ids)
	}
	if ids, _ := exSearch(bob, map[string]any{"search_term": "martians men"}, ""); !slices.Equal(ids, []string{m3}) {
		t.Errorf("every word must match: %v", ids)
	}
	if ids, _ := exSearch(alice, map[string]any{"search_term": "council", "keys": []string{"content.name"}}, ""); len(ids) != 1 {
		t.Errorf("room name search: %v", ids)
	}

	// alice sees three; pages of one by recency visit them newest first.
	var got []string
	next := ""
	for range 5 {
		ids, re := exSearch(alice, map[string]any{"search_term": "martians", "order_by": "recent",
			"filter": map[string]any{"limit": 1}}, next)
		got = append(got, ids...)
		next, _ = re["next_batch"].(string)
		if next == "" {
			break
		}
	}
	if !slices.Equal(got, []string{secret, m3, m1}) {
		t.Errorf("recent pages: %v", got)
	}
	ids, _ = exSearch(alice, map[string]any{"search_term": "martians", "filter": map[string]any{"rooms": []string{secretRoom}}}, "")
	if !slices.Equal(ids, []string{secret}) {
		t.Errorf("room filter: %v", ids)
	}

	_, re = exSearch(alice, map[string]any{"search_term": "hello", "include_state": true,
		"event_context": map[string]any{"before_limit": 1, "after_limit": 1, "include_profile": true},
		"groupings":     map[string]any{"group_by": []any{map[string]any{"key": "room_id"}}}}, "")
	res := syObj(syList(re, "results")[0])
	ctx := syObj(res, "context")
	if len(syList(ctx, "events_after")) != 1 || len(syList(ctx, "events_before")) != 1 || syObj(ctx, "profile_info", alice.id) == nil {
		t.Errorf("context: %v", ctx)
	}
	if len(syList(re, "state", shared)) == 0 || len(syList(syObj(re, "groups", "room_id", shared), "results")) != 1 {
		t.Errorf("state/groups: %v", re)
	}

	alice.expect("no categories", "POST", "/search", map[string]any{}, 400, "M_BAD_JSON")
	alice.expect("bad order", "POST", "/search", map[string]any{"search_categories": map[string]any{
		"room_events": map[string]any{"search_term": "x", "order_by": "best"}}}, 400, "M_INVALID_PARAM")
	alice.expect("bad key", "POST", "/search", map[string]any{"search_categories": map[string]any{
		"room_events": map[string]any{"search_term": "x", "keys": []string{"content.url"}}}}, 400, "M_INVALID_PARAM")
	alice.expect("bad token", "POST", "/search?next_batch=zzz", map[string]any{"search_categories": map[string]any{
		"room_events": map[string]any{"search_term": "x"}}}, 400, "M_INVALID_PARAM")
}
