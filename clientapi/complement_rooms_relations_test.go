package clientapi

import (
	"fmt"
	"net/url"
	"testing"

	"github.com/tidwall/gjson"
)

// Complement: tests/csapi/room_relations_test.go and room_threads_test.go.

func crSendTxn(t *testing.T, c *crClient, roomID, evType, txn string, content map[string]any) string {
	t.Helper()
	return c.mustDo(t, "PUT", crV3("rooms", roomID, "send", evType, txn), content, nil).Get("event_id").Str
}

func crThreadReply(body, root string) map[string]any {
	return map[string]any{"msgtype": "m.text", "body": body,
		"m.relates_to": map[string]any{"event_id": root, "rel_type": "m.thread"}}
}

func TestComplementRelations(t *testing.T) {
	base := crServer(t)
	alice := crUser(t, base, "alice")
	roomID := alice.createRoom(t, map[string]any{"preset": "public_chat"})
	_, token := alice.mustSync(t, crSyncReq{})
	root := crSendTxn(t, alice, roomID, "m.room.message", "txn-1", crMsg("root"))
	thread := crSendTxn(t, alice, roomID, "m.room.message", "txn-2", crThreadReply("reply", root))
	dummy := crSendTxn(t, alice, roomID, "m.dummy", "txn-3", map[string]any{"m.relates_to": map[string]any{"event_id": root, "rel_type": "m.thread"}})
	edit := crSendTxn(t, alice, roomID, "m.room.message", "txn-4", map[string]any{"msgtype": "m.text", "body": "* edited root",
		"m.new_content": crMsg("edited root"), "m.relates_to": map[string]any{"event_id": root, "rel_type": "m.replace"}})
	alice.mustSyncUntil(t, crSyncReq{Since: token}, crTimelineHasEventID(roomID, edit))

	for _, tc := range []struct {
		path []string
		want []string
	}{
		{[]string{"rooms", roomID, "relations", root}, []string{thread, dummy, edit}},
		{[]string{"rooms", roomID, "relations", root, "m.thread"}, []string{thread, dummy}},
		{[]string{"rooms", roomID, "relations", root, "m.thread", "m.room.message"}, []string{thread}},
	} {
		res := alice.mustDo(t, "GET", crV1(tc.path...), nil, nil)
		crCheckOff(t, fmt.Sprint(tc.path[3:]), res.Get("chunk"), tc.want, crEventID)
	}
}

func TestComplementRelationsPagination(t *testing.T) {
	base := crServer(t)
	alice := crUser(t, base, "alice")
	roomID := alice.createRoom(t, map[string]any{"preset": "public_chat"})
	_, token := alice.mustSync(t, crSyncReq{})
	root := crSendTxn(t, alice, roomID, "m.room.message", "txn-1", crMsg("root"))
	var ids []string
	for i := 0; i < 10; i++ {
		ids = append(ids, crSendTxn(t, alice, roomID, "m.room.message", fmt.Sprintf("txn-%d", 2+i), crThreadReply(fmt.Sprintf("reply %d", i), root)))
	}
	alice.mustSyncUntil(t, crSyncReq{Since: token}, crTimelineHasEventID(roomID, ids[9]))
	page := func(q url.Values, want ...string) gjson.Result {
		t.Helper()
		res := alice.mustDo(t, "GET", crV1("rooms", roomID, "relations", root), nil, q)
		crCheckOff(t, "page "+q.Encode(), res.Get("chunk"), want, crEventID)
		return res
	}
	res := page(url.Values{"limit": {"3"}}, ids[9], ids[8], ids[7])
	page(url.Values{"limit": {"3"}, "from": {res.Get("next_batch").Str}}, ids[6], ids[5], ids[4])
	res = page(url.Values{"limit": {"3"}, "dir": {"f"}}, ids[0], ids[1], ids[2])
	page(url.Values{"limit": {"3"}, "dir": {"f"}, "from": {res.Get("next_batch").Str}}, ids[3], ids[4], ids[5])
}

func TestComplementRelationsPaginationSync(t *testing.T) {
	base := crServer(t)
	alice := crUser(t, base, "alice")
	roomID := alice.createRoom(t, map[string]any{"preset": "public_chat"})
	_, token := alice.mustSync(t, crSyncReq{})
	root := crSendTxn(t, alice, roomID, "m.room.message", "txn-1", crMsg("root"))
	last := ""
	for i := 0; i < 5; i++ {
		// Complement reuses txn-1 here, which answers with the root itself.
		last = crSendTxn(t, alice, roomID, "m.room.message", fmt.Sprintf("txn-%d", 1+i), crThreadReply(fmt.Sprintf("reply %d", i), root))
	}
	next := alice.mustSyncUntil(t, crSyncReq{Since: token}, crTimelineHasEventID(roomID, last))
	var ids []string
	for i := 0; i < 5; i++ {
		ids = append(ids, crSendTxn(t, alice, roomID, "m.room.message", fmt.Sprintf("txn-%d", 6+i), crThreadReply(fmt.Sprintf("reply %d", i), root)))
	}
	alice.mustSyncUntil(t, crSyncReq{Since: token}, crTimelineHasEventID(roomID, ids[4]))
	q := url.Values{"limit": {"3"}, "from": {next}, "dir": {"f"}}
	res := alice.mustDo(t, "GET", crV1("rooms", roomID, "relations", root), nil, q)
	crCheckOff(t, "first page since the sync", res.Get("chunk"), ids[:3], crEventID)
	q.Set("from", res.Get("next_batch").Str)
	res = alice.mustDo(t, "GET", crV1("rooms", roomID, "relations", root), nil, q)
	crCheckOff(t, "second page", res.Get("chunk"), ids[3:], crEventID)
}

func TestComplementThreadsEndpoint(t *testing.T) {
	base := crServer(t)
	alice := crUser(t, base, "alice")
	roomID := alice.createRoom(t, map[string]any{"preset": "public_chat"})
	_, token := alice.mustSync(t, crSyncReq{})
	thread1 := crSendTxn(t, alice, roomID, "m.room.message", "txn-1", crMsg("Thread 1 Root"))
	thread2 := crSendTxn(t, alice, roomID, "m.room.message", "txn-2", crMsg("Thraed 2 Root"))
	reply1 := crSendTxn(t, alice, roomID, "m.room.message", "txn-3", crThreadReply("Thread 1 Reply", thread1))
	reply2 := crSendTxn(t, alice, roomID, "m.room.message", "txn-4", crThreadReply("Thread 2 Reply", thread2))
	alice.mustSyncUntil(t, crSyncReq{Since: token}, crTimelineHasEventID(roomID, reply2))
	check := func(want ...string) {
		t.Helper()
		res := alice.mustDo(t, "GET", crV1("rooms", roomID, "threads"), nil, nil)
		var got []string
		for _, v := range res.Get("chunk").Array() {
			got = append(got, v.Get("event_id").Str+"|"+v.Get(`unsigned.m\.relations.m\.thread.latest_event.event_id`).Str)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("threads: want %v, got %v", want, got)
		}
	}
	check(thread2+"|"+reply2, thread1+"|"+reply1)
	reply3 := crSendTxn(t, alice, roomID, "m.room.message", "txn-5", crThreadReply("Thread 1 Reply 2", thread1))
	alice.mustSyncUntil(t, crSyncReq{Since: token}, crTimelineHasEventID(roomID, reply3))
	check(thread1+"|"+reply3, thread2+"|"+reply2)
}
