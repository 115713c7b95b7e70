package federation

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/ganglion/ganglion/rooms"
)

func q(s string) string { return url.PathEscape(s) }

// chainOf sends n messages of bob's, one transaction each; their IDs.
func (r *fedRoom) chainOf(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	for i := range n {
		evID, raw := r.message(t, "chain", func(s *evSpec) { s.content = map[string]any{"body": i} })
		wantAccepted(t, r.f.send(t, r.n, "chain-"+evID, []json.RawMessage{raw}), evID)
		out = append(out, evID)
	}
	return out
}

func idsOf(list any) []string {
	var out []string
	for _, v := range list.([]any) {
		switch v := v.(type) {
		case string:
			out = append(out, v)
		case map[string]any:
			raw, _ := json.Marshal(v)
			out = append(out, gjson.GetBytes(raw, "content.body").String())
		}
	}
	return out
}

func wantStatus(t *testing.T, what string, status int, body map[string]any, wantStatus int, errcode string) {
	t.Helper()
	if status != wantStatus || (errcode != "" && body["errcode"] != errcode) {
		t.Errorf("%s: %d %v, want %d %s", what, status, body, wantStatus, errcode)
	}
}

func TestServeEventsToAMemberServer(t *testing.T) {
	r := newFedRoom(t)
	chain := r.chainOf(t, 3)
	f, n := r.f, r.n

	status, body := f.request(t, n, get, fedV1+"/event/"+q(chain[0]), nil)
	if status != http.StatusOK || len(body["pdus"].([]any)) != 1 || body["origin"] != n.name {
		t.Fatalf("event: %d %v", status, body)
	}
	status, body = f.request(t, n, get, fedV1+"/event/"+q("$nope"), nil)
	wantStatus(t, "unknown event", status, body, http.StatusNotFound, "M_NOT_FOUND")

	status, body = f.request(t, n, get, fedV1+"/state_ids/"+q(r.roomID)+"?event_id="+q(chain[1]), nil)
	if status != http.StatusOK {
		t.Fatalf("state_ids: %d %v", status, body)
	}
	stateIDs := idsOf(body["pdu_ids"])
	if !slices.Contains(stateIDs, r.join) || len(idsOf(body["auth_chain_ids"])) == 0 {
		t.Errorf("state_ids %v lacks bob's join or an auth chain", body)
	}
	status, body = f.request(t, n, get, fedV1+"/state/"+q(r.roomID)+"?event_id="+q(chain[1]), nil)
	if status != http.StatusOK || len(body["pdus"].([]any)) != len(stateIDs) {
		t.Errorf("state: %d, %d PDUs, want %d", status, len(body["pdus"].([]any)), len(stateIDs))
	}
	status, body = f.request(t, n, get, fedV1+"/state_ids/"+q(r.roomID), nil)
	wantStatus(t, "state_ids without event_id", status, body, http.StatusBadRequest, "M_MISSING_PARAM")

	status, body = f.request(t, n, get, fedV1+"/event_auth/"+q(r.roomID)+"/"+q(chain[0]), nil)
	if status != http.StatusOK || len(body["auth_chain"].([]any)) < 2 {
		t.Errorf("event_auth: %d %v", status, body)
	}

	// A room ID in the path that is not the event's room.
	other := mustCreateRoom(t, n.rs, rooms.CreateRoomRequest{Creator: r.alice, Preset: "public_chat"})
	status, body = f.request(t, n, get, fedV1+"/event_auth/"+q(other)+"/"+q(chain[0]), nil)
	wantStatus(t, "event_auth, other room (fake not in it)", status, body, http.StatusForbidden, "M_FORBIDDEN")
	r2 := &fedRoom{n: n, f: f, roomID: other, alice: r.alice, bob: r.bob}
	j2, raw := r2.f.build(t, n, other, evSpec{sender: r.bob, typ: "m.room.member", stateKey: sk(r.bob), content: map[string]any{"membership": "join"}})
	wantAccepted(t, f.send(t, n, "join2", []json.RawMessage{raw}), j2)
	status, body = f.request(t, n, get, fedV1+"/event_auth/"+q(other)+"/"+q(chain[0]), nil)
	wantStatus(t, "event_auth, event of another room", status, body, http.StatusNotFound, "M_NOT_FOUND")
	status, body = f.request(t, n, get, fedV1+"/state_ids/"+q(other)+"?event_id="+q(chain[0]), nil)
	wantStatus(t, "state_ids, event of another room", status, body, http.StatusNotFound, "M_NOT_FOUND")

	// backfill: the events named and those before them, deepest first.
	status, body = f.request(t, n, get, fedV1+"/backfill/"+q(r.roomID)+"?v="+q(chain[2])+"&limit=3", nil)
	if got := idsOf(body["pdus"]); status != http.StatusOK || !slices.Equal(got, []string{"2", "1", "0"}) {
		t.Errorf("backfill: %d %v", status, got)
	}
	status, body = f.request(t, n, get, fedV1+"/backfill/"+q(r.roomID)+"?v="+q(chain[2]), nil)
	wantStatus(t, "backfill without limit", status, body, http.StatusBadRequest, "M_INVALID_PARAM")

	status, body = f.request(t, n, post, fedV1+"/get_missing_events/"+q(r.roomID),
		map[string]any{"earliest_events": []string{chain[0]}, "latest_events": []string{chain[2]}, "limit": 10})
	if got := idsOf(body["events"]); status != http.StatusOK || !slices.Equal(got, []string{"1"}) {
		t.Errorf("get_missing_events: %d %v, want only the event between", status, got)
	}
	status, body = f.request(t, n, post, fedV1+"/get_missing_events/"+q(r.roomID), map[string]any{"limit": 10})
	wantStatus(t, "get_missing_events without lists", status, body, http.StatusBadRequest, "M_BAD_JSON")
}

func TestServeRefusesServersNotInTheRoom(t *testing.T) {
	r := newFedRoom(t)
	outsider := newFakeServer(t, r.pki)
	chain := r.chainOf(t, 1)
	for _, path := range []string{
		fedV1 + "/event/" + q(chain[0]),
		fedV1 + "/state_ids/" + q(r.roomID) + "?event_id=" + q(chain[0]),
		fedV1 + "/event_auth/" + q(r.roomID) + "/" + q(chain[0]),
		fedV1 + "/backfill/" + q(r.roomID) + "?v=" + q(chain[0]) + "&limit=5",
	} {
		status, body := outsider.request(t, r.n, get, path, nil)
		wantStatus(t, path, status, body, http.StatusForbidden, "M_FORBIDDEN")
	}
	status, body := outsider.request(t, r.n, get, fedV1+"/state_ids/"+q("!nowhere:x")+"?event_id="+q(chain[0]), nil)
	wantStatus(t, "unknown room", status, body, http.StatusNotFound, "M_NOT_FOUND")

	// The ACL shuts out even a member server.
	r.localSend(t, "m.room.server_acl", sk(""), `{"allow":["*"],"deny":["localhost"]}`)
	status, body = r.f.request(t, r.n, get, fedV1+"/state_ids/"+q(r.roomID)+"?event_id="+q(chain[0]), nil)
	wantStatus(t, "denied by ACL", status, body, http.StatusForbidden, "M_FORBIDDEN")
}

// TestServeRedactsWhatHistoryVisibilityHides: with history visibility
// "joined", what was said before the fake server's user joined is served
// redacted.
func TestServeRedactsWhatHistoryVisibilityHides(t *testing.T) {
	pki := newTestPKI(t)
	n := newHomeserver(t, pki)
	f := newFakeServer(t, pki)
	alice := "@alice:" + n.name
	roomID := mustCreateRoom(t, n.rs, rooms.CreateRoomRequest{Creator: alice, Preset: "public_chat",
		InitialState: []rooms.StateEventSpec{{Type: "m.room.history_visibility", Content: json.RawMessage(`{"history_visibility":"joined"}`)}}})
	secret, err := n.rs.Send(t.Context(), rooms.SendRequest{RoomID: roomID, EventSpec: rooms.EventSpec{
		Type: "m.room.message", Sender: alice, Content: json.RawMessage(`{"msgtype":"m.text","body":"secret"}`)}})
	if err != nil {
		t.Fatal(err)
	}
	bob := f.user("bob")
	join, raw := f.build(t, n, roomID, evSpec{sender: bob, typ: "m.room.member", stateKey: sk(bob), content: map[string]any{"membership": "join"}})
	wantAccepted(t, f.send(t, n, "join", []json.RawMessage{raw}), join)

	status, body := f.request(t, n, get, fedV1+"/event/"+q(secret), nil)
	pdu0, _ := json.Marshal(body["pdus"].([]any)[0])
	if status != http.StatusOK || gjson.GetBytes(pdu0, "content").Raw != "{}" {
		t.Errorf("secret served as %d %s, want its redacted form", status, pdu0)
	}
	status, body = f.request(t, n, get, fedV1+"/backfill/"+q(roomID)+"?v="+q(join)+"&limit=2", nil)
	pdus, _ := json.Marshal(body["pdus"])
	if status != http.StatusOK || gjson.GetBytes(pdus, "1.content").Raw != "{}" || gjson.GetBytes(pdus, "0.content.membership").Str != "join" {
		t.Errorf("backfill %d %s, want bob's join whole and the secret redacted", status, pdus)
	}
}
