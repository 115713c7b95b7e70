package clientapi

import (
	"fmt"
	"net/url"
	"testing"
)

func TestUpgradeRoomErrors(t *testing.T) {
	base := testServer(t)
	_, alice := registerUser(t, base, "alice")
	_, bobTok := registerUser(t, base, "bob")
	_, carolTok := registerUser(t, base, "carol")
	room := laterCreateRoom(t, base, alice, map[string]any{"preset": "public_chat", "room_version": "10"})
	laterDo(t, "POST", laterRoomURL(base, room, "join"), bobTok, map[string]any{})
	up := laterRoomURL(base, room, "upgrade")

	laterWantErr(t, "POST", up, alice, map[string]any{"new_version": "999"}, 400, "M_UNSUPPORTED_ROOM_VERSION")
	laterWantErr(t, "POST", up, alice, map[string]any{}, 400, "M_MISSING_PARAM")
	laterWantErr(t, "POST", up, alice, "{not json", 400, "M_NOT_JSON")
	laterWantErr(t, "POST", up, alice, map[string]any{"new_version": "12", "additional_creators": []string{"nope"}},
		400, "M_INVALID_PARAM")
	// bob is joined but has power 0: he may not send m.room.tombstone.
	laterWantErr(t, "POST", up, bobTok, map[string]any{"new_version": "11"}, 403, "M_FORBIDDEN")
	laterWantErr(t, "POST", up, carolTok, map[string]any{"new_version": "11"}, 403, "M_FORBIDDEN")
	laterWantErr(t, "POST", laterRoomURL(base, "!nowhere:test.local", "upgrade"), alice,
		map[string]any{"new_version": "11"}, 404, "M_NOT_FOUND")
	if _, out := laterState(t, base, alice, room, "m.room.tombstone", ""); out["replacement_room"] != nil {
		t.Fatalf("a refused upgrade left a tombstone: %v", out)
	}
}

func TestUpgradeRoomMovesStateAliasesAndBans(t *testing.T) {
	base := testServer(t)
	aliceID, alice := registerUser(t, base, "alice")
	_, bobTok := registerUser(t, base, "bob")
	carol, carolTok := registerUser(t, base, "carol")
	old := laterCreateRoom(t, base, alice, map[string]any{"preset": "public_chat", "room_version": "10",
		"name": "Old name", "topic": "Old topic", "room_alias_name": "upg", "visibility": "public"})
	laterDo(t, "POST", laterRoomURL(base, old, "join"), bobTok, map[string]any{})
	laterDo(t, "POST", laterRoomURL(base, old, "join"), carolTok, map[string]any{})
	laterDo(t, "POST", laterRoomURL(base, old, "ban"), alice, map[string]any{"user_id": carol, "reason": "spam"})
	laterDo(t, "PUT", base+laterV3+"/pushrules/global/room/"+url.PathEscape(old), bobTok,
		map[string]any{"actions": []string{"dont_notify"}})

	out := laterDo(t, "POST", laterRoomURL(base, old, "upgrade"), alice, map[string]any{"new_version": "11"})
	newRoom := fmt.Sprint(out["replacement_room"])
	if newRoom == old || newRoom == "<nil>" {
		t.Fatalf("replacement_room %v", out)
	}

	tomb := laterMustState(t, base, alice, old, "m.room.tombstone", "")
	if tomb["replacement_room"] != newRoom || tomb["body"] == "" {
		t.Fatalf("tombstone %v", tomb)
	}
	create := laterMustState(t, base, alice, newRoom, "m.room.create", "")
	pred, _ := create["predecessor"].(map[string]any)
	if create["room_version"] != "11" || pred["room_id"] != old || pred["event_id"] == nil {
		t.Fatalf("new create %v", create)
	}
	if n := laterMustState(t, base, alice, newRoom, "m.room.name", ""); n["name"] != "Old name" {
		t.Fatalf("name not copied: %v", n)
	}
	if tp := laterMustState(t, base, alice, newRoom, "m.room.topic", ""); tp["topic"] != "Old topic" {
		t.Fatalf("topic not copied: %v", tp)
	}
	if jr := laterMustState(t, base, alice, newRoom, "m.room.join_rules", ""); jr["join_rule"] != "public" {
		t.Fatalf("join rule not copied: %v", jr)
	}

	// The alias now leads to the new room and moved between the canonical
	// alias events.
	alias := "#upg:test.local"
	dir := laterDo(t, "GET", base+laterV3+"/directory/room/"+url.PathEscape(alias), "", nil)
	if dir["room_id"] != newRoom {
		t.Fatalf("alias still points at %v", dir["room_id"])
	}
	if ca := laterMustState(t, base, alice, newRoom, "m.room.canonical_alias", ""); ca["alias"] != alias {
		t.Fatalf("new canonical alias %v", ca)
	}
	if ca := laterMustState(t, base, alice, old, "m.room.canonical_alias", ""); ca["alias"] != nil {
		t.Fatalf("old canonical alias still names it: %v", ca)
	}

	// Old room: ordinary users can no longer talk or invite.
	pl := laterMustState(t, base, alice, old, "m.room.power_levels", "")
	if pl["events_default"] != float64(50) || pl["invite"] != float64(50) {
		t.Fatalf("old power levels not restricted: %v", pl)
	}
	status, _ := call(t, "PUT", laterRoomURL(base, old, "send", "m.room.message", "t1"), bobTok,
		map[string]any{"msgtype": "m.text", "body": "hi"})
	if status != 403 {
		t.Fatalf("bob could still talk in the old room: %d", status)
	}
	// New room: same levels, alice keeps 100, the ban came along.
	npl := laterMustState(t, base, alice, newRoom, "m.room.power_levels", "")
	if users, _ := npl["users"].(map[string]any); users[aliceID] != float64(100) || npl["events_default"] != float64(0) {
		t.Fatalf("new power levels %v", npl)
	}
	if m := laterMustState(t, base, alice, newRoom, "m.room.member", carol); m["membership"] != "ban" || m["reason"] != "spam" {
		t.Fatalf("ban not copied: %v", m)
	}
	// The directory listing moved, and bob's room push rule was copied.
	vis := laterDo(t, "GET", base+laterV3+"/directory/list/room/"+url.PathEscape(newRoom), "", nil)
	if vis["visibility"] != "public" {
		t.Fatalf("new room not published: %v", vis)
	}
	if vis := laterDo(t, "GET", base+laterV3+"/directory/list/room/"+url.PathEscape(old), "", nil); vis["visibility"] != "private" {
		t.Fatalf("old room still published: %v", vis)
	}
	laterDo(t, "GET", base+laterV3+"/pushrules/global/room/"+url.PathEscape(newRoom), bobTok, nil)
}

func TestUpgradeRoomV12Creators(t *testing.T) {
	base := testServer(t)
	aliceID, alice := registerUser(t, base, "alice")
	bob, bobTok := registerUser(t, base, "bob")
	old := laterCreateRoom(t, base, alice, map[string]any{"preset": "public_chat", "room_version": "12",
		"creation_content": map[string]any{"type": "m.space"}})
	laterDo(t, "POST", laterRoomURL(base, old, "join"), bobTok, map[string]any{})
	laterPutState(t, base, alice, old, "m.room.power_levels", "", map[string]any{
		"users": map[string]any{bob: 50}, "events": map[string]any{"m.room.tombstone": 150}})

	out := laterDo(t, "POST", laterRoomURL(base, old, "upgrade"), alice,
		map[string]any{"new_version": "12", "additional_creators": []string{bob}})
	newRoom := fmt.Sprint(out["replacement_room"])
	create := laterMustState(t, base, alice, newRoom, "m.room.create", "")
	pred, _ := create["predecessor"].(map[string]any)
	extra, _ := create["additional_creators"].([]any)
	if pred["room_id"] != old || create["type"] != "m.space" || len(extra) != 1 || extra[0] != bob {
		t.Fatalf("new create %v", create)
	}
	pl := laterMustState(t, base, alice, newRoom, "m.room.power_levels", "")
	users, _ := pl["users"].(map[string]any)
	if _, ok := users[aliceID]; ok {
		t.Fatalf("creator in users: %v", pl)
	}
	if _, ok := users[bob]; ok {
		t.Fatalf("additional creator in users: %v", pl)
	}
	laterMustState(t, base, alice, old, "m.room.tombstone", "")
}

// A moderator allowed to send tombstones but not every copied event is
// raised while the state is copied, then put back to their old level.
func TestUpgradeRoomRaisesThenRestoresCaller(t *testing.T) {
	base := testServer(t)
	aliceID, alice := registerUser(t, base, "alice")
	bob, bobTok := registerUser(t, base, "bob")
	old := laterCreateRoom(t, base, alice, map[string]any{"preset": "public_chat", "room_version": "10",
		"name": "Mods"})
	laterDo(t, "POST", laterRoomURL(base, old, "join"), bobTok, map[string]any{})
	laterPutState(t, base, alice, old, "m.room.power_levels", "", map[string]any{
		"users":  map[string]any{aliceID: 100, bob: 50},
		"events": map[string]any{"m.room.tombstone": 50, "m.room.power_levels": 100, "m.room.name": 100}})

	out := laterDo(t, "POST", laterRoomURL(base, old, "upgrade"), bobTok, map[string]any{"new_version": "11"})
	newRoom := fmt.Sprint(out["replacement_room"])
	if n := laterMustState(t, base, bobTok, newRoom, "m.room.name", ""); n["name"] != "Mods" {
		t.Fatalf("name not copied: %v", n)
	}
	pl := laterMustState(t, base, bobTok, newRoom, "m.room.power_levels", "")
	users, _ := pl["users"].(map[string]any)
	if users[bob] != float64(50) || users[aliceID] != float64(100) {
		t.Fatalf("power levels not restored: %v", pl)
	}
}
