package clientapi

import (
	"net/url"
	"testing"
)

// An encoded slash inside a path parameter stays part of that parameter.
func TestEncodedSlashInPathParameter(t *testing.T) {
	base := testServer(t)
	_, tok := registerUser(t, base, "slasher")
	st, out := call(t, "POST", base+"/_matrix/client/v3/createRoom", tok, map[string]any{})
	if st != 200 {
		t.Fatalf("createRoom: %d %v", st, out)
	}
	roomID := out["room_id"].(string)
	alias := url.PathEscape("#a/b:test.local")
	if st, out := call(t, "PUT", base+"/_matrix/client/v3/directory/room/"+alias, tok, map[string]any{"room_id": roomID}); st != 200 {
		t.Fatalf("put alias with slash: %d %v", st, out)
	}
	st, out = call(t, "GET", base+"/_matrix/client/v3/directory/room/"+alias, "", nil)
	if st != 200 || out["room_id"] != roomID {
		t.Fatalf("resolve alias with slash: %d %v", st, out)
	}
	// A state key with a slash round-trips too.
	path := base + "/_matrix/client/v3/rooms/" + url.PathEscape(roomID) + "/state/org.example.s/" + url.PathEscape("x/y")
	if st, out := call(t, "PUT", path, tok, map[string]any{"v": 1}); st != 200 {
		t.Fatalf("put state with slash key: %d %v", st, out)
	}
	if st, out := call(t, "GET", path, tok, nil); st != 200 || out["v"] != float64(1) {
		t.Fatalf("get state with slash key: %d %v", st, out)
	}
}
