package fsm

import (
	"encoding/json"
	"net/http"
	"strings"
)

// Push rules are stored whole, as the user's global m.push_rules account
// data ({"global": ruleset}), so /sync shows them unchanged. Every change is
// a read-modify-write done inside Apply by OpPushRulesUpdate, so two clients
// editing rules at once never lose each other's change.

// OpPushRulesUpdate applies one change (put, delete, enabled, actions) to a
// user's push rules.
const OpPushRulesUpdate = "push_rules.update"

// PushRulesType is the account-data type holding the rules.
const PushRulesType = "m.push_rules"

// The changes OpPushRulesUpdate knows.
const (
	PushRulePut     = "put"
	PushRuleDelete  = "delete"
	PushRuleEnabled = "enabled"
	PushRuleActions = "actions"
)

// PushRuleKinds lists the rule kinds in the order they are evaluated.
var PushRuleKinds = []string{"override", "content", "room", "sender", "underride"}

// PushRule is one rule as the spec's PushRule schema shows it. Conditions
// and actions stay raw: Apply only moves and replaces rules.
type PushRule struct {
	RuleID     string          `json:"rule_id"`
	Default    bool            `json:"default"`
	Enabled    bool            `json:"enabled"`
	Conditions json.RawMessage `json:"conditions,omitempty"`
	Pattern    *string         `json:"pattern,omitempty"`
	Actions    json.RawMessage `json:"actions"`
}

// PushRuleset is the spec's push_ruleset: one list per kind, by priority.
type PushRuleset struct {
	Override  []PushRule `json:"override"`
	Content   []PushRule `json:"content"`
	Room      []PushRule `json:"room"`
	Sender    []PushRule `json:"sender"`
	Underride []PushRule `json:"underride"`
}

// PushRules is the content of the m.push_rules account data.
type PushRules struct {
	Global PushRuleset `json:"global"`
}

// List is the rules of one kind (nil for an unknown kind).
func (s *PushRuleset) List(kind string) *[]PushRule {
	switch kind {
	case "override":
		return &s.Override
	case "content":
		return &s.Content
	case "room":
		return &s.Room
	case "sender":
		return &s.Sender
	case "underride":
		return &s.Underride
	}
	return nil
}

// Normalize turns absent lists and actions into empty ones, so the JSON
// always has every kind as an array.
func (s *PushRuleset) Normalize() {
	for _, kind := range PushRuleKinds {
		l := s.List(kind)
		if *l == nil {
			*l = []PushRule{}
		}
		for i := range *l {
			if len((*l)[i].Actions) == 0 || string((*l)[i].Actions) == "null" {
				(*l)[i].Actions = json.RawMessage("[]")
			}
		}
	}
}

// Find is the index of ruleID in kind, or -1.
func (s *PushRuleset) Find(kind, ruleID string) int {
	l := s.List(kind)
	if l == nil {
		return -1
	}
	for i, r := range *l {
		if r.RuleID == ruleID {
			return i
		}
	}
	return -1
}

// ParsePushRules decodes m.push_rules content.
func ParsePushRules(raw json.RawMessage) (*PushRules, error) {
	var pr PushRules
	if err := json.Unmarshal(raw, &pr); err != nil {
		return nil, err
	}
	pr.Global.Normalize()
	return &pr, nil
}

// PushRulesUpdate is the payload of OpPushRulesUpdate. Defaults is the
// user's ruleset to start from when none is stored yet; the proposer
// chooses it, so a server upgrade that changes the defaults never changes
// what replaying the log produces.
type PushRulesUpdate struct {
	UserID  string          `json:"user_id"`
	Change  string          `json:"change"`
	Kind    string          `json:"kind"`
	RuleID  string          `json:"rule_id"`
	Rule    *PushRule       `json:"rule,omitempty"` // put: conditions, pattern, actions
	Before  string          `json:"before,omitempty"`
	After   string          `json:"after,omitempty"`
	Enabled bool            `json:"enabled,omitempty"`
	Actions json.RawMessage `json:"actions,omitempty"`

	Defaults json.RawMessage `json:"defaults"`
}

func init() {
	register(OpPushRulesUpdate, applyPushRulesUpdate)
}

func errPushRuleNotFound() *Error { return errNotFound("The push rule was not found.") }

func errInvalidParam(format string, args ...any) *Error {
	return Errorf(http.StatusBadRequest, "M_INVALID_PARAM", format, args...)
}

func applyPushRulesUpdate(w *WriteTx, cmd *Command) (any, error) {
	c, err := decode[PushRulesUpdate](cmd)
	if err != nil {
		return nil, err
	}
	if _, err := w.User(c.UserID); err != nil {
		return nil, errNotFound("unknown user %s", c.UserID)
	}
	current := c.Defaults
	if rec, err := w.AccountData(c.UserID, "", PushRulesType); err == nil {
		current = rec.Content
	}
	rules, err := ParsePushRules(current)
	if err != nil {
		return nil, errBadRequest("stored push rules are malformed: %v", err)
	}
	list := rules.Global.List(c.Kind)
	if list == nil {
		return nil, errInvalidParam("unknown push rule kind %q", c.Kind)
	}
	at := rules.Global.Find(c.Kind, c.RuleID)
	switch c.Change {
	case PushRuleEnabled:
		if at < 0 {
			return nil, errPushRuleNotFound()
		}
		(*list)[at].Enabled = c.Enabled
	case PushRuleActions:
		if at < 0 {
			return nil, errPushRuleNotFound()
		}
		if !isJSONArray(c.Actions) {
			return nil, errBadRequest("actions must be an array")
		}
		(*list)[at].Actions = c.Actions
	case PushRuleDelete:
		if at < 0 {
			return nil, errPushRuleNotFound()
		}
		if (*list)[at].Default {
			return nil, errInvalidParam("cannot delete the server-default rule %s", c.RuleID)
		}
		*list = append((*list)[:at], (*list)[at+1:]...)
	case PushRulePut:
		if err := putPushRule(list, at, c); err != nil {
			return nil, err
		}
	default:
		return nil, errBadRequest("unknown push rule change %q", c.Change)
	}
	content, err := json.Marshal(rules)
	if err != nil {
		return nil, err
	}
	return nil, w.putAccountData(c.UserID, "", PushRulesType, content)
}

// putPushRule creates or replaces a user rule at the place before/after
// ask for: a new rule without them goes first among user rules (after
// .m.rule.master, which always stays first); a replaced rule keeps its place.
func putPushRule(list *[]PushRule, at int, c *PushRulesUpdate) *Error {
	if c.Rule == nil || !isJSONArray(c.Rule.Actions) {
		return errBadRequest("a rule with actions is required")
	}
	if c.RuleID == "" || strings.HasPrefix(c.RuleID, ".") {
		return errInvalidParam("rule IDs starting with '.' are reserved for server-default rules")
	}
	rule := PushRule{RuleID: c.RuleID, Enabled: true, Actions: c.Rule.Actions,
		Conditions: c.Rule.Conditions, Pattern: c.Rule.Pattern}
	if at >= 0 {
		rule.Enabled = (*list)[at].Enabled
		*list = append((*list)[:at], (*list)[at+1:]...)
	}
	pos := at
	switch {
	case c.Before != "" || c.After != "":
		anchor := c.Before
		if anchor == "" {
			anchor = c.After
		}
		i := -1
		for j, r := range *list {
			if r.RuleID == anchor && !r.Default {
				i = j
			}
		}
		if i < 0 {
			return Errorf(http.StatusBadRequest, "M_UNKNOWN", "before/after rule not found: %s", anchor)
		}
		pos = i
		if c.Before == "" {
			pos = i + 1
		}
	case at < 0:
		pos = 0
		for pos < len(*list) && (*list)[pos].RuleID == ".m.rule.master" {
			pos++
		}
	}
	*list = append((*list)[:pos], append([]PushRule{rule}, (*list)[pos:]...)...)
	return nil
}

func isJSONArray(raw json.RawMessage) bool {
	var arr []json.RawMessage
	return json.Unmarshal(raw, &arr) == nil && arr != nil
}
