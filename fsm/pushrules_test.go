package fsm

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// testPushDefaults is a small stand-in for the server's default ruleset.
const testPushDefaults = `{"global":{
	"override":[{"rule_id":".m.rule.master","default":true,"enabled":false,"conditions":[],"actions":[]},
		{"rule_id":".m.rule.suppress_notices","default":true,"enabled":true,"conditions":[{"kind":"event_match","key":"content.msgtype","pattern":"m.notice"}],"actions":[]}],
	"content":[],"room":[],"sender":[],
	"underride":[{"rule_id":".m.rule.message","default":true,"enabled":true,"conditions":[{"kind":"event_match","key":"type","pattern":"m.room.message"}],"actions":["notify"]}]}}`

func pushUpdate(change, kind, ruleID string) PushRulesUpdate {
	return PushRulesUpdate{UserID: "@alice:t", Change: change, Kind: kind, RuleID: ruleID,
		Defaults: json.RawMessage(testPushDefaults)}
}

func putRule(kind, ruleID, before, after string) PushRulesUpdate {
	u := pushUpdate(PushRulePut, kind, ruleID)
	u.Rule = &PushRule{Actions: json.RawMessage(`["notify"]`), Conditions: json.RawMessage(`[]`)}
	u.Before, u.After = before, after
	return u
}

func (u *udFSM) pushRules(userID string) *PushRules {
	u.t.Helper()
	var pr *PushRules
	u.view(func(r *ReadTx) {
		rec, err := r.AccountData(userID, "", PushRulesType)
		if err != nil {
			u.t.Fatalf("no stored push rules: %v", err)
		}
		if pr, err = ParsePushRules(rec.Content); err != nil {
			u.t.Fatal(err)
		}
	})
	return pr
}

func ruleIDs(rules []PushRule) string {
	ids := make([]string, len(rules))
	for i, r := range rules {
		ids[i] = r.RuleID
	}
	return strings.Join(ids, ",")
}

func TestPushRulesPutOrdering(t *testing.T) {
	u := newUDFSM(t)
	u.world()
	steps := []struct {
		put  PushRulesUpdate
		want string
	}{
		{putRule("override", "a", "", ""), ".m.rule.master,a,.m.rule.suppress_notices"},
		{putRule("override", "b", "", ""), ".m.rule.master,b,a,.m.rule.suppress_notices"},
		{putRule("override", "c", "", "a"), ".m.rule.master,b,a,c,.m.rule.suppress_notices"},
		{putRule("override", "d", "a", ""), ".m.rule.master,b,d,a,c,.m.rule.suppress_notices"},
		{putRule("override", "a", "", ""), ".m.rule.master,b,d,a,c,.m.rule.suppress_notices"},     // replace keeps place
		{putRule("override", "a", "b", ""), ".m.rule.master,a,b,d,c,.m.rule.suppress_notices"},    // move
		{putRule("override", "e", "c", "b"), ".m.rule.master,a,b,d,e,c,.m.rule.suppress_notices"}, // before wins
		{putRule("underride", "u", "", ""), ".m.rule.master,a,b,d,e,c,.m.rule.suppress_notices"},
	}
	for i, s := range steps {
		u.mustApply(OpPushRulesUpdate, s.put)
		if got := ruleIDs(u.pushRules("@alice:t").Global.Override); got != s.want {
			t.Fatalf("step %d: override = %s, want %s", i, got, s.want)
		}
	}
	if got := ruleIDs(u.pushRules("@alice:t").Global.Underride); got != "u,.m.rule.message" {
		t.Fatalf("underride = %s", got)
	}
}

func TestPushRulesChanges(t *testing.T) {
	u := newUDFSM(t)
	u.world()
	u.mustApply(OpPushRulesUpdate, putRule("room", "!r:t", "", ""))
	dis := pushUpdate(PushRuleEnabled, "room", "!r:t")
	u.mustApply(OpPushRulesUpdate, dis)
	// Replacing a disabled rule keeps it disabled; only creation enables.
	u.mustApply(OpPushRulesUpdate, putRule("room", "!r:t", "", ""))
	if r := u.pushRules("@alice:t").Global.Room[0]; r.Enabled || r.Default {
		t.Fatalf("room rule = %+v", r)
	}
	master := pushUpdate(PushRuleEnabled, "override", ".m.rule.master")
	master.Enabled = true
	u.mustApply(OpPushRulesUpdate, master)
	acts := pushUpdate(PushRuleActions, "underride", ".m.rule.message")
	acts.Actions = json.RawMessage(`["dont_notify"]`)
	u.mustApply(OpPushRulesUpdate, acts)
	u.mustApply(OpPushRulesUpdate, pushUpdate(PushRuleDelete, "room", "!r:t"))
	pr := u.pushRules("@alice:t")
	if !pr.Global.Override[0].Enabled || string(pr.Global.Underride[0].Actions) != `["dont_notify"]` || len(pr.Global.Room) != 0 {
		t.Fatalf("rules = %+v", pr.Global)
	}
	// Bob's rules are untouched (still none stored).
	u.view(func(r *ReadTx) {
		if _, err := r.AccountData("@bob:t", "", PushRulesType); err == nil {
			t.Fatal("bob has stored rules")
		}
	})
}

func TestPushRulesRefusals(t *testing.T) {
	u := newUDFSM(t)
	u.world()
	u.mustApply(OpPushRulesUpdate, putRule("content", "mine", "", ""))
	ghost := putRule("room", "!x:t", "", "")
	ghost.UserID = "@ghost:t"
	badActions := pushUpdate(PushRuleActions, "content", "mine")
	badActions.Actions = json.RawMessage(`{}`)
	cases := []struct {
		name    string
		cmd     PushRulesUpdate
		status  int
		errcode string
	}{
		{"unknown user", ghost, http.StatusNotFound, "M_NOT_FOUND"},
		{"unknown kind", putRule("global", "x", "", ""), http.StatusBadRequest, "M_INVALID_PARAM"},
		{"dot rule id", putRule("override", ".m.rule.x", "", ""), http.StatusBadRequest, "M_INVALID_PARAM"},
		{"before unknown", putRule("override", "x", "nope", ""), http.StatusBadRequest, "M_UNKNOWN"},
		{"after default", putRule("override", "x", "", ".m.rule.master"), http.StatusBadRequest, "M_UNKNOWN"},
		{"enable unknown", pushUpdate(PushRuleEnabled, "override", ".not.a.rule"), http.StatusNotFound, "M_NOT_FOUND"},
		{"actions unknown", pushUpdate(PushRuleActions, "sender", "@bob:t"), http.StatusNotFound, "M_NOT_FOUND"},
		{"delete unknown", pushUpdate(PushRuleDelete, "content", "nope"), http.StatusNotFound, "M_NOT_FOUND"},
		{"delete default", pushUpdate(PushRuleDelete, "override", ".m.rule.master"), http.StatusBadRequest, "M_INVALID_PARAM"},
		{"bad actions", badActions, http.StatusBadRequest, "M_BAD_JSON"},
		{"unknown change", pushUpdate("frob", "override", "x"), http.StatusBadRequest, "M_BAD_JSON"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := u.apply(OpPushRulesUpdate, c.cmd)
			wantErrcode(t, err, c.status, c.errcode)
		})
	}
	if got := ruleIDs(u.pushRules("@alice:t").Global.Content); got != "mine" {
		t.Fatalf("content after refusals = %s", got)
	}
}

func TestPushRulesTouchUserAndStream(t *testing.T) {
	u := newUDFSM(t)
	u.world()
	start := u.maxPos()
	u.mustApply(OpPushRulesUpdate, putRule("sender", "@bob:t", "", ""))
	u.view(func(r *ReadTx) {
		global, _ := r.AccountDataSince("@alice:t", start)
		if len(global) != 1 || global[0].Type != PushRulesType {
			t.Fatalf("account data since = %+v", global)
		}
		var content map[string]map[string]json.RawMessage
		if json.Unmarshal(global[0].Content, &content) != nil || content["global"]["content"] == nil {
			t.Fatalf("stored content = %s", global[0].Content)
		}
	})
}
