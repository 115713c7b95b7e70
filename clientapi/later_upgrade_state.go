package clientapi

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
	"maunium.net/go/mautrix/id"

	"github.com/ganglion/ganglion/fsm"
)

// Room upgrades: power levels, aliases and push rules.

// plIntKeys are the top-level power level fields holding one level.
var plIntKeys = []string{"ban", "kick", "redact", "invite", "events_default", "state_default", "users_default"}

// plMapKeys are the fields mapping names to levels.
var plMapKeys = []string{"events", "users", "notifications"}

// plLevel reads a level: a JSON number, or a numeric string (allowed
// before room v10).
func plLevel(v any) (int64, bool) {
	switch x := v.(type) {
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return n, true
		}
		f, err := x.Float64()
		return int64(f), err == nil && !math.IsInf(f, 0)
	case string:
		n, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64)
		return n, err == nil
	}
	return 0, false
}

func plLevelOr(pl map[string]any, k string, def int64) int64 {
	if n, ok := plLevel(pl[k]); ok {
		return n
	}
	return def
}

// decodePowerLevels reads the room's power levels content, numbers kept
// exact; nil when the room has none.
func decodePowerLevels(rt *fsm.ReadTx, roomID string) map[string]any {
	ev, err := rt.StateEvent(roomID, "m.room.power_levels", "")
	if err != nil {
		return nil
	}
	d := json.NewDecoder(bytes.NewReader([]byte(gjson.GetBytes(ev.PDU, "content").Raw)))
	d.UseNumber()
	var pl map[string]any
	if d.Decode(&pl) != nil || pl == nil {
		return nil
	}
	return pl
}

// normalizePowerLevels turns every level into an integer, as room v10+
// require, and drops what is not a level.
func normalizePowerLevels(pl map[string]any) {
	for _, k := range plIntKeys {
		if _, present := pl[k]; !present {
			continue
		}
		if n, ok := plLevel(pl[k]); ok {
			pl[k] = n
		} else {
			delete(pl, k)
		}
	}
	for _, k := range plMapKeys {
		m, _ := pl[k].(map[string]any)
		if _, present := pl[k]; present && m == nil {
			delete(pl, k)
		}
		for name, v := range m {
			if n, ok := plLevel(v); ok {
				m[name] = n
			} else {
				delete(m, name)
			}
		}
	}
}

// upgradePowerLevels is the new room's power_levels override: the old
// room's, with creators of a v12+ room left out of users (the auth rules
// forbid them there) and a v12 room's creators given the top level when
// the new room has none. If the caller is too weak to send all the
// copied state, override raises them and restore is what to set after.
func upgradePowerLevels(rt *fsm.ReadTx, room *fsm.RoomRecord, ver id.RoomVersion, sender string, creators []string) (override, restore json.RawMessage) {
	pl := decodePowerLevels(rt, room.RoomID)
	if pl == nil {
		return nil, nil // the defaults, with the caller as creator
	}
	normalizePowerLevels(pl)
	users, _ := pl["users"].(map[string]any)
	if users == nil {
		users = map[string]any{}
		pl["users"] = users
	}
	if ver.PrivilegedRoomCreators() {
		for _, c := range creators {
			delete(users, c)
		}
		override, _ = json.Marshal(pl)
		return override, nil
	}
	if id.RoomVersion(room.Version).PrivilegedRoomCreators() {
		top := int64(100)
		for _, v := range users {
			top = max(top, v.(int64))
		}
		for _, c := range roomCreators(rt, room) {
			if _, set := users[c]; !set {
				users[c] = top
			}
		}
	}
	final, _ := json.Marshal(pl)
	need := max(plLevelOr(pl, "state_default", 50), plLevelOr(pl, "ban", 50))
	if events, ok := pl["events"].(map[string]any); ok {
		for _, v := range events {
			need = max(need, v.(int64))
		}
	}
	have := plLevelOr(pl, "users_default", 0)
	if v, ok := users[sender]; ok {
		have = v.(int64)
	}
	if have >= need {
		return final, nil
	}
	users[sender] = need
	override, _ = json.Marshal(pl)
	return override, final
}

// roomCreators are the creators of a v12+ room: the create event's sender
// and its additional_creators.
func roomCreators(rt *fsm.ReadTx, room *fsm.RoomRecord) []string {
	out := []string{room.Creator}
	if ev, err := rt.StateEvent(room.RoomID, "m.room.create", ""); err == nil {
		for _, c := range gjson.GetBytes(ev.PDU, "content.additional_creators").Array() {
			if c.Str != "" && !slices.Contains(out, c.Str) {
				out = append(out, c.Str)
			}
		}
	}
	return out
}

// restrictedPowerLevels is the old room's power levels with events_default
// and invite raised to max(50, users_default+1), as the spec suggests;
// nil when they already are (or the room has none).
func (a *API) restrictedPowerLevels(roomID string) json.RawMessage {
	var pl map[string]any
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		pl = decodePowerLevels(rt, roomID)
		return nil
	})
	if pl == nil {
		return nil
	}
	level := max(50, plLevelOr(pl, "users_default", 0)+1)
	changed := false
	for _, k := range []string{"events_default", "invite"} {
		if plLevelOr(pl, k, 0) < level {
			pl[k] = level
			changed = true
		}
	}
	if !changed {
		return nil
	}
	raw, _ := json.Marshal(pl)
	return raw
}

// moveAliases points the old room's local aliases at the new room and
// moves them from the old room's canonical alias event to the new one's.
func (a *API) moveAliases(ctx context.Context, plan *upgradePlan, newRoomID string, logFail func(string, error)) {
	var moved []string
	for _, al := range plan.aliases {
		if _, _, err := a.node.Propose(ctx, fsm.OpAliasDelete, fsm.AliasCmd{Alias: al.alias}); err != nil {
			logFail("move alias "+al.alias, err)
			continue
		}
		_, _, err := a.node.Propose(ctx, fsm.OpAliasPut, fsm.AliasCmd{Alias: al.alias, RoomID: newRoomID, Creator: al.creator})
		if err != nil {
			logFail("move alias "+al.alias, err)
			continue
		}
		moved = append(moved, al.alias)
	}
	var old map[string]any
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		if ev, err := rt.StateEvent(plan.oldRoomID, "m.room.canonical_alias", ""); err == nil {
			_ = json.Unmarshal([]byte(gjson.GetBytes(ev.PDU, "content").Raw), &old)
		}
		return nil
	})
	if old == nil || len(moved) == 0 {
		return
	}
	next := map[string]any{}
	changed := false
	if alias, _ := old["alias"].(string); slices.Contains(moved, alias) {
		next["alias"] = alias
		delete(old, "alias")
		changed = true
	}
	if alts, ok := old["alt_aliases"].([]any); ok {
		var kept, taken []any
		for _, alt := range alts {
			if s, _ := alt.(string); slices.Contains(moved, s) {
				taken = append(taken, alt)
			} else {
				kept = append(kept, alt)
			}
		}
		if len(taken) > 0 {
			next["alt_aliases"], changed = taken, true
			if len(kept) == 0 {
				delete(old, "alt_aliases")
			} else {
				old["alt_aliases"] = kept
			}
		}
	}
	if !changed {
		return
	}
	oldRaw, _ := json.Marshal(old)
	logFail("update old canonical alias", a.sendState(ctx, plan.oldRoomID, plan.sender, "m.room.canonical_alias", oldRaw))
	newRaw, _ := json.Marshal(next)
	logFail("set new canonical alias", a.sendState(ctx, newRoomID, plan.sender, "m.room.canonical_alias", newRaw))
}

// copyRoomPushRules gives the old room's local members the same
// room-specific push rules in the new room (Complement's "upgrading a room
// carries over existing push rules for local users").
func (a *API) copyRoomPushRules(ctx context.Context, oldRoomID, newRoomID string, logFail func(string, error)) {
	a.copyRoomPushRulesFor(ctx, oldRoomID, newRoomID, "", logFail)
}

// copyRoomPushRulesFor copies for one user (any membership in the old
// room), or for the old room's joined members when userID is "". A rule
// already present in the new room is left alone, so copying twice is
// harmless.
func (a *API) copyRoomPushRulesFor(ctx context.Context, oldRoomID, newRoomID, userID string, logFail func(string, error)) {
	var changes []fsm.PushRulesUpdate
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		if userID != "" {
			changes = roomPushRuleCopies(rt, userID, oldRoomID, newRoomID)
			return nil
		}
		for member, m := range rt.RoomMembers(oldRoomID) {
			if m == "join" {
				changes = append(changes, roomPushRuleCopies(rt, member, oldRoomID, newRoomID)...)
			}
		}
		return nil
	})
	for _, u := range changes {
		_, _, err := a.node.Propose(ctx, fsm.OpPushRulesUpdate, u)
		logFail("copy push rule for "+u.UserID, err)
	}
}

// roomPushRuleCopies lists the updates giving userID's rules about
// oldRoomID to newRoomID.
func roomPushRuleCopies(rt *fsm.ReadTx, userID, oldRoomID, newRoomID string) []fsm.PushRulesUpdate {
	rec, err := rt.AccountData(userID, "", fsm.PushRulesType)
	if err != nil {
		return nil // only the defaults: nothing about this room
	}
	rules, err := fsm.ParsePushRules(rec.Content)
	if err != nil {
		return nil
	}
	var changes []fsm.PushRulesUpdate
	for _, kind := range fsm.PushRuleKinds {
		for _, rule := range *rules.Global.List(kind) {
			newID, conds, ok := retargetPushRule(kind, &rule, oldRoomID, newRoomID)
			if !ok || rules.Global.Find(kind, newID) >= 0 {
				continue
			}
			u := fsm.PushRulesUpdate{UserID: userID, Change: fsm.PushRulePut, Kind: kind, RuleID: newID,
				Rule:     &fsm.PushRule{Conditions: conds, Pattern: rule.Pattern, Actions: rule.Actions},
				Defaults: defaultPushRules(userID)}
			changes = append(changes, u)
			if !rule.Enabled {
				u.Change, u.Rule, u.Enabled = fsm.PushRuleEnabled, nil, false
				changes = append(changes, u)
			}
		}
	}
	return changes
}

// retargetPushRule is a user rule about oldRoomID rewritten for newRoomID:
// a room rule (its ID is the room), or a rule with a room_id condition.
func retargetPushRule(kind string, rule *fsm.PushRule, oldRoomID, newRoomID string) (string, json.RawMessage, bool) {
	if rule.Default {
		return "", nil, false
	}
	if kind == "room" {
		return newRoomID, rule.Conditions, rule.RuleID == oldRoomID
	}
	var conds []map[string]any
	if json.Unmarshal(rule.Conditions, &conds) != nil {
		return "", nil, false
	}
	found := false
	for _, c := range conds {
		if c["key"] == "room_id" && c["pattern"] == oldRoomID {
			c["pattern"], found = newRoomID, true
		}
	}
	if !found {
		return "", nil, false
	}
	newID := strings.ReplaceAll(rule.RuleID, oldRoomID, newRoomID)
	if newID == rule.RuleID {
		newID = newRoomID
	}
	raw, _ := json.Marshal(conds)
	return newID, raw, true
}
