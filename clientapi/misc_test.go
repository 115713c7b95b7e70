package clientapi

import (
	"fmt"
	"net/url"
	"strconv"
	"testing"
	"time"
)

// Helpers for the extras tests (prefix ex).

// exV1 calls a /_matrix/client/v1 endpoint and checks status and errcode.
func exV1(u *rmUser, what, method, path string, status int, errcode string) map[string]any {
	u.t.Helper()
	got, out := call(u.t, method, u.base+"/_matrix/client/v1"+path, u.token, nil)
	if got != status || (errcode != "" && out["errcode"] != errcode) {
		u.t.Fatalf("%s: %s %s: got %d %v, want %d %s", what, method, path, got, out, status, errcode)
	}
	return out
}

// exSend sends an m.room.message with extra content fields.
func exSend(u *rmUser, roomID, evType string, content map[string]any) string {
	u.t.Helper()
	out := u.ok("send "+evType, "PUT", roomPath(roomID, "/send/"+evType+"/ex"+strconv.FormatInt(syTxn.Add(1), 10)), content)
	return fmt.Sprint(out["event_id"])
}

// exReply sends a message relating to parent with relType.
func exReply(u *rmUser, roomID, parent, relType, body string) string {
	u.t.Helper()
	return exSend(u, roomID, "m.room.message", map[string]any{"msgtype": "m.text", "body": body,
		"m.relates_to": map[string]any{"rel_type": relType, "event_id": parent}})
}

// exIDs lists the event_id of each event in a chunk.
func exIDs(chunk any) []string {
	var out []string
	for _, e := range syList(chunk) {
		out = append(out, fmt.Sprint(syObj(e)["event_id"]))
	}
	return out
}

func TestThirdPartyStubs(t *testing.T) {
	base := testServer(t)
	alice := newRMUser(t, base, "alice")
	out := alice.ok("3pid", "GET", "/account/3pid", nil)
	if l, ok := out["threepids"].([]any); !ok || len(l) != 0 {
		t.Errorf("3pid: %v", out)
	}
	if out := alice.ok("protocols", "GET", "/thirdparty/protocols", nil); len(out) != 0 {
		t.Errorf("protocols: %v", out)
	}
	anon := &rmUser{t: t, base: base}
	anon.expect("3pid without token", "GET", "/account/3pid", nil, 401, "M_MISSING_TOKEN")
}

func TestReportContent(t *testing.T) {
	base := testServer(t)
	alice := newRMUser(t, base, "alice")
	bob := newRMUser(t, base, "bob")
	room := alice.createRoom(map[string]any{"preset": "private_chat"})
	ev := alice.sendText(room, "r1", "bad words")

	alice.ok("report event", "POST", roomPath(room, "/report/"+url.PathEscape(ev)), map[string]any{"reason": "spam"})
	alice.ok("report event without reason", "POST", roomPath(room, "/report/"+url.PathEscape(ev)), map[string]any{})
	alice.expect("unknown event", "POST", roomPath(room, "/report/$nope"), map[string]any{}, 404, "M_NOT_FOUND")
	bob.expect("not joined", "POST", roomPath(room, "/report/"+url.PathEscape(ev)), map[string]any{}, 404, "M_NOT_FOUND")
	alice.expect("non-JSON", "POST", roomPath(room, "/report/"+url.PathEscape(ev)), "{", 400, "M_NOT_JSON")

	bob.ok("report room (not joined)", "POST", roomPath(room, "/report"), map[string]any{"reason": ""})
	bob.expect("report room without reason", "POST", roomPath(room, "/report"), map[string]any{}, 400, "M_BAD_JSON")
	bob.expect("report unknown room", "POST", roomPath("!nope:test.local", "/report"), map[string]any{"reason": "x"}, 404, "M_NOT_FOUND")
}

func TestTimestampToEvent(t *testing.T) {
	base := testServer(t)
	alice := newRMUser(t, base, "alice")
	bob := newRMUser(t, base, "bob")
	room := alice.createRoom(map[string]any{"preset": "private_chat"})
	var ids []string
	var tss []int64
	for i := range 3 {
		time.Sleep(5 * time.Millisecond)
		id := alice.sendText(room, fmt.Sprint("ts", i), fmt.Sprint("m", i))
		ev := alice.ok("event", "GET", roomPath(room, "/event/"+url.PathEscape(id)), nil)
		ids = append(ids, id)
		tss = append(tss, int64(ev["origin_server_ts"].(float64)))
	}
	path := func(ts int64, dir string) string {
		return roomPath(room, fmt.Sprintf("/timestamp_to_event?ts=%d&dir=%s", ts, dir))
	}
	for _, c := range []struct {
		ts   int64
		dir  string
		want string
	}{
		{tss[1], "f", ids[1]}, {tss[1], "b", ids[1]},
		{tss[1] + 1, "f", ids[2]}, {tss[1] + 1, "b", ids[1]},
		{tss[2] + 1, "b", ids[2]},
	} {
		out := exV1(alice, "timestamp", "GET", path(c.ts, c.dir), 200, "")
		if out["event_id"] != c.want || int64(out["origin_server_ts"].(float64)) > c.ts && c.dir == "b" {
			t.Errorf("ts %d dir %s: got %v, want %s", c.ts, c.dir, out, c.want)
		}
	}
	exV1(alice, "nothing later", "GET", path(tss[2]+60000, "f"), 404, "M_NOT_FOUND")
	exV1(alice, "nothing earlier", "GET", path(1, "b"), 404, "M_NOT_FOUND")
	exV1(alice, "missing ts", "GET", roomPath(room, "/timestamp_to_event?dir=f"), 400, "M_MISSING_PARAM")
	exV1(alice, "bad ts", "GET", roomPath(room, "/timestamp_to_event?ts=x&dir=f"), 400, "M_INVALID_PARAM")
	exV1(alice, "bad dir", "GET", roomPath(room, "/timestamp_to_event?ts=1&dir=x"), 400, "M_INVALID_PARAM")
	exV1(bob, "not a member", "GET", path(tss[1], "f"), 403, "M_FORBIDDEN")
}
