package clientapi

import (
	"fmt"
	"strings"
	"testing"
)

func pusherBody(appID, pushkey string, extra map[string]any) map[string]any {
	b := map[string]any{
		"kind": "http", "app_id": appID, "pushkey": pushkey, "app_display_name": "App",
		"device_display_name": "Phone", "profile_tag": "tag", "lang": "en",
		"data": map[string]any{"url": "https://gw.example/_matrix/push/v1/notify", "format": "event_id_only", "custom": "x"},
	}
	for k, v := range extra {
		b[k] = v
	}
	return b
}

func listPushers(t *testing.T, base, tok string) []map[string]any {
	t.Helper()
	status, out := call(t, "GET", base+"/_matrix/client/v3/pushers", tok, nil)
	wantOK(t, "GET /pushers", status, out)
	list, ok := out["pushers"].([]any)
	if !ok {
		t.Fatalf("pushers = %v", out)
	}
	var ps []map[string]any
	for _, p := range list {
		ps = append(ps, p.(map[string]any))
	}
	return ps
}

func pusherSummary(ps []map[string]any) string {
	var out []string
	for _, p := range ps {
		out = append(out, fmt.Sprintf("%v/%v/%v", p["app_id"], p["pushkey"], p["device_display_name"]))
	}
	return strings.Join(out, ",")
}

func TestPushersSetListDelete(t *testing.T) {
	base := testServer(t)
	_, alice := registerUser(t, base, "pu_alice")
	_, bob := registerUser(t, base, "pu_bob")
	set := func(tok string, body map[string]any) {
		t.Helper()
		status, out := call(t, "POST", base+"/_matrix/client/v3/pushers/set", tok, body)
		wantOK(t, "set pusher", status, out)
	}
	if ps := listPushers(t, base, alice); len(ps) != 0 {
		t.Fatalf("new user has pushers %v", ps)
	}
	set(alice, pusherBody("com.example.app", "key1", nil))
	ps := listPushers(t, base, alice)
	if len(ps) != 1 {
		t.Fatalf("pushers = %v", ps)
	}
	p := ps[0]
	data, _ := p["data"].(map[string]any)
	if p["kind"] != "http" || p["profile_tag"] != "tag" || p["lang"] != "en" || p["app_display_name"] != "App" ||
		data["custom"] != "x" || data["format"] != "event_id_only" || p["device_id"] != nil || p["ts"] != nil {
		t.Fatalf("pusher = %v", p)
	}

	// Modify in place.
	set(alice, pusherBody("com.example.app", "key1", map[string]any{"device_display_name": "Tablet"}))
	if got := pusherSummary(listPushers(t, base, alice)); got != "com.example.app/key1/Tablet" {
		t.Fatalf("after modify = %s", got)
	}
	// append=true keeps alice's; append=false (the default) takes it.
	set(bob, pusherBody("com.example.app", "key1", map[string]any{"append": true}))
	if a, b := len(listPushers(t, base, alice)), len(listPushers(t, base, bob)); a != 1 || b != 1 {
		t.Fatalf("append=true: alice %d bob %d", a, b)
	}
	set(bob, pusherBody("com.example.app", "key1", map[string]any{"append": false}))
	if a, b := len(listPushers(t, base, alice)), len(listPushers(t, base, bob)); a != 0 || b != 1 {
		t.Fatalf("append=false: alice %d bob %d", a, b)
	}
	// kind null deletes; only app_id and pushkey are needed.
	set(bob, map[string]any{"kind": nil, "app_id": "com.example.app", "pushkey": "key1"})
	set(bob, map[string]any{"kind": nil, "app_id": "com.example.app", "pushkey": "key1"})
	if ps := listPushers(t, base, bob); len(ps) != 0 {
		t.Fatalf("after delete = %v", ps)
	}
}

func TestPushersErrors(t *testing.T) {
	base := testServer(t)
	_, tok := registerUser(t, base, "pu_err")
	without := func(field string) map[string]any {
		b := pusherBody("app", "k", nil)
		delete(b, field)
		return b
	}
	cases := []struct {
		name    string
		body    any
		errcode string
	}{
		{"no kind", without("kind"), "M_MISSING_PARAM"},
		{"no app_id", without("app_id"), "M_MISSING_PARAM"},
		{"no pushkey", without("pushkey"), "M_MISSING_PARAM"},
		{"no lang", without("lang"), "M_MISSING_PARAM"},
		{"no data", without("data"), "M_MISSING_PARAM"},
		{"no app_display_name", without("app_display_name"), "M_MISSING_PARAM"},
		{"no device_display_name", without("device_display_name"), "M_MISSING_PARAM"},
		{"delete without pushkey", map[string]any{"kind": nil, "app_id": "app"}, "M_MISSING_PARAM"},
		{"no url", pusherBody("app", "k", map[string]any{"data": map[string]any{}}), "M_MISSING_PARAM"},
		{"bad url path", pusherBody("app", "k", map[string]any{"data": map[string]any{"url": "https://gw.example/notify"}}), "M_INVALID_PARAM"},
		{"relative url", pusherBody("app", "k", map[string]any{"data": map[string]any{"url": "/_matrix/push/v1/notify"}}), "M_INVALID_PARAM"},
		{"unknown kind", pusherBody("app", "k", map[string]any{"kind": "carrier_pigeon"}), "M_INVALID_PARAM"},
		{"long pushkey", pusherBody("app", strings.Repeat("k", 513), nil), "M_INVALID_PARAM"},
		{"long app_id", pusherBody(strings.Repeat("a", 65), "k", nil), "M_INVALID_PARAM"},
		{"data not object", pusherBody("app", "k", map[string]any{"data": "x"}), "M_BAD_JSON"},
		{"lang not string", pusherBody("app", "k", map[string]any{"lang": 5}), "M_BAD_JSON"},
		{"append not bool", pusherBody("app", "k", map[string]any{"append": "yes"}), "M_BAD_JSON"},
		{"not json", "{", "M_NOT_JSON"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, out := call(t, "POST", base+"/_matrix/client/v3/pushers/set", tok, c.body)
			wantErr(t, c.name, status, out, 400, c.errcode)
		})
	}
	if ps := listPushers(t, base, tok); len(ps) != 0 {
		t.Fatalf("refused sets stored %v", ps)
	}
}
