package clientapi

import (
	"fmt"
	"net/url"
	"testing"
)

func TestKeyBackupHTTP(t *testing.T) {
	base := testServer(t)
	_, tok := registerUser(t, base, "alice")
	v3 := base + "/_matrix/client/v3"
	const algo = "m.megolm_backup.v1.curve25519-aes-sha2"
	keys := func(method, path, version string, body any) (int, map[string]any) {
		u := v3 + "/room_keys/keys" + path
		if version != "" {
			u += "?version=" + url.QueryEscape(version)
		}
		return call(t, method, u, tok, body)
	}
	key := func(fmi, fwd int, verified bool, tag string) map[string]any {
		return map[string]any{"first_message_index": fmi, "forwarded_count": fwd, "is_verified": verified,
			"session_data": map[string]any{"ciphertext": tag}}
	}
	room := "/" + url.PathEscape("!room:test.local")

	s, out := call(t, "GET", v3+"/room_keys/version", tok, nil)
	wantErr(t, "no backup", s, out, 404, "M_NOT_FOUND")
	s, out = keys("PUT", room+"/s1", "1", key(0, 0, false, "x"))
	wantErr(t, "put without backup", s, out, 404, "M_NOT_FOUND")
	s, out = call(t, "POST", v3+"/room_keys/version", tok, map[string]any{"algorithm": algo})
	wantErr(t, "create without auth_data", s, out, 400, "M_MISSING_PARAM")

	s, out = call(t, "POST", v3+"/room_keys/version", tok, map[string]any{"algorithm": algo, "auth_data": map[string]any{"public_key": "k1"}})
	wantOK(t, "create v1", s, out)
	v1 := fmt.Sprint(out["version"])
	s, out = call(t, "GET", v3+"/room_keys/version", tok, nil)
	if s != 200 || out["version"] != v1 || out["etag"] != "0" || out["count"] != float64(0) || keGet(out, "auth_data", "public_key") != "k1" {
		t.Fatalf("current version: %d %v", s, out)
	}

	s, out = keys("PUT", room+"/s1", v1, key(3, 1, false, "first"))
	if s != 200 || out["count"] != float64(1) || out["etag"] != "1" {
		t.Fatalf("put s1: %d %v", s, out)
	}
	s, out = keys("PUT", room+"/s1", v1, key(4, 0, false, "worse"))
	if s != 200 || out["count"] != float64(1) || out["etag"] != "1" {
		t.Fatalf("put worse s1: %d %v", s, out)
	}
	s, out = keys("PUT", room, v1, map[string]any{"sessions": map[string]any{"s1": key(3, 0, false, "fewer-forwards"), "s2": key(0, 0, false, "s2")}})
	if s != 200 || out["count"] != float64(2) || out["etag"] != "2" {
		t.Fatalf("put room: %d %v", s, out)
	}
	s, out = keys("GET", room+"/s1", v1, nil)
	if s != 200 || keGet(out, "session_data", "ciphertext") != "fewer-forwards" || out["is_verified"] != false {
		t.Fatalf("get s1: %d %v", s, out)
	}
	s, out = keys("PUT", room+"/s3", v1, map[string]any{"first_message_index": 0, "session_data": map[string]any{}})
	wantErr(t, "incomplete key", s, out, 400, "M_BAD_JSON")
	s, out = keys("PUT", room+"/s3", "", key(0, 0, false, "x"))
	wantErr(t, "no version", s, out, 400, "M_MISSING_PARAM")

	// A newer version takes over; writes to the old one are refused with
	// the current version, reads still work.
	s, out = call(t, "POST", v3+"/room_keys/version", tok, map[string]any{"algorithm": algo, "auth_data": map[string]any{"public_key": "k2"}})
	wantOK(t, "create v2", s, out)
	v2 := fmt.Sprint(out["version"])
	s, out = keys("PUT", room+"/s1", v1, key(0, 0, true, "late"))
	if s != 403 || out["errcode"] != "M_WRONG_ROOM_KEYS_VERSION" || out["current_version"] != v2 {
		t.Fatalf("put to old version: %d %v", s, out)
	}
	s, out = keys("GET", room, v1, nil)
	if sessions, _ := out["sessions"].(map[string]any); s != 200 || len(sessions) != 2 {
		t.Fatalf("get room of v1: %d %v", s, out)
	}
	s, out = keys("GET", "", v2, nil)
	if rooms, ok := out["rooms"].(map[string]any); s != 200 || !ok || len(rooms) != 0 {
		t.Fatalf("get empty v2: %d %v", s, out)
	}
	s, out = keys("PUT", "", v2, map[string]any{"rooms": map[string]any{"!room:test.local": map[string]any{
		"sessions": map[string]any{"a": key(0, 0, true, "a")}}}})
	if s != 200 || out["count"] != float64(1) {
		t.Fatalf("put all: %d %v", s, out)
	}
	s, out = keys("GET", "", v2, nil)
	if keGet(out, "rooms", "!room:test.local", "sessions", "a", "is_verified") != true {
		t.Fatalf("get all v2: %d %v", s, out)
	}
	s, out = keys("GET", room+"/nope", v2, nil)
	wantErr(t, "missing session", s, out, 404, "M_NOT_FOUND")
	s, out = keys("GET", room, "999999999", nil)
	wantErr(t, "unknown version", s, out, 404, "M_NOT_FOUND")

	// auth_data updates.
	s, out = call(t, "PUT", v3+"/room_keys/version/"+v2, tok, map[string]any{"algorithm": "other", "auth_data": map[string]any{}})
	wantErr(t, "algorithm change", s, out, 400, "M_INVALID_PARAM")
	s, out = call(t, "PUT", v3+"/room_keys/version/"+v2, tok, map[string]any{"algorithm": algo, "auth_data": map[string]any{}, "version": v1})
	wantErr(t, "version mismatch", s, out, 400, "M_INVALID_PARAM")
	s, out = call(t, "PUT", v3+"/room_keys/version/"+v2, tok, map[string]any{"algorithm": algo, "auth_data": map[string]any{"public_key": "k2b"}})
	wantOK(t, "update", s, out)
	s, out = call(t, "GET", v3+"/room_keys/version/"+v2, tok, nil)
	if s != 200 || keGet(out, "auth_data", "public_key") != "k2b" || out["count"] != float64(1) {
		t.Fatalf("get v2: %d %v", s, out)
	}

	// Deletes.
	s, out = keys("DELETE", room+"/s2", v1, nil)
	if s != 200 || out["count"] != float64(1) {
		t.Fatalf("delete s2 of v1: %d %v", s, out)
	}
	s, out = call(t, "DELETE", v3+"/room_keys/version/"+v2, tok, nil)
	wantOK(t, "delete v2", s, out)
	s, out = call(t, "DELETE", v3+"/room_keys/version/"+v2, tok, nil)
	wantOK(t, "delete v2 again", s, out)
	s, out = call(t, "GET", v3+"/room_keys/version/"+v2, tok, nil)
	wantErr(t, "get deleted", s, out, 404, "M_NOT_FOUND")
	s, out = call(t, "DELETE", v3+"/room_keys/version/123456789", tok, nil)
	wantErr(t, "delete unknown", s, out, 404, "M_NOT_FOUND")
	s, out = call(t, "GET", v3+"/room_keys/version/abc", tok, nil)
	wantErr(t, "junk version", s, out, 404, "M_NOT_FOUND")
	s, out = call(t, "GET", v3+"/room_keys/version", tok, nil)
	if s != 200 || out["version"] != v1 || out["count"] != float64(1) {
		t.Fatalf("current after deleting v2: %d %v", s, out)
	}
}
