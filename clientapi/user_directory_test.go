package clientapi

import (
	"net/url"
	"testing"
)

// exDirectory searches and returns the user IDs found and "limited".
func exDirectory(u *rmUser, body map[string]any) ([]string, map[string]any) {
	u.t.Helper()
	out := u.ok("user directory", "POST", "/user_directory/search", body)
	var ids []string
	for _, r := range syList(out, "results") {
		ids = append(ids, syObj(r)["user_id"].(string))
	}
	return ids, out
}

func TestUserDirectorySearch(t *testing.T) {
	base := testServer(t)
	alice := newRMUser(t, base, "alice")
	bob := newRMUser(t, base, "bob")
	carol := newRMUser(t, base, "carol")
	dave := newRMUser(t, base, "dave")
	eve := newRMUser(t, base, "eve")
	alice.ok("displayname", "PUT", "/profile/"+url.PathEscape(alice.id)+"/displayname", map[string]any{"displayname": "Alice Wonder"})

	private := alice.createRoom(map[string]any{"preset": "private_chat"})
	alice.ok("invite bob", "POST", roomPath(private, "/invite"), map[string]any{"user_id": bob.id})
	bob.ok("bob joins", "POST", roomPath(private, "/join"), nil)
	carol.createRoom(map[string]any{"preset": "public_chat"})

	ids, out := exDirectory(bob, map[string]any{"search_term": "ALICE"})
	if len(ids) != 1 || ids[0] != alice.id || syObj(syList(out, "results")[0])["display_name"] != "Alice Wonder" {
		t.Fatalf("bob searching alice: %v", out)
	}
	if ids, _ := exDirectory(bob, map[string]any{"search_term": "wond"}); len(ids) != 1 || ids[0] != alice.id {
		t.Errorf("display name search: %v", ids)
	}
	if ids, _ := exDirectory(eve, map[string]any{"search_term": "alice"}); len(ids) != 0 {
		t.Errorf("eve shares no room with alice but finds %v", ids)
	}
	if ids, _ := exDirectory(eve, map[string]any{"search_term": "carol"}); len(ids) != 1 || ids[0] != carol.id {
		t.Errorf("carol is in a public room: %v", ids)
	}
	if ids, _ := exDirectory(alice, map[string]any{"search_term": "dave"}); len(ids) != 0 {
		t.Errorf("dave is in no room: %v", ids)
	}
	if ids, _ := exDirectory(alice, map[string]any{"search_term": dave.id}); len(ids) != 1 || ids[0] != dave.id {
		t.Errorf("exact user ID: %v", ids)
	}
	ids, out = exDirectory(alice, map[string]any{"search_term": "test.local", "limit": 1})
	if len(ids) != 1 || out["limited"] != true {
		t.Errorf("limit 1: %v", out)
	}
	if _, out := exDirectory(alice, map[string]any{"search_term": "nobody-like-this"}); out["limited"] != false || len(syList(out, "results")) != 0 {
		t.Errorf("no match: %v", out)
	}
	alice.expect("no search_term", "POST", "/user_directory/search", map[string]any{}, 400, "M_MISSING_PARAM")
	alice.expect("not JSON", "POST", "/user_directory/search", "{", 400, "M_NOT_JSON")
}
