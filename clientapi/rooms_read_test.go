package clientapi

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// pageAll follows /messages from an optional token until no end token is
// given, returning the event IDs and message bodies in the order served.
func pageAll(u *rmUser, roomID, dir, from, extra string) (ids, bodies []string) {
	u.t.Helper()
	for range 1000 {
		q := "?dir=" + dir + "&limit=7" + extra
		if from != "" {
			q += "&from=" + url.QueryEscape(from)
		}
		out := u.ok("page", "GET", roomPath(roomID, "/messages"+q), nil)
		if from != "" && out["start"] != from {
			u.t.Fatalf("start %v, want the from token %s", out["start"], from)
		}
		chunk := out["chunk"].([]any)
		if len(chunk) > 7 {
			u.t.Fatalf("chunk of %d events with limit 7", len(chunk))
		}
		for _, ev := range chunk {
			e := ev.(map[string]any)
			ids = append(ids, e["event_id"].(string))
			if b, ok := e["content"].(map[string]any)["body"]; ok {
				bodies = append(bodies, fmt.Sprint(b))
			}
		}
		end, ok := out["end"].(string)
		if !ok {
			return ids, bodies
		}
		from = end
	}
	u.t.Fatal("pagination did not end")
	return nil, nil
}

func TestMessagesPaging(t *testing.T) {
	base := testServer(t)
	alice := newRMUser(t, base, "alice")
	room := alice.createRoom(map[string]any{"preset": "public_chat"})
	var want []string
	for i := range 120 {
		body := "m" + strconv.Itoa(i)
		alice.sendText(room, "t"+strconv.Itoa(i), body)
		want = append(want, body)
	}
	backIDs, backBodies := pageAll(alice, room, "b", "", "")
	slices.Reverse(backBodies)
	if fmt.Sprint(backBodies) != fmt.Sprint(want) {
		t.Fatalf("dir=b bodies (reversed) = %v", backBodies)
	}
	fwdIDs, fwdBodies := pageAll(alice, room, "f", "", "")
	if fmt.Sprint(fwdBodies) != fmt.Sprint(want) {
		t.Fatalf("dir=f bodies = %v", fwdBodies)
	}
	slices.Reverse(backIDs)
	if fmt.Sprint(backIDs) != fmt.Sprint(fwdIDs) || len(fwdIDs) < 120 {
		t.Fatalf("both directions should serve the same %d events once each (got %d and %d)", len(fwdIDs), len(backIDs), len(fwdIDs))
	}
	if first := alice.ok("first", "GET", roomPath(room, "/event/"+url.PathEscape(fwdIDs[0])), nil); first["type"] != "m.room.create" {
		t.Errorf("dir=f without from should start at the create event, got %v", first["type"])
	}

	// Filtered paging sees only messages; a filtered page stays within limit.
	_, filtered := pageAll(alice, room, "b", "", "&filter="+url.QueryEscape(`{"types":["m.room.message"],"not_senders":["@x:y"]}`))
	if len(filtered) != 120 {
		t.Fatalf("filtered paging found %d messages", len(filtered))
	}
	// A sync token "s<P>_<eph>" is the boundary P+1: equal to "t<P+1>".
	mid := alice.ok("context", "GET", roomPath(room, "/context/"+url.PathEscape(fwdIDs[60])+"?limit=0"), nil)
	endTok := mid["end"].(string)
	boundary, _ := strconv.ParseInt(strings.TrimPrefix(endTok, "t"), 10, 64)
	syncTok := "s" + strconv.FormatInt(boundary-1, 10) + "_0"
	_, fromEnd := pageAll(alice, room, "b", endTok, "")
	_, fromSync := pageAll(alice, room, "b", syncTok, "")
	if len(fromEnd) == 0 || fmt.Sprint(fromEnd) != fmt.Sprint(fromSync) {
		t.Fatalf("t token and sync token disagree: %d vs %d events", len(fromEnd), len(fromSync))
	}
	// 'to' stops the walk: forward from the start to mid gives events 0..60.
	toIDs, _ := pageAll(alice, room, "f", "", "&to="+url.QueryEscape(endTok))
	if fmt.Sprint(toIDs) != fmt.Sprint(fwdIDs[:61]) {
		t.Fatalf("dir=f to=mid served %d events, want 61", len(toIDs))
	}
	lazy := alice.ok("lazy", "GET", roomPath(room, "/messages?dir=b&limit=3&filter="+url.QueryEscape(`{"lazy_load_members":true}`)), nil)
	state, _ := lazy["state"].([]any)
	if len(state) != 1 || state[0].(map[string]any)["state_key"] != alice.id {
		t.Errorf("lazy-loaded state = %v", lazy["state"])
	}

	outsider := newRMUser(t, base, "eve")
	errs := []struct {
		name, query string
		user        *rmUser
		status      int
		errcode     string
	}{
		{"no dir", "", alice, 400, "M_INVALID_PARAM"},
		{"bad dir", "?dir=x", alice, 400, "M_INVALID_PARAM"},
		{"bad limit", "?dir=b&limit=-1", alice, 400, "M_INVALID_PARAM"},
		{"bad from", "?dir=b&from=zzz", alice, 400, "M_INVALID_PARAM"},
		{"bad to", "?dir=b&to=s_", alice, 400, "M_INVALID_PARAM"},
		{"bad filter", "?dir=b&filter=%7Bnope", alice, 400, "M_INVALID_PARAM"},
		{"outsider", "?dir=b", outsider, 403, "M_FORBIDDEN"},
	}
	for _, e := range errs {
		e.user.expect(e.name, "GET", roomPath(room, "/messages"+e.query), nil, e.status, e.errcode)
	}
}

func TestEventAndContext(t *testing.T) {
	base := testServer(t)
	alice := newRMUser(t, base, "alice")
	room := alice.createRoom(map[string]any{"preset": "public_chat", "name": "ctx"})
	var ids []string
	for i := range 20 {
		ids = append(ids, alice.sendText(room, "c"+strconv.Itoa(i), "c"+strconv.Itoa(i)))
	}
	out := alice.ok("context", "GET", roomPath(room, "/context/"+url.PathEscape(ids[10])+"?limit=4"), nil)
	idsOf := func(list any) []string {
		var got []string
		for _, ev := range list.([]any) {
			got = append(got, ev.(map[string]any)["event_id"].(string))
		}
		return got
	}
	if out["event"].(map[string]any)["event_id"] != ids[10] {
		t.Fatalf("context event = %v", out["event"])
	}
	if got := idsOf(out["events_before"]); fmt.Sprint(got) != fmt.Sprint([]string{ids[9], ids[8]}) {
		t.Errorf("events_before = %v, want newest first [9 8]", got)
	}
	if got := idsOf(out["events_after"]); fmt.Sprint(got) != fmt.Sprint([]string{ids[11], ids[12]}) {
		t.Errorf("events_after = %v, want [11 12]", got)
	}
	hasName := false
	for _, ev := range out["state"].([]any) {
		hasName = hasName || ev.(map[string]any)["type"] == "m.room.name"
	}
	if !hasName {
		t.Errorf("context state lacks m.room.name: %v", out["state"])
	}
	// start and end continue exactly where the context stopped.
	back := alice.ok("from start", "GET", roomPath(room, "/messages?dir=b&limit=1&from="+url.QueryEscape(out["start"].(string))), nil)
	if got := idsOf(back["chunk"]); len(got) != 1 || got[0] != ids[7] {
		t.Errorf("dir=b from context start = %v, want [%s]", got, ids[7])
	}
	fwd := alice.ok("from end", "GET", roomPath(room, "/messages?dir=f&limit=1&from="+url.QueryEscape(out["end"].(string))), nil)
	if got := idsOf(fwd["chunk"]); len(got) != 1 || got[0] != ids[13] {
		t.Errorf("dir=f from context end = %v, want [%s]", got, ids[13])
	}
	ev := alice.ok("event", "GET", roomPath(room, "/event/"+url.PathEscape(ids[3])), nil)
	if ev["room_id"] != room || ev["sender"] != alice.id || ev["content"].(map[string]any)["body"] != "c3" {
		t.Errorf("GET event = %v", ev)
	}
	other := alice.createRoom(map[string]any{})
	outsider := newRMUser(t, base, "eve")
	errs := []struct {
		name, path string
		user       *rmUser
		status     int
		errcode    string
	}{
		{"unknown event", roomPath(room, "/event/$nope"), alice, 404, "M_NOT_FOUND"},
		{"event of another room", roomPath(other, "/event/"+url.PathEscape(ids[3])), alice, 404, "M_NOT_FOUND"},
		{"outsider event", roomPath(room, "/event/"+url.PathEscape(ids[3])), outsider, 404, "M_NOT_FOUND"},
		{"unknown context", roomPath(room, "/context/$nope"), alice, 404, "M_NOT_FOUND"},
		{"bad context limit", roomPath(room, "/context/"+url.PathEscape(ids[3])+"?limit=x"), alice, 400, "M_INVALID_PARAM"},
		{"outsider context", roomPath(room, "/context/"+url.PathEscape(ids[3])), outsider, 403, "M_FORBIDDEN"},
	}
	for _, e := range errs {
		e.user.expect(e.name, "GET", e.path, nil, e.status, e.errcode)
	}
}
