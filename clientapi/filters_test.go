package clientapi

import (
	"net/url"
	"testing"
)

func TestFiltersHTTP(t *testing.T) {
	base := testServer(t)
	alice, aliceTok := registerUser(t, base, "alice")
	bob, bobTok := registerUser(t, base, "bob")
	filterURL := func(user string) string { return base + "/_matrix/client/v3/user/" + url.PathEscape(user) + "/filter" }

	filter := map[string]any{
		"room":         map[string]any{"timeline": map[string]any{"limit": 10, "types": []string{"m.room.message"}}, "include_leave": true},
		"presence":     map[string]any{"not_senders": []string{"@x:y"}},
		"event_format": "client",
		"x.custom":     "kept",
	}
	s, out := call(t, "POST", filterURL(alice), aliceTok, filter)
	id, _ := out["filter_id"].(string)
	if s != 200 || id == "" || id[0] == '{' {
		t.Fatalf("create: %d %v", s, out)
	}
	s, out = call(t, "GET", filterURL(alice)+"/"+id, aliceTok, nil)
	if s != 200 || out["event_format"] != "client" || out["x.custom"] != "kept" {
		t.Fatalf("get: %d %v", s, out)
	}
	room, _ := out["room"].(map[string]any)
	if tl, _ := room["timeline"].(map[string]any); tl["limit"] != float64(10) {
		t.Fatalf("get room: %v", room)
	}

	s, out = call(t, "GET", filterURL(alice)+"/"+id, bobTok, nil)
	wantErr(t, "get other's", s, out, 403, "M_FORBIDDEN")
	s, out = call(t, "GET", filterURL(bob)+"/"+id, bobTok, nil)
	wantErr(t, "get someone else's id", s, out, 404, "M_NOT_FOUND")
	s, out = call(t, "GET", filterURL(alice)+"/99999", aliceTok, nil)
	wantErr(t, "unknown", s, out, 404, "M_NOT_FOUND")
	s, out = call(t, "POST", filterURL(alice), bobTok, map[string]any{})
	wantErr(t, "create for other", s, out, 403, "M_FORBIDDEN")

	for name, bad := range map[string]any{
		"array":             []any{},
		"presence string":   map[string]any{"presence": "not_an_object"},
		"timeline string":   map[string]any{"room": map[string]any{"timeline": "x"}},
		"limit string":      map[string]any{"room": map[string]any{"timeline": map[string]any{"limit": "ten"}}},
		"rooms not list":    map[string]any{"room": map[string]any{"rooms": "!a:b"}},
		"types of numbers":  map[string]any{"account_data": map[string]any{"types": []int{1}}},
		"lazy not bool":     map[string]any{"room": map[string]any{"state": map[string]any{"lazy_load_members": "yes"}}},
		"bad event_format":  map[string]any{"event_format": "xml"},
		"event_fields list": map[string]any{"event_fields": "content"},
	} {
		s, out = call(t, "POST", filterURL(alice), aliceTok, bad)
		wantErr(t, name, s, out, 400, "M_BAD_JSON")
	}
}
