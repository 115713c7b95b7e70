package clientapi

import (
	"encoding/json"

	"github.com/ganglion/ganglion/fsm"
)

// The server-default push rules of the spec's "Predefined Rules" (v1.19),
// in its order. v1.17 removed the body-matching mention rules
// (.m.rule.contains_user_name, .m.rule.contains_display_name,
// .m.rule.roomnotif), so there are no default content rules.

type ruleCond map[string]any

func eventMatchCond(key, pattern string) ruleCond {
	return ruleCond{"kind": "event_match", "key": key, "pattern": pattern}
}

func memberCountCond(is string) ruleCond { return ruleCond{"kind": "room_member_count", "is": is} }

var (
	actNotify        any = "notify"
	tweakSoundDef    any = map[string]any{"set_tweak": "sound", "value": "default"}
	tweakSoundRing   any = map[string]any{"set_tweak": "sound", "value": "ring"}
	tweakHighlightOn any = map[string]any{"set_tweak": "highlight"}
)

func defaultRule(id string, enabled bool, conds []ruleCond, actions ...any) fsm.PushRule {
	if conds == nil {
		conds = []ruleCond{}
	}
	if actions == nil {
		actions = []any{}
	}
	c, _ := json.Marshal(conds)
	a, _ := json.Marshal(actions)
	return fsm.PushRule{RuleID: id, Default: true, Enabled: enabled, Conditions: c, Actions: a}
}

// defaultPushRuleset is the ruleset of a user who never changed a rule.
func defaultPushRuleset(userID string) fsm.PushRuleset {
	rs := fsm.PushRuleset{
		Override: []fsm.PushRule{
			defaultRule(".m.rule.master", false, nil),
			defaultRule(".m.rule.suppress_notices", true, []ruleCond{eventMatchCond("content.msgtype", "m.notice")}),
			defaultRule(".m.rule.invite_for_me", true, []ruleCond{
				eventMatchCond("type", "m.room.member"),
				eventMatchCond("content.membership", "invite"),
				eventMatchCond("state_key", userID),
			}, actNotify, tweakSoundDef),
			defaultRule(".m.rule.member_event", true, []ruleCond{eventMatchCond("type", "m.room.member")}),
			defaultRule(".m.rule.is_user_mention", true, []ruleCond{
				{"kind": "event_property_contains", "key": `content.m\.mentions.user_ids`, "value": userID},
			}, actNotify, tweakSoundDef, tweakHighlightOn),
			defaultRule(".m.rule.is_room_mention", true, []ruleCond{
				{"kind": "event_property_is", "key": `content.m\.mentions.room`, "value": true},
				{"kind": "sender_notification_permission", "key": "room"},
			}, actNotify, tweakHighlightOn),
			defaultRule(".m.rule.tombstone", true, []ruleCond{
				eventMatchCond("type", "m.room.tombstone"),
				eventMatchCond("state_key", ""),
			}, actNotify, tweakHighlightOn),
			defaultRule(".m.rule.reaction", true, []ruleCond{eventMatchCond("type", "m.reaction")}),
			defaultRule(".m.rule.room.server_acl", true, []ruleCond{
				eventMatchCond("type", "m.room.server_acl"),
				eventMatchCond("state_key", ""),
			}),
			defaultRule(".m.rule.suppress_edits", true, []ruleCond{
				{"kind": "event_property_is", "key": `content.m\.relates_to.rel_type`, "value": "m.replace"},
			}),
		},
		Underride: []fsm.PushRule{
			defaultRule(".m.rule.call", true, []ruleCond{eventMatchCond("type", "m.call.invite")},
				actNotify, tweakSoundRing),
			defaultRule(".m.rule.encrypted_room_one_to_one", true, []ruleCond{
				memberCountCond("2"), eventMatchCond("type", "m.room.encrypted"),
			}, actNotify, tweakSoundDef),
			defaultRule(".m.rule.room_one_to_one", true, []ruleCond{
				memberCountCond("2"), eventMatchCond("type", "m.room.message"),
			}, actNotify, tweakSoundDef),
			defaultRule(".m.rule.message", true, []ruleCond{eventMatchCond("type", "m.room.message")}, actNotify),
			defaultRule(".m.rule.encrypted", true, []ruleCond{eventMatchCond("type", "m.room.encrypted")}, actNotify),
		},
	}
	rs.Normalize()
	return rs
}

// defaultPushRules is the m.push_rules account-data content for a user who
// has none stored: what GET /pushrules/ and an initial /sync show.
func defaultPushRules(userID string) json.RawMessage {
	raw, err := json.Marshal(fsm.PushRules{Global: defaultPushRuleset(userID)})
	if err != nil {
		panic("default push rules do not encode: " + err.Error()) // static data
	}
	return raw
}
