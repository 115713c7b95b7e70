package rooms

import (
	"encoding/json"
	"math"
	"sort"
	"strings"

	"github.com/tidwall/gjson"
	"maunium.net/go/mautrix/id"

	"github.com/ganglion/ganglion/fsm"
)

// Joins to restricted rooms (room v8+, "restricted" and v10+
// "knock_restricted" join rules): the auth rules accept a join that names,
// in join_authorised_via_users_server, a member who may invite. The server
// names one of its own users when the joiner is in one of the rooms the
// join rule allows; otherwise it names no one and the auth rules refuse.

// withJoinAuthoriser sets join_authorised_via_users_server on a user's own
// join: it is the server's to choose, never the client's (Complement sends
// a bogus one on a join->join change and expects it ignored).
func (s *Service) withJoinAuthoriser(roomID string, spec EventSpec) EventSpec {
	if spec.Type != "m.room.member" || spec.StateKey == nil || *spec.StateKey != spec.Sender ||
		gjson.GetBytes(spec.Content, "membership").Str != "join" {
		return spec
	}
	by := s.restrictedAuthoriser(roomID, spec.Sender)
	given := gjson.GetBytes(spec.Content, "join_authorised_via_users_server")
	if !given.Exists() && by == "" {
		return spec
	}
	var content map[string]json.RawMessage
	if json.Unmarshal(spec.Content, &content) != nil {
		return spec
	}
	delete(content, "join_authorised_via_users_server")
	if by != "" {
		content["join_authorised_via_users_server"], _ = json.Marshal(by)
	}
	spec.Content, _ = json.Marshal(content)
	return spec
}

// restrictedAuthoriser is the local user to name for userID's join to
// roomID, or "" when none is needed or none may be named.
func (s *Service) restrictedAuthoriser(roomID, userID string) string {
	var out string
	_ = s.store.View(func(rt *fsm.ReadTx) error {
		room, err := rt.Room(roomID)
		if err != nil {
			return nil
		}
		ver := id.RoomVersion(room.Version)
		jr, err := rt.StateEvent(roomID, "m.room.join_rules", "")
		if err != nil || !ver.RestrictedJoins() {
			return nil
		}
		rules := gjson.GetBytes(jr.PDU, "content")
		switch rules.Get("join_rule").Str {
		case "restricted":
		case "knock_restricted":
			if !ver.KnockRestricted() {
				return nil
			}
		default:
			return nil
		}
		if m := rt.Membership(userID, roomID); m != nil && (m.Membership == "join" || m.Membership == "invite") {
			return nil // an invite or a join->join change needs no authoriser
		}
		if !inAllowedRoom(rt, rules.Get("allow"), userID) {
			return nil
		}
		out = s.localInviter(rt, room, roomID)
		return nil
	})
	return out
}

func inAllowedRoom(rt *fsm.ReadTx, allow gjson.Result, userID string) bool {
	for _, a := range allow.Array() {
		if a.Get("type").Str != "m.room_membership" {
			continue
		}
		if m := rt.Membership(userID, a.Get("room_id").Str); m != nil && m.Membership == "join" {
			return true
		}
	}
	return false
}

// localInviter picks, in user ID order, a joined local member whose power
// reaches the invite level.
func (s *Service) localInviter(rt *fsm.ReadTx, room *fsm.RoomRecord, roomID string) string {
	pl := gjson.Result{}
	if ev, err := rt.StateEvent(roomID, "m.room.power_levels", ""); err == nil {
		pl = gjson.GetBytes(ev.PDU, "content")
	}
	creators := map[string]bool{}
	if id.RoomVersion(room.Version).PrivilegedRoomCreators() {
		creators[room.Creator] = true
		if create, err := rt.StateEvent(roomID, "m.room.create", ""); err == nil {
			for _, c := range gjson.GetBytes(create.PDU, "content.additional_creators").Array() {
				creators[c.Str] = true
			}
		}
	}
	level := func(user string) int64 {
		switch {
		case creators[user]:
			return math.MaxInt64
		case !pl.Exists():
			if user == room.Creator {
				return 100
			}
			return 0
		}
		if v := pl.Get("users." + gjsonKey(user)); v.Exists() {
			return v.Int()
		}
		return pl.Get("users_default").Int()
	}
	invite := int64(0)
	if v := pl.Get("invite"); v.Exists() {
		invite = v.Int()
	}
	var candidates []string
	for user, membership := range rt.RoomMembers(roomID) {
		if membership == "join" && strings.HasSuffix(user, ":"+s.serverName) && level(user) >= invite {
			candidates = append(candidates, user)
		}
	}
	if len(candidates) == 0 {
		return ""
	}
	sort.Strings(candidates)
	return candidates[0]
}

// gjsonKey escapes a user ID for use as one gjson path element.
func gjsonKey(s string) string {
	return strings.NewReplacer(".", `\.`, "*", `\*`, "?", `\?`).Replace(s)
}
