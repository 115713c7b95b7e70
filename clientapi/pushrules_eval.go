package clientapi

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/ganglion/ganglion/fsm"
)

// The push rule evaluator (push.md, "Push Rules" and "Conditions"): the
// first enabled rule that matches, in kind order, decides the actions.

// pushContext is what conditions need beyond the event itself.
type pushContext struct {
	UserID       string           // whose rules these are
	DisplayName  string           // the user's display name in the room
	MemberCount  int              // joined members of the room
	SenderPower  int64            // the event sender's power level
	NotifyLevels map[string]int64 // power_levels notifications, "room" defaulting to 50
}

// evaluatePushRules says whether ev notifies the owner of rules (the
// m.push_rules content) and whether it is highlighted. The user's own
// events never notify.
func evaluatePushRules(rules json.RawMessage, ev *ClientEvent, ctx pushContext) (notify bool, highlight bool) {
	pr, err := fsm.ParsePushRules(rules)
	if err != nil || ev.Sender == ctx.UserID {
		return false, false
	}
	actions, ok := matchPushRules(&pr.Global, newPushEvent(ev), &ctx)
	if !ok {
		return false, false
	}
	return actionEffects(actions)
}

// pushEvent is a client event decoded once for property lookups.
type pushEvent struct {
	ev  *ClientEvent
	obj map[string]any
}

func newPushEvent(ev *ClientEvent) pushEvent {
	pe := pushEvent{ev: ev}
	if raw, err := json.Marshal(ev); err == nil {
		d := json.NewDecoder(bytes.NewReader(raw))
		d.UseNumber()
		_ = d.Decode(&pe.obj)
	}
	return pe
}

// matchPushRules returns the actions of the first matching rule.
func matchPushRules(rs *fsm.PushRuleset, pe pushEvent, ctx *pushContext) (json.RawMessage, bool) {
	for _, kind := range fsm.PushRuleKinds {
		for _, rule := range *rs.List(kind) {
			if rule.Enabled && ruleMatches(kind, &rule, pe, ctx) {
				return rule.Actions, true
			}
		}
	}
	return nil, false
}

func ruleMatches(kind string, rule *fsm.PushRule, pe pushEvent, ctx *pushContext) bool {
	switch kind {
	case "room":
		return pe.ev.RoomID == rule.RuleID
	case "sender":
		return pe.ev.Sender == rule.RuleID
	case "content":
		if rule.Pattern == nil {
			return false
		}
		body, ok := lookupString(pe.obj, "content.body")
		return ok && pushGlobMatch(*rule.Pattern, body, true)
	}
	var conds []map[string]json.RawMessage
	if len(rule.Conditions) > 0 && json.Unmarshal(rule.Conditions, &conds) != nil {
		return false
	}
	for _, c := range conds {
		if !conditionHolds(c, pe, ctx) {
			return false
		}
	}
	return true
}

func conditionHolds(c map[string]json.RawMessage, pe pushEvent, ctx *pushContext) bool {
	str := func(name string) (string, bool) {
		var s string
		return s, json.Unmarshal(c[name], &s) == nil
	}
	kind, _ := str("kind")
	key, hasKey := str("key")
	switch kind {
	case "event_match":
		pattern, ok := str("pattern")
		value, found := lookupString(pe.obj, key)
		return ok && hasKey && found && pushGlobMatch(pattern, value, key == "content.body")
	case "event_property_is":
		want, ok := decodeScalar(c["value"])
		got, found := lookupProperty(pe.obj, key)
		return ok && hasKey && found && scalarEqual(got, want)
	case "event_property_contains":
		want, ok := decodeScalar(c["value"])
		got, _ := lookupProperty(pe.obj, key)
		arr, isArr := got.([]any)
		if !ok || !hasKey || !isArr {
			return false
		}
		for _, v := range arr {
			if scalarEqual(v, want) {
				return true
			}
		}
		return false
	case "contains_display_name":
		body, ok := lookupString(pe.obj, "content.body")
		return ok && ctx.DisplayName != "" && wordMatch(regexp.QuoteMeta(ctx.DisplayName), body)
	case "room_member_count":
		is, ok := str("is")
		return ok && memberCountMatches(is, ctx.MemberCount)
	case "sender_notification_permission":
		level, ok := ctx.NotifyLevels[key]
		return hasKey && ok && ctx.SenderPower >= level
	}
	return false // unknown conditions never match
}

// actionEffects reads notify and the highlight tweak; the historical
// dont_notify and coalesce mean nothing.
func actionEffects(actions json.RawMessage) (notify, highlight bool) {
	var list []json.RawMessage
	if json.Unmarshal(actions, &list) != nil {
		return false, false
	}
	for _, act := range list {
		var name string
		if json.Unmarshal(act, &name) == nil {
			notify = notify || name == "notify"
			continue
		}
		var tweak struct {
			SetTweak string          `json:"set_tweak"`
			Value    json.RawMessage `json:"value"`
		}
		if json.Unmarshal(act, &tweak) == nil && tweak.SetTweak == "highlight" {
			highlight = len(tweak.Value) == 0 || string(tweak.Value) == "true"
		}
	}
	return notify, notify && highlight
}

// splitPropertyPath splits a dot-separated path, where `\.` is a literal
// dot and `\\` a literal backslash (appendices, "Dot-separated property paths").
func splitPropertyPath(path string) []string {
	var parts []string
	var cur strings.Builder
	for i := 0; i < len(path); i++ {
		switch ch := path[i]; {
		case ch == '\\' && i+1 < len(path) && (path[i+1] == '.' || path[i+1] == '\\'):
			cur.WriteByte(path[i+1])
			i++
		case ch == '.':
			parts = append(parts, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(ch)
		}
	}
	return append(parts, cur.String())
}

// lookupProperty finds a property; found is false when it is absent (a
// present null is nil, found).
func lookupProperty(obj map[string]any, path string) (v any, found bool) {
	var cur any = obj
	for _, part := range splitPropertyPath(path) {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[part]; !ok {
			return nil, false
		}
	}
	return cur, true
}

func lookupString(obj map[string]any, path string) (string, bool) {
	v, _ := lookupProperty(obj, path)
	s, ok := v.(string)
	return s, ok
}

// jsonNull is a condition's null value.
type jsonNull struct{}

func decodeScalar(raw json.RawMessage) (any, bool) {
	if string(bytes.TrimSpace(raw)) == "null" {
		return jsonNull{}, true
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if len(raw) == 0 || d.Decode(&v) != nil {
		return nil, false
	}
	switch v.(type) {
	case string, bool, json.Number:
		return v, true
	}
	return nil, false
}

// scalarEqual compares an event value with a condition's value: strings,
// booleans, integers and null, exactly (no casts between types).
func scalarEqual(got, want any) bool {
	switch w := want.(type) {
	case jsonNull:
		return got == nil
	case json.Number:
		g, ok := got.(json.Number)
		if !ok {
			return false
		}
		gi, err1 := g.Int64()
		wi, err2 := w.Int64()
		return err1 == nil && err2 == nil && gi == wi
	default:
		return got == want
	}
}

func memberCountMatches(is string, count int) bool {
	op := "=="
	for _, p := range []string{"==", "<=", ">=", "<", ">"} {
		if strings.HasPrefix(is, p) {
			op, is = p, is[len(p):]
			break
		}
	}
	n, err := strconv.Atoi(is)
	if err != nil {
		return false
	}
	switch op {
	case "<":
		return count < n
	case ">":
		return count > n
	case "<=":
		return count <= n
	case ">=":
		return count >= n
	}
	return count == n
}

// pushGlobMatch matches a glob case-insensitively: the whole value, or for
// content.body any run of it that starts and ends at a word boundary.
func pushGlobMatch(glob, value string, words bool) bool {
	var b strings.Builder
	for _, r := range glob {
		switch r {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	if words {
		return wordMatch(b.String(), value)
	}
	re := cachedRegexp(`(?is)\A(?:` + b.String() + `)\z`)
	return re != nil && re.MatchString(value)
}

// wordMatch finds expr in value between word boundaries: the ends of the
// value or any character outside [A-Za-z0-9_].
func wordMatch(expr, value string) bool {
	re := cachedRegexp(`(?is)(?:\A|[^A-Za-z0-9_])(?:` + expr + `)(?:[^A-Za-z0-9_]|\z)`)
	return re != nil && re.MatchString(value)
}

// Compiled patterns are kept in a small cache; it is simply emptied when
// full, since the rules of active users refill it quickly.
var regexpCache = struct {
	sync.Mutex
	m map[string]*regexp.Regexp
}{m: map[string]*regexp.Regexp{}}

const regexpCacheMax = 1024

func cachedRegexp(expr string) *regexp.Regexp {
	regexpCache.Lock()
	defer regexpCache.Unlock()
	if re, ok := regexpCache.m[expr]; ok {
		return re
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		re = nil
	}
	if len(regexpCache.m) >= regexpCacheMax {
		regexpCache.m = map[string]*regexp.Regexp{}
	}
	regexpCache.m[expr] = re
	return re
}
