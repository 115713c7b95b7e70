package clientapi

import (
	"net/url"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/ganglion/ganglion/fsm"
)

func TestRoomSummaryEndpoint(t *testing.T) {
	base := testServer(t)
	_, alice := registerUser(t, base, "alice")
	bob, bobTok := registerUser(t, base, "bob")
	public := laterCreateRoom(t, base, alice, map[string]any{"preset": "public_chat", "name": "Pub",
		"topic": "Open", "room_alias_name": "pub", "creation_content": map[string]any{"type": "m.space"}})
	private := laterCreateRoom(t, base, alice, map[string]any{"preset": "private_chat", "name": "Priv"})
	laterPutState(t, base, alice, private, "m.room.encryption", "", map[string]any{"algorithm": "m.megolm.v1.aes-sha2"})
	sum := func(target, token string) (int, map[string]any) {
		return call(t, "GET", base+"/_matrix/client/v1/room_summary/"+url.PathEscape(target)+"?via=elsewhere", token, nil)
	}

	// A public room: anyone gets it, by ID or alias, with no membership.
	for _, target := range []string{public, "#pub:test.local"} {
		status, out := sum(target, bobTok)
		if status != 200 || out["room_id"] != public || out["name"] != "Pub" || out["topic"] != "Open" ||
			out["room_type"] != "m.space" || out["join_rule"] != "public" || out["num_joined_members"] != float64(1) ||
			out["canonical_alias"] != "#pub:test.local" || out["room_version"] == nil || out["membership"] != nil {
			t.Fatalf("summary of %s: %d %v", target, status, out)
		}
	}
	// A private room: hidden until invited, then shown with the membership.
	if status, out := sum(private, bobTok); status != 404 || out["errcode"] != "M_NOT_FOUND" {
		t.Fatalf("private room for a stranger: %d %v", status, out)
	}
	laterDo(t, "POST", laterRoomURL(base, private, "invite"), alice, map[string]any{"user_id": bob})
	status, out := sum(private, bobTok)
	if status != 200 || out["membership"] != "invite" || out["encryption"] != "m.megolm.v1.aes-sha2" {
		t.Fatalf("private room for an invitee: %d %v", status, out)
	}
	if status, out := sum(private, alice); status != 200 || out["membership"] != "join" {
		t.Fatalf("private room for a member: %d %v", status, out)
	}
	for _, target := range []string{"!nowhere:test.local", "#nowhere:test.local"} {
		if status, out := sum(target, alice); status != 404 || out["errcode"] != "M_NOT_FOUND" {
			t.Fatalf("unknown %s: %d %v", target, status, out)
		}
	}
	if status, _ := sum("nonsense", alice); status != 400 {
		t.Fatalf("malformed target: %d", status)
	}
}

func TestOpenIDRequestToken(t *testing.T) {
	base, api := testServerAPI(t)
	alice, aliceTok := registerUser(t, base, "alice")
	bob, _ := registerUser(t, base, "bob")
	u := func(user string) string {
		return base + laterV3 + "/user/" + url.PathEscape(user) + "/openid/request_token"
	}

	out := laterDo(t, "POST", u(alice), aliceTok, map[string]any{})
	token, _ := out["access_token"].(string)
	if token == "" || out["token_type"] != "Bearer" || out["matrix_server_name"] != "test.local" || out["expires_in"] != float64(3600) {
		t.Fatalf("openid token %v", out)
	}
	var owner string
	var valid, laterValid bool
	_ = api.store.View(func(rt *fsm.ReadTx) error {
		now := time.Now().UnixMilli()
		owner, valid = rt.OpenIDTokenUser(HashToken(token), now)
		_, laterValid = rt.OpenIDTokenUser(HashToken(token), now+2*time.Hour.Milliseconds())
		return nil
	})
	if !valid || owner != alice || laterValid {
		t.Fatalf("stored token: owner %q valid %v, valid in two hours %v", owner, valid, laterValid)
	}
	// It is no access token.
	if status, _ := call(t, "GET", base+laterV3+"/account/whoami", token, nil); status != 401 {
		t.Fatalf("openid token accepted as an access token: %d", status)
	}
	laterWantErr(t, "POST", u(bob), aliceTok, map[string]any{}, 403, "M_FORBIDDEN")
	laterWantErr(t, "POST", u(alice), aliceTok, "{bad", 400, "M_NOT_JSON")
}

func TestReportUser(t *testing.T) {
	base := testServer(t)
	_, alice := registerUser(t, base, "alice")
	bob, _ := registerUser(t, base, "bob")
	u := func(user string) string { return base + laterV3 + "/users/" + url.PathEscape(user) + "/report" }

	if out := laterDo(t, "POST", u(bob), alice, map[string]any{"reason": "rude"}); len(out) != 0 {
		t.Fatalf("report answer %v", out)
	}
	laterDo(t, "POST", u(bob), alice, map[string]any{"reason": ""})
	laterWantErr(t, "POST", u("@ghost:test.local"), alice, map[string]any{"reason": "?"}, 404, "M_NOT_FOUND")
	laterWantErr(t, "POST", u(bob), alice, map[string]any{}, 400, "M_BAD_JSON")
	laterWantErr(t, "POST", u("not-a-user"), alice, map[string]any{"reason": "?"}, 400, "M_INVALID_PARAM")
}

func TestDeleteProfileField(t *testing.T) {
	base := testServer(t)
	alice, aliceTok := registerUser(t, base, "alice")
	bob, _ := registerUser(t, base, "bob")
	field := func(user, key string) string {
		return base + laterV3 + "/profile/" + url.PathEscape(user) + "/" + key
	}
	room := laterCreateRoom(t, base, aliceTok, map[string]any{"preset": "private_chat"})
	laterDo(t, "PUT", field(alice, "displayname"), aliceTok, map[string]any{"displayname": "Alice A."})
	laterDo(t, "PUT", field(alice, "avatar_url"), aliceTok, map[string]any{"avatar_url": "mxc://test.local/pic"})

	laterDo(t, "DELETE", field(alice, "displayname"), aliceTok, nil)
	laterWantErr(t, "GET", field(alice, "displayname"), aliceTok, nil, 404, "M_NOT_FOUND")
	if got := laterDo(t, "GET", field(alice, "avatar_url"), aliceTok, nil); got["avatar_url"] != "mxc://test.local/pic" {
		t.Fatalf("avatar lost with the name: %v", got)
	}
	m := laterMustState(t, base, aliceTok, room, "m.room.member", alice)
	if m["displayname"] != nil || m["avatar_url"] != "mxc://test.local/pic" {
		t.Fatalf("member event after delete: %v", m)
	}
	// Deleting what is not set is fine.
	laterDo(t, "DELETE", field(alice, "displayname"), aliceTok, nil)

	laterWantErr(t, "DELETE", field(bob, "displayname"), aliceTok, nil, 403, "M_FORBIDDEN")
	laterWantErr(t, "DELETE", field(alice, "m.tz"), aliceTok, nil, 403, "M_FORBIDDEN")
	laterWantErr(t, "DELETE", field(alice, "Bad-Key"), aliceTok, nil, 400, "M_INVALID_PARAM")
}

func TestMutualRooms(t *testing.T) {
	base := testServer(t)
	alice, aliceTok := registerUser(t, base, "alice")
	bob, bobTok := registerUser(t, base, "bob")
	var shared []string
	for i := 0; i < 2; i++ {
		room := laterCreateRoom(t, base, aliceTok, map[string]any{"preset": "public_chat"})
		laterDo(t, "POST", laterRoomURL(base, room, "join"), bobTok, map[string]any{})
		shared = append(shared, room)
	}
	laterCreateRoom(t, base, aliceTok, map[string]any{"preset": "public_chat"}) // alice alone
	left := laterCreateRoom(t, base, aliceTok, map[string]any{"preset": "public_chat"})
	laterDo(t, "POST", laterRoomURL(base, left, "join"), bobTok, map[string]any{})
	laterDo(t, "POST", laterRoomURL(base, left, "leave"), bobTok, map[string]any{})
	sort.Strings(shared)

	u := func(q string) string { return base + "/_matrix/client/v1/mutual_rooms" + q }
	out := laterDo(t, "GET", u("?user_id="+url.QueryEscape(bob)), aliceTok, nil)
	var joined []string
	for _, r := range out["joined"].([]any) {
		joined = append(joined, r.(string))
	}
	if !reflect.DeepEqual(joined, shared) || out["count"] != float64(2) || out["next_batch"] != nil {
		t.Fatalf("mutual rooms %v, want %v", out, shared)
	}
	out = laterDo(t, "GET", u("?user_id="+url.QueryEscape("@ghost:test.local")), aliceTok, nil)
	if rooms, _ := out["joined"].([]any); len(rooms) != 0 || out["count"] != float64(0) {
		t.Fatalf("mutual rooms with nobody %v", out)
	}
	laterWantErr(t, "GET", u("?user_id="+url.QueryEscape(alice)), aliceTok, nil, 400, "M_INVALID_PARAM")
	laterWantErr(t, "GET", u("?user_id=bob"), aliceTok, nil, 400, "M_INVALID_PARAM")
	laterWantErr(t, "GET", u(""), aliceTok, nil, 400, "M_MISSING_PARAM")
	laterWantErr(t, "GET", u("?user_id="+url.QueryEscape(bob)+"&from=x"), aliceTok, nil, 400, "M_INVALID_PARAM")
}
