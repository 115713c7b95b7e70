package clientapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/julienschmidt/httprouter"

	"github.com/ganglion/ganglion/fsm"
)

// Push rules API (pushrules.yaml). Reads come from the user's m.push_rules
// account data, or the default ruleset when none is stored; every change is
// one fsm.OpPushRulesUpdate, whose Apply does the read-modify-write.

// userPushRules is the user's current ruleset.
func userPushRules(rt *fsm.ReadTx, userID string) (*fsm.PushRules, error) {
	rec, err := rt.AccountData(userID, "", fsm.PushRulesType)
	if errors.Is(err, fsm.ErrNotFound) {
		return &fsm.PushRules{Global: defaultPushRuleset(userID)}, nil
	}
	if err != nil {
		return nil, err
	}
	return fsm.ParsePushRules(rec.Content)
}

func (a *API) readPushRules(w http.ResponseWriter, userID string) (*fsm.PushRules, bool) {
	var rules *fsm.PushRules
	err := a.store.View(func(rt *fsm.ReadTx) error {
		var err error
		rules, err = userPushRules(rt, userID)
		return err
	})
	if err != nil {
		writeErr(w, err)
		return nil, false
	}
	return rules, true
}

func (a *API) getPushRules(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	if rules, ok := a.readPushRules(w, callerOf(r).UserID); ok {
		// "device" is the long-gone per-device scope; clients and suites
		// written against Synapse still expect the key.
		writeJSON(w, http.StatusOK, map[string]any{"global": rules.Global, "device": struct{}{}})
	}
}

func (a *API) getPushRulesGlobal(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	if rules, ok := a.readPushRules(w, callerOf(r).UserID); ok {
		writeJSON(w, http.StatusOK, rules.Global)
	}
}

// ruleParams checks the path's kind; on failure it writes 400.
func ruleParams(w http.ResponseWriter, p httprouter.Params) (kind, ruleID string, ok bool) {
	kind, ruleID = p.ByName("kind"), p.ByName("ruleId")
	if !slices.Contains(fsm.PushRuleKinds, kind) {
		writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "unknown push rule kind "+kind)
		return "", "", false
	}
	if ruleID == "" {
		writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "rule ID is empty")
		return "", "", false
	}
	return kind, ruleID, true
}

// findRule reads one rule; on failure it writes the error (404 if absent).
func (a *API) findRule(w http.ResponseWriter, r *http.Request, p httprouter.Params) (*fsm.PushRule, bool) {
	kind, ruleID, ok := ruleParams(w, p)
	if !ok {
		return nil, false
	}
	rules, ok := a.readPushRules(w, callerOf(r).UserID)
	if !ok {
		return nil, false
	}
	i := rules.Global.Find(kind, ruleID)
	if i < 0 {
		writeError(w, http.StatusNotFound, "M_NOT_FOUND", "The push rule was not found.")
		return nil, false
	}
	return &(*rules.Global.List(kind))[i], true
}

func (a *API) getPushRule(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	if rule, ok := a.findRule(w, r, p); ok {
		writeJSON(w, http.StatusOK, rule)
	}
}

func (a *API) getPushRuleEnabled(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	if rule, ok := a.findRule(w, r, p); ok {
		writeJSON(w, http.StatusOK, map[string]bool{"enabled": rule.Enabled})
	}
}

func (a *API) getPushRuleActions(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	if rule, ok := a.findRule(w, r, p); ok {
		writeJSON(w, http.StatusOK, map[string]json.RawMessage{"actions": rule.Actions})
	}
}

// proposeRuleChange runs one change through the log and answers {}.
func (a *API) proposeRuleChange(w http.ResponseWriter, r *http.Request, u fsm.PushRulesUpdate) {
	u.UserID = callerOf(r).UserID
	u.Defaults = defaultPushRules(u.UserID)
	if _, ok := a.propose(w, r.Context(), fsm.OpPushRulesUpdate, u); ok {
		writeJSON(w, http.StatusOK, struct{}{})
	}
}

type pushRuleBody struct {
	Actions    json.RawMessage `json:"actions"`
	Conditions json.RawMessage `json:"conditions"`
	Pattern    *string         `json:"pattern"`
}

func (a *API) putPushRule(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	kind, ruleID, ok := ruleParams(w, p)
	if !ok {
		return
	}
	switch {
	case strings.HasPrefix(ruleID, "."):
		writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "rule IDs starting with '.' are reserved for server-default rules")
		return
	case strings.ContainsAny(ruleID, `/\`):
		writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "rule IDs may not contain slashes or backslashes")
		return
	}
	var body pushRuleBody
	if !a.readJSON(w, r, &body) {
		return
	}
	if herr := checkActions(body.Actions); herr != nil {
		writeErr(w, herr)
		return
	}
	rule := &fsm.PushRule{Actions: body.Actions}
	switch kind {
	case "override", "underride":
		if herr := checkConditions(body.Conditions); herr != nil {
			writeErr(w, herr)
			return
		}
		rule.Conditions = body.Conditions
		if len(rule.Conditions) == 0 || string(rule.Conditions) == "null" {
			rule.Conditions = json.RawMessage("[]")
		}
	case "content":
		if body.Pattern == nil {
			writeError(w, http.StatusBadRequest, "M_MISSING_PARAM", "content rules need a pattern")
			return
		}
		rule.Pattern = body.Pattern
	}
	// room and sender rules take their condition from the rule ID.
	q := r.URL.Query()
	a.proposeRuleChange(w, r, fsm.PushRulesUpdate{Change: fsm.PushRulePut, Kind: kind, RuleID: ruleID,
		Rule: rule, Before: q.Get("before"), After: q.Get("after")})
}

func (a *API) deletePushRule(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	kind, ruleID, ok := ruleParams(w, p)
	if !ok {
		return
	}
	a.proposeRuleChange(w, r, fsm.PushRulesUpdate{Change: fsm.PushRuleDelete, Kind: kind, RuleID: ruleID})
}

func (a *API) putPushRuleEnabled(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	kind, ruleID, ok := ruleParams(w, p)
	if !ok {
		return
	}
	var body struct {
		Enabled *bool `json:"enabled"`
	}
	if !a.readJSON(w, r, &body) {
		return
	}
	if body.Enabled == nil {
		writeError(w, http.StatusBadRequest, "M_MISSING_PARAM", "enabled is required")
		return
	}
	a.proposeRuleChange(w, r, fsm.PushRulesUpdate{Change: fsm.PushRuleEnabled, Kind: kind, RuleID: ruleID,
		Enabled: *body.Enabled})
}

func (a *API) putPushRuleActions(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	kind, ruleID, ok := ruleParams(w, p)
	if !ok {
		return
	}
	var body struct {
		Actions json.RawMessage `json:"actions"`
	}
	if !a.readJSON(w, r, &body) {
		return
	}
	if herr := checkActions(body.Actions); herr != nil {
		writeErr(w, herr)
		return
	}
	a.proposeRuleChange(w, r, fsm.PushRulesUpdate{Change: fsm.PushRuleActions, Kind: kind, RuleID: ruleID,
		Actions: body.Actions})
}

// checkActions accepts the spec's actions: "notify", the historical
// "dont_notify" and "coalesce" (kept as sent, ignored when evaluating), and
// {"set_tweak": name, ...} objects.
func checkActions(raw json.RawMessage) *fsm.Error {
	if len(raw) == 0 || string(raw) == "null" {
		return fsm.Errorf(http.StatusBadRequest, "M_MISSING_PARAM", "actions is required")
	}
	var actions []json.RawMessage
	if json.Unmarshal(raw, &actions) != nil {
		return fsm.Errorf(http.StatusBadRequest, "M_BAD_JSON", "actions must be an array")
	}
	for _, act := range actions {
		var name string
		if json.Unmarshal(act, &name) == nil {
			if name != "notify" && name != "dont_notify" && name != "coalesce" {
				return fsm.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", "unrecognised action %q", name)
			}
			continue
		}
		var tweak struct {
			SetTweak *string `json:"set_tweak"`
		}
		if json.Unmarshal(act, &tweak) != nil || tweak.SetTweak == nil {
			return fsm.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", "unrecognised action %s", act)
		}
	}
	return nil
}

// checkConditions wants an array of objects that each name their kind; an
// unknown kind is stored (it never matches, as the spec says). Absent
// conditions are allowed, as pushrules.yaml does not require them (and
// mautrix omits an empty list): such a rule always matches.
func checkConditions(raw json.RawMessage) *fsm.Error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var conds []map[string]json.RawMessage
	if json.Unmarshal(raw, &conds) != nil {
		return fsm.Errorf(http.StatusBadRequest, "M_BAD_JSON", "conditions must be an array of objects")
	}
	for _, c := range conds {
		var kind string
		if c == nil || json.Unmarshal(c["kind"], &kind) != nil || kind == "" {
			return fsm.Errorf(http.StatusBadRequest, "M_MISSING_PARAM", "every condition needs a kind")
		}
	}
	return nil
}
