package clientapi

import (
	"encoding/json"
	"testing"
)

func strp(s string) *string { return &s }

func TestEvaluateDefaultRules(t *testing.T) {
	const me = "@me:x"
	rules := defaultPushRules(me)
	group := pushContext{UserID: me, DisplayName: "Me Myself", MemberCount: 5, SenderPower: 0,
		NotifyLevels: map[string]int64{"room": 50}}
	oneToOne := group
	oneToOne.MemberCount = 2
	mod := group
	mod.SenderPower = 50
	msg := func(content string) *ClientEvent {
		return &ClientEvent{Type: "m.room.message", Sender: "@you:x", RoomID: "!r:x", EventID: "$e", Content: json.RawMessage(content)}
	}
	cases := []struct {
		name              string
		ev                *ClientEvent
		ctx               pushContext
		notify, highlight bool
	}{
		{"group message", msg(`{"msgtype":"m.text","body":"hi"}`), group, true, false},
		{"own message", &ClientEvent{Type: "m.room.message", Sender: me, RoomID: "!r:x", Content: json.RawMessage(`{"body":"hi"}`)}, group, false, false},
		{"notice", msg(`{"msgtype":"m.notice","body":"bot"}`), group, false, false},
		{"one to one", msg(`{"msgtype":"m.text","body":"hi"}`), oneToOne, true, false},
		{"user mention", msg(`{"body":"hey","m.mentions":{"user_ids":["@me:x"]}}`), group, true, true},
		{"other mention", msg(`{"body":"hey","m.mentions":{"user_ids":["@other:x"]}}`), group, true, false},
		{"room mention, no power", msg(`{"body":"@room","m.mentions":{"room":true}}`), group, true, false},
		{"room mention, moderator", msg(`{"body":"@room","m.mentions":{"room":true}}`), mod, true, true},
		{"room mention as string", msg(`{"body":"@room","m.mentions":{"room":"true"}}`), mod, true, false},
		{"display name in body (no default rule)", msg(`{"body":"Me Myself, look"}`), group, true, false},
		{"edit", msg(`{"body":"* hi","m.relates_to":{"rel_type":"m.replace","event_id":"$x"}}`), group, false, false},
		{"reaction", &ClientEvent{Type: "m.reaction", Sender: "@you:x", RoomID: "!r:x", Content: json.RawMessage(`{}`)}, group, false, false},
		{"invite for me", &ClientEvent{Type: "m.room.member", StateKey: strp(me), Sender: "@you:x", RoomID: "!r:x", Content: json.RawMessage(`{"membership":"invite"}`)}, group, true, false},
		{"invite for other", &ClientEvent{Type: "m.room.member", StateKey: strp("@z:x"), Sender: "@you:x", RoomID: "!r:x", Content: json.RawMessage(`{"membership":"invite"}`)}, group, false, false},
		{"tombstone", &ClientEvent{Type: "m.room.tombstone", StateKey: strp(""), Sender: "@you:x", RoomID: "!r:x", Content: json.RawMessage(`{}`)}, group, true, true},
		{"call", &ClientEvent{Type: "m.call.invite", Sender: "@you:x", RoomID: "!r:x", Content: json.RawMessage(`{}`)}, group, true, false},
		{"encrypted", &ClientEvent{Type: "m.room.encrypted", Sender: "@you:x", RoomID: "!r:x", Content: json.RawMessage(`{}`)}, group, true, false},
		{"state, no rule", &ClientEvent{Type: "m.room.topic", StateKey: strp(""), Sender: "@you:x", RoomID: "!r:x", Content: json.RawMessage(`{"topic":"t"}`)}, group, false, false},
	}
	for _, c := range cases {
		n, h := evaluatePushRules(rules, c.ev, c.ctx)
		if n != c.notify || h != c.highlight {
			t.Errorf("%s: notify=%v highlight=%v, want %v %v", c.name, n, h, c.notify, c.highlight)
		}
	}
}

// rulesWith is a ruleset with one enabled override rule.
func rulesWith(conditions string) json.RawMessage {
	return json.RawMessage(`{"global":{"override":[{"rule_id":"t","default":false,"enabled":true,
		"conditions":` + conditions + `,"actions":["notify",{"set_tweak":"highlight"}]}]}}`)
}

func TestEvaluateConditions(t *testing.T) {
	ctx := pushContext{UserID: "@me:x", DisplayName: "Ann", MemberCount: 7, SenderPower: 10,
		NotifyLevels: map[string]int64{"room": 50, "low": 5}}
	ev := &ClientEvent{Type: "m.room.message", Sender: "@you:x", RoomID: "!r:x", EventID: "$e",
		Content: json.RawMessage(`{"body":"An example event.","topic":"Lunch plans","n":3,"f":true,"z":null,
			"m.relates_to":{"rel_type":"m.thread"},"a\\b":"bs","list":["#a:x",4,{"x":1},null]}`)}
	cases := []struct {
		conds string
		want  bool
	}{
		{`[]`, true},
		{`[{"kind":"event_match","key":"content.topic","pattern":"lunc?*"}]`, true},
		{`[{"kind":"event_match","key":"content.topic","pattern":"LUNCH PLANS"}]`, true},
		{`[{"kind":"event_match","key":"content.topic","pattern":"lunch"}]`, false},
		{`[{"kind":"event_match","key":"content.topic","pattern":"unch*"}]`, false},
		{`[{"kind":"event_match","key":"content.missing","pattern":"*"}]`, false},
		{`[{"kind":"event_match","key":"content.n","pattern":"*"}]`, false},
		{`[{"kind":"event_match","key":"content.body","pattern":"ex*ple"}]`, true},
		{`[{"kind":"event_match","key":"content.body","pattern":"exam"}]`, false},
		{`[{"kind":"event_match","key":"content.body","pattern":"event"}]`, true},
		{`[{"kind":"event_match","key":"content.body","pattern":"an"}]`, true},
		{`[{"kind":"event_match","key":"type","pattern":"m.room.*"}]`, true},
		{`[{"kind":"event_match","key":"room_id","pattern":"!r:x"}]`, true},
		{`[{"kind":"event_match","key":"content.m\\.relates_to.rel_type","pattern":"m.thread"}]`, true},
		{`[{"kind":"event_match","key":"content.m.relates_to.rel_type","pattern":"m.thread"}]`, false},
		{`[{"kind":"event_match","key":"content.a\\\\b","pattern":"bs"}]`, true},
		{`[{"kind":"event_property_is","key":"content.n","value":3}]`, true},
		{`[{"kind":"event_property_is","key":"content.n","value":"3"}]`, false},
		{`[{"kind":"event_property_is","key":"content.f","value":true}]`, true},
		{`[{"kind":"event_property_is","key":"content.f","value":1}]`, false},
		{`[{"kind":"event_property_is","key":"content.z","value":null}]`, true},
		{`[{"kind":"event_property_is","key":"content.missing","value":null}]`, false},
		{`[{"kind":"event_property_is","key":"content.m\\.relates_to","value":{"rel_type":"m.thread"}}]`, false},
		{`[{"kind":"event_property_contains","key":"content.list","value":"#a:x"}]`, true},
		{`[{"kind":"event_property_contains","key":"content.list","value":4}]`, true},
		{`[{"kind":"event_property_contains","key":"content.list","value":null}]`, true},
		{`[{"kind":"event_property_contains","key":"content.list","value":":x"}]`, false},
		{`[{"kind":"event_property_contains","key":"content.topic","value":"Lunch plans"}]`, false},
		{`[{"kind":"contains_display_name"}]`, false},
		{`[{"kind":"room_member_count","is":"7"}]`, true},
		{`[{"kind":"room_member_count","is":"==7"}]`, true},
		{`[{"kind":"room_member_count","is":"<7"}]`, false},
		{`[{"kind":"room_member_count","is":"<=7"}]`, true},
		{`[{"kind":"room_member_count","is":">6"}]`, true},
		{`[{"kind":"room_member_count","is":">=8"}]`, false},
		{`[{"kind":"room_member_count","is":"seven"}]`, false},
		{`[{"kind":"sender_notification_permission","key":"room"}]`, false},
		{`[{"kind":"sender_notification_permission","key":"low"}]`, true},
		{`[{"kind":"sender_notification_permission","key":"unknown"}]`, false},
		{`[{"kind":"some_future_condition"}]`, false},
		{`[{"kind":"event_match","key":"type","pattern":"m.room.message"},{"kind":"room_member_count","is":"2"}]`, false},
	}
	for _, c := range cases {
		n, h := evaluatePushRules(rulesWith(c.conds), ev, ctx)
		if n != c.want || h != c.want {
			t.Errorf("%s: got %v/%v, want %v", c.conds, n, h, c.want)
		}
	}
	named := *ev
	named.Content = json.RawMessage(`{"body":"hello ann!"}`)
	if n, _ := evaluatePushRules(rulesWith(`[{"kind":"contains_display_name"}]`), &named, ctx); !n {
		t.Error("contains_display_name did not match")
	}
	named.Content = json.RawMessage(`{"body":"hello annie"}`)
	if n, _ := evaluatePushRules(rulesWith(`[{"kind":"contains_display_name"}]`), &named, ctx); n {
		t.Error("contains_display_name matched inside a word")
	}
}

func TestEvaluateKindsAndActions(t *testing.T) {
	ev := &ClientEvent{Type: "m.room.message", Sender: "@spam:x", RoomID: "!r:x", Content: json.RawMessage(`{"body":"I like cake"}`)}
	ctx := pushContext{UserID: "@me:x", MemberCount: 3}
	cases := []struct {
		name              string
		rules             string
		notify, highlight bool
	}{
		{"room rule silences", `{"global":{"room":[{"rule_id":"!r:x","default":false,"enabled":true,"actions":[]}],
			"underride":[{"rule_id":"u","default":false,"enabled":true,"conditions":[],"actions":["notify"]}]}}`, false, false},
		{"disabled room rule", `{"global":{"room":[{"rule_id":"!r:x","default":false,"enabled":false,"actions":[]}],
			"underride":[{"rule_id":"u","default":false,"enabled":true,"conditions":[],"actions":["notify"]}]}}`, true, false},
		{"sender rule", `{"global":{"sender":[{"rule_id":"@spam:x","default":false,"enabled":true,"actions":["dont_notify"]}],
			"underride":[{"rule_id":"u","default":false,"enabled":true,"conditions":[],"actions":["notify"]}]}}`, false, false},
		{"content rule", `{"global":{"content":[{"rule_id":"c","default":false,"enabled":true,"pattern":"CAKE",
			"actions":["notify",{"set_tweak":"highlight","value":true}]}]}}`, true, true},
		{"content rule misses", `{"global":{"content":[{"rule_id":"c","default":false,"enabled":true,"pattern":"cak",
			"actions":["notify"]}]}}`, false, false},
		{"highlight false", `{"global":{"override":[{"rule_id":"o","default":false,"enabled":true,"conditions":[],
			"actions":["notify",{"set_tweak":"highlight","value":false}]}]}}`, true, false},
		{"override beats content", `{"global":{"override":[{"rule_id":"o","default":false,"enabled":true,"conditions":[],"actions":[]}],
			"content":[{"rule_id":"c","default":false,"enabled":true,"pattern":"cake","actions":["notify"]}]}}`, false, false},
		{"no rules", `{"global":{}}`, false, false},
		{"bad json", `{`, false, false},
	}
	for _, c := range cases {
		n, h := evaluatePushRules(json.RawMessage(c.rules), ev, ctx)
		if n != c.notify || h != c.highlight {
			t.Errorf("%s: %v/%v, want %v/%v", c.name, n, h, c.notify, c.highlight)
		}
	}
}

func TestSplitPropertyPath(t *testing.T) {
	cases := map[string][]string{
		`content.body`:           {"content", "body"},
		`content.m\.relates_to`:  {"content", "m.relates_to"},
		`content.m\\foo`:         {"content", `m\foo`},
		`content.m\xfoo`:         {"content", `m\xfoo`},
		`a\\.b`:                  {`a\`, "b"},
		`content.m\.mentions.ok`: {"content", "m.mentions", "ok"},
	}
	for in, want := range cases {
		got := splitPropertyPath(in)
		if len(got) != len(want) {
			t.Fatalf("%s: %q", in, got)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%s: %q, want %q", in, got, want)
			}
		}
	}
}
