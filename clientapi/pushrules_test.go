package clientapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"
	"maunium.net/go/mautrix/pushrules"
)

func pushRuleURL(base, kind, ruleID string, extra ...string) string {
	u := base + "/_matrix/client/v3/pushrules/global/" + kind + "/" + url.PathEscape(ruleID)
	for _, e := range extra {
		u += "/" + e
	}
	return u
}

// ruleIDsOf lists the rule_ids of one kind of a ruleset from a response.
func ruleIDsOf(t *testing.T, ruleset any, kind string) []string {
	t.Helper()
	rs, ok := ruleset.(map[string]any)
	if !ok {
		t.Fatalf("ruleset is %T", ruleset)
	}
	list, ok := rs[kind].([]any)
	if !ok {
		t.Fatalf("kind %s is %T", kind, rs[kind])
	}
	var ids []string
	for _, r := range list {
		ids = append(ids, fmt.Sprint(r.(map[string]any)["rule_id"]))
	}
	return ids
}

func TestDefaultPushRulesShape(t *testing.T) {
	raw := defaultPushRules("@alice:test.local")
	if !bytes.Equal(raw, defaultPushRules("@alice:test.local")) {
		t.Fatal("defaultPushRules is not deterministic")
	}
	var pr map[string]any
	if err := json.Unmarshal(raw, &pr); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"override": ".m.rule.master,.m.rule.suppress_notices,.m.rule.invite_for_me,.m.rule.member_event," +
			".m.rule.is_user_mention,.m.rule.is_room_mention,.m.rule.tombstone,.m.rule.reaction," +
			".m.rule.room.server_acl,.m.rule.suppress_edits",
		"content": "", "room": "", "sender": "",
		"underride": ".m.rule.call,.m.rule.encrypted_room_one_to_one,.m.rule.room_one_to_one,.m.rule.message,.m.rule.encrypted",
	}
	for kind, ids := range want {
		if got := strings.Join(ruleIDsOf(t, pr["global"], kind), ","); got != ids {
			t.Errorf("%s = %s, want %s", kind, got, ids)
		}
	}
	s := string(raw)
	for _, frag := range []string{
		`"key":"state_key","kind":"event_match","pattern":"@alice:test.local"`,
		`"key":"content.m\\.mentions.user_ids","kind":"event_property_contains","value":"@alice:test.local"`,
		`"rule_id":".m.rule.master","default":true,"enabled":false,"conditions":[],"actions":[]`,
		`"actions":["notify",{"set_tweak":"sound","value":"ring"}]`,
	} {
		if !strings.Contains(s, frag) {
			t.Errorf("defaults lack %s", frag)
		}
	}
}

func TestPushRulesGet(t *testing.T) {
	base := testServer(t)
	user, tok := registerUser(t, base, "pr_get")
	status, out := call(t, "GET", base+"/_matrix/client/v3/pushrules/", tok, nil)
	wantOK(t, "GET /pushrules/", status, out)
	if ids := ruleIDsOf(t, out["global"], "override"); len(ids) != 10 || ids[0] != ".m.rule.master" {
		t.Fatalf("override ids = %v", ids)
	}
	status, global := call(t, "GET", base+"/_matrix/client/v3/pushrules/global/", tok, nil)
	wantOK(t, "GET /pushrules/global/", status, global)
	if len(ruleIDsOf(t, global, "underride")) != 5 || len(ruleIDsOf(t, global, "content")) != 0 {
		t.Fatalf("global = %v", global)
	}
	status, rule := call(t, "GET", pushRuleURL(base, "override", ".m.rule.invite_for_me"), tok, nil)
	wantOK(t, "GET rule", status, rule)
	if rule["default"] != true || rule["enabled"] != true || !strings.Contains(fmt.Sprint(rule["conditions"]), user) {
		t.Fatalf("invite_for_me = %v", rule)
	}
	status, out = call(t, "GET", pushRuleURL(base, "override", ".m.rule.master", "enabled"), tok, nil)
	if status != 200 || out["enabled"] != false {
		t.Fatalf("master enabled = %d %v", status, out)
	}
	status, out = call(t, "GET", pushRuleURL(base, "underride", ".m.rule.message", "actions"), tok, nil)
	if status != 200 || fmt.Sprint(out["actions"]) != "[notify]" {
		t.Fatalf("message actions = %d %v", status, out)
	}
}

func TestPushRulesErrors(t *testing.T) {
	base := testServer(t)
	_, tok := registerUser(t, base, "pr_err")
	cases := []struct {
		name, method, url string
		body              any
		status            int
		errcode           string
	}{
		{"get unknown rule", "GET", pushRuleURL(base, "override", "not_a_rule_id"), nil, 404, "M_NOT_FOUND"},
		{"get bad kind", "GET", pushRuleURL(base, "frob", "x"), nil, 400, "M_INVALID_PARAM"},
		{"put bad kind", "PUT", pushRuleURL(base, "frob", "x"), map[string]any{"actions": []any{}}, 400, "M_INVALID_PARAM"},
		{"put dot id", "PUT", pushRuleURL(base, "override", ".mine"), map[string]any{"actions": []any{}, "conditions": []any{}}, 400, "M_INVALID_PARAM"},
		{"put backslash", "PUT", pushRuleURL(base, "room", `#fo\o:example.com`), map[string]any{"actions": []any{}}, 400, "M_INVALID_PARAM"},
		{"put no actions", "PUT", pushRuleURL(base, "room", "!r:x"), map[string]any{}, 400, "M_MISSING_PARAM"},
		{"put bad action", "PUT", pushRuleURL(base, "room", "!r:x"), map[string]any{"actions": []any{"not_an_action"}}, 400, "M_INVALID_PARAM"},
		{"put actions not list", "PUT", pushRuleURL(base, "room", "!r:x"), map[string]any{"actions": "notify"}, 400, "M_BAD_JSON"},
		{"conditions not list", "PUT", pushRuleURL(base, "override", "my_id"), map[string]any{"actions": []any{}, "conditions": map[string]any{}}, 400, "M_BAD_JSON"},
		{"condition no kind", "PUT", pushRuleURL(base, "underride", "my_id"), map[string]any{"actions": []any{}, "conditions": []any{map[string]any{}}}, 400, "M_MISSING_PARAM"},
		{"content no pattern", "PUT", pushRuleURL(base, "content", "my_id"), map[string]any{"actions": []any{}}, 400, "M_MISSING_PARAM"},
		{"not json", "PUT", pushRuleURL(base, "room", "!r:x"), "{nope", 400, "M_NOT_JSON"},
		{"before unknown", "PUT", pushRuleURL(base, "room", "!r:x") + "?before=nope", map[string]any{"actions": []any{}}, 400, "M_UNKNOWN"},
		{"after default", "PUT", pushRuleURL(base, "override", "x") + "?after=.m.rule.master", map[string]any{"actions": []any{}, "conditions": []any{}}, 400, "M_UNKNOWN"},
		{"delete unknown", "DELETE", pushRuleURL(base, "room", "!nope:x"), nil, 404, "M_NOT_FOUND"},
		{"delete default", "DELETE", pushRuleURL(base, "override", ".m.rule.master"), nil, 400, "M_INVALID_PARAM"},
		{"enable unknown default", "PUT", pushRuleURL(base, "override", ".not.a.default.rule", "enabled"), map[string]any{"enabled": true}, 404, "M_NOT_FOUND"},
		{"enabled not bool", "PUT", pushRuleURL(base, "override", ".m.rule.master", "enabled"), map[string]any{"enabled": "yes"}, 400, "M_BAD_JSON"},
		{"enabled missing", "PUT", pushRuleURL(base, "override", ".m.rule.master", "enabled"), map[string]any{}, 400, "M_MISSING_PARAM"},
		{"actions unknown rule", "PUT", pushRuleURL(base, "sender", "@bob:example.com", "actions"), map[string]any{"actions": []any{"notify"}}, 404, "M_NOT_FOUND"},
		{"get enabled unknown", "GET", pushRuleURL(base, "room", "!nope:x", "enabled"), nil, 404, "M_NOT_FOUND"},
		{"get actions unknown", "GET", pushRuleURL(base, "room", "!nope:x", "actions"), nil, 404, "M_NOT_FOUND"},
		{"no token", "GET", base + "/_matrix/client/v3/pushrules/", nil, 401, "M_MISSING_TOKEN"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			token := tok
			if c.errcode == "M_MISSING_TOKEN" {
				token = ""
			}
			status, out := call(t, c.method, c.url, token, c.body)
			wantErr(t, c.name, status, out, c.status, c.errcode)
		})
	}
}

func TestPushRulesEditFlow(t *testing.T) {
	base := testServer(t)
	user, tok := registerUser(t, base, "pr_edit")
	put := func(kind, id, query string, body map[string]any) {
		t.Helper()
		status, out := call(t, "PUT", pushRuleURL(base, kind, id)+query, tok, body)
		wantOK(t, "PUT "+kind+"/"+id+query, status, out)
	}
	notify := map[string]any{"actions": []any{"notify"}}
	put("room", "#a:example.com", "", notify)
	put("room", "#b:example.com", "", notify)
	put("room", "#c:example.com", "?after="+url.QueryEscape("#a:example.com"), notify)
	put("room", "#d:example.com", "?before="+url.QueryEscape("#b:example.com"), notify)
	put("content", "cake", "", map[string]any{"pattern": "cake*lie", "actions": []any{"notify"}})
	put("override", "beer", "", map[string]any{"actions": []any{"notify"}, "conditions": []any{
		map[string]any{"kind": "event_match", "key": "content.body", "pattern": "beer"}}})
	status, global := call(t, "GET", base+"/_matrix/client/v3/pushrules/global/", tok, nil)
	wantOK(t, "GET global", status, global)
	if got := strings.Join(ruleIDsOf(t, global, "room"), ","); got != "#d:example.com,#b:example.com,#a:example.com,#c:example.com" {
		t.Fatalf("room order = %s", got)
	}
	if got := ruleIDsOf(t, global, "override"); got[0] != ".m.rule.master" || got[1] != "beer" {
		t.Fatalf("override order = %v", got)
	}
	status, rule := call(t, "GET", pushRuleURL(base, "content", "cake"), tok, nil)
	if status != 200 || rule["pattern"] != "cake*lie" || rule["default"] != false || rule["enabled"] != true || rule["conditions"] != nil {
		t.Fatalf("content rule = %d %v", status, rule)
	}
	status, rule = call(t, "GET", pushRuleURL(base, "room", "#a:example.com"), tok, nil)
	if status != 200 || rule["conditions"] != nil || rule["pattern"] != nil {
		t.Fatalf("room rule = %d %v", status, rule)
	}

	// Defaults may be disabled and have their actions changed.
	status, out := call(t, "PUT", pushRuleURL(base, "underride", ".m.rule.message", "enabled"), tok, map[string]any{"enabled": false})
	wantOK(t, "disable default", status, out)
	status, out = call(t, "PUT", pushRuleURL(base, "underride", ".m.rule.message", "actions"), tok, map[string]any{"actions": []any{"dont_notify"}})
	wantOK(t, "default actions", status, out)
	status, rule = call(t, "GET", pushRuleURL(base, "underride", ".m.rule.message"), tok, nil)
	if status != 200 || rule["enabled"] != false || fmt.Sprint(rule["actions"]) != "[dont_notify]" {
		t.Fatalf("message rule = %d %v", status, rule)
	}

	status, out = call(t, "DELETE", pushRuleURL(base, "room", "#b:example.com"), tok, nil)
	wantOK(t, "DELETE", status, out)
	status, out = call(t, "GET", pushRuleURL(base, "room", "#b:example.com"), tok, nil)
	wantErr(t, "GET deleted", status, out, 404, "M_NOT_FOUND")

	// The stored ruleset is the user's m.push_rules account data.
	status, ad := call(t, "GET", base+"/_matrix/client/v3/user/"+url.PathEscape(user)+"/account_data/m.push_rules", tok, nil)
	wantOK(t, "account data", status, ad)
	if got := strings.Join(ruleIDsOf(t, ad["global"], "room"), ","); got != "#d:example.com,#a:example.com,#c:example.com" {
		t.Fatalf("account data rooms = %s", got)
	}
}

func TestPushRulesConcurrentPuts(t *testing.T) {
	base := testServer(t)
	_, tok := registerUser(t, base, "pr_race")
	const n = 12
	var wg sync.WaitGroup
	errs := make(chan string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := fmt.Sprintf("!room%02d:example.com", i)
			status, out := call(t, "PUT", pushRuleURL(base, "room", req), tok, map[string]any{"actions": []any{"notify"}})
			if status != 200 {
				errs <- fmt.Sprintf("%s: %d %v", req, status, out)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	status, global := call(t, "GET", base+"/_matrix/client/v3/pushrules/global/", tok, nil)
	wantOK(t, "GET global", status, global)
	if ids := ruleIDsOf(t, global, "room"); len(ids) != n {
		t.Fatalf("kept %d of %d concurrent rules: %v", len(ids), n, ids)
	}
}

// mautrix's client reads the rules as a real client would.
func TestPushRulesMautrixClient(t *testing.T) {
	base := testServer(t)
	user, tok := registerUser(t, base, "pr_mautrix")
	cli, err := mautrix.NewClient(base, id.UserID(user), tok)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := cli.GetPushRules(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(rs.Override) != 10 || len(rs.Underride) != 5 || rs.Override[0].RuleID != ".m.rule.master" || rs.Override[0].Enabled {
		t.Fatalf("mautrix ruleset = %+v", rs)
	}
	if err := cli.PutPushRule(t.Context(), "global", pushrules.RoomRule, "!quiet:example.com", &mautrix.ReqPutPushRule{
		Actions: []*pushrules.PushAction{},
	}); err != nil {
		t.Fatal(err)
	}
	if rs, err = cli.GetPushRules(t.Context()); err != nil || rs.Room.Map["!quiet:example.com"] == nil {
		t.Fatalf("after PutPushRule: %+v %v", rs, err)
	}
}

func TestPushRuleOverrideWithoutConditions(t *testing.T) {
	base := testServer(t)
	_, tok := registerUser(t, base, "pr_nocond")
	status, out := call(t, "PUT", pushRuleURL(base, "override", "all"), tok, map[string]any{"actions": []any{}})
	wantOK(t, "PUT without conditions", status, out)
	status, rule := call(t, "GET", pushRuleURL(base, "override", "all"), tok, nil)
	if status != 200 || fmt.Sprint(rule["conditions"]) != "[]" {
		t.Fatalf("rule = %d %v", status, rule)
	}
}
