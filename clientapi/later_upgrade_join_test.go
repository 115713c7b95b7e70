package clientapi

import (
	"fmt"
	"net/url"
	"slices"
	"testing"
)

// A user who was not in the old room at the upgrade joins the new one
// later: their push rules, tags and m.direct listing follow.
func TestJoinUpgradedRoomCopiesUserSettings(t *testing.T) {
	base := testServer(t)
	aliceID, alice := registerUser(t, base, "alice")
	bob, bobTok := registerUser(t, base, "bob")
	old := laterCreateRoom(t, base, alice, map[string]any{"preset": "public_chat", "room_version": "10"})
	laterDo(t, "POST", laterRoomURL(base, old, "join"), bobTok, map[string]any{})
	laterDo(t, "PUT", base+laterV3+"/pushrules/global/room/"+url.PathEscape(old), bobTok,
		map[string]any{"actions": []string{"dont_notify"}})
	laterDo(t, "PUT", base+laterV3+"/user/"+url.PathEscape(bob)+"/rooms/"+url.PathEscape(old)+"/tags/m.favourite",
		bobTok, map[string]any{"order": 0.25})
	laterDo(t, "PUT", base+laterV3+"/user/"+url.PathEscape(bob)+"/account_data/m.direct", bobTok,
		map[string]any{aliceID: []string{old}})
	laterDo(t, "POST", laterRoomURL(base, old, "leave"), bobTok, map[string]any{})

	out := laterDo(t, "POST", laterRoomURL(base, old, "upgrade"), alice, map[string]any{"new_version": "11"})
	newRoom := fmt.Sprint(out["replacement_room"])
	// bob was not joined: the upgrade itself copied nothing for him.
	if status, _ := call(t, "GET", base+laterV3+"/pushrules/global/room/"+url.PathEscape(newRoom), bobTok, nil); status != 404 {
		t.Fatalf("push rule copied before bob joined: %d", status)
	}

	laterDo(t, "POST", laterRoomURL(base, newRoom, "join"), bobTok, map[string]any{})
	rule := laterDo(t, "GET", base+laterV3+"/pushrules/global/room/"+url.PathEscape(newRoom), bobTok, nil)
	if actions, _ := rule["actions"].([]any); len(actions) != 1 || actions[0] != "dont_notify" {
		t.Errorf("copied rule %v", rule)
	}
	tags := laterDo(t, "GET", base+laterV3+"/user/"+url.PathEscape(bob)+"/rooms/"+url.PathEscape(newRoom)+"/tags", bobTok, nil)
	if fav := syObj(tags, "tags", "m.favourite"); fav["order"] != 0.25 {
		t.Errorf("copied tags %v", tags)
	}
	direct := laterDo(t, "GET", base+laterV3+"/user/"+url.PathEscape(bob)+"/account_data/m.direct", bobTok, nil)
	var rooms []string
	for _, r := range syList(direct, aliceID) {
		rooms = append(rooms, fmt.Sprint(r))
	}
	if !slices.Equal(rooms, []string{old, newRoom}) {
		t.Errorf("m.direct %v", direct)
	}

	// A plain room's join copies nothing and still succeeds.
	plain := laterCreateRoom(t, base, alice, map[string]any{"preset": "public_chat"})
	laterDo(t, "POST", laterRoomURL(base, plain, "join"), bobTok, map[string]any{})
}
