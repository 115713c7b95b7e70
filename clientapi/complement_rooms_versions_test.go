package clientapi

import (
	"fmt"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/julienschmidt/httprouter"
	"github.com/tidwall/gjson"

	"github.com/ganglion/ganglion/internal/matrixhttp"
)

// Complement: tests/csapi/room_versions_test.go, its local-user cases, for
// every room version this server creates (v1 and v2 are not among them).

func TestComplementRoomVersions(t *testing.T) {
	base, api := crServerAPI(t)
	alice := crUser(t, base, "alice")
	bob := crUser(t, base, "bob")
	// POST /rooms/{roomId}/redact/{eventId} is not in the route table yet
	// (see the report): serve it beside the API for this test.
	router := httprouter.New()
	router.POST("/_matrix/client/v3/rooms/:roomId/redact/:eventId", httprouter.Handle(api.authed(matrixhttp.UnescapeParams(api.redactNoTxn))))
	legacy := httptest.NewServer(matrixhttp.RouteEscaped(router))
	defer legacy.Close()

	createSynced := func(t *testing.T, body map[string]any) string {
		roomID := alice.createRoom(t, body)
		alice.mustSyncUntil(t, crSyncReq{}, crJoinedTo(alice.UserID, roomID))
		return roomID
	}
	joinSynced := func(t *testing.T, c *crClient, roomID, target string) {
		c.joinRoom(t, target)
		c.mustSyncUntil(t, crSyncReq{}, crJoinedTo(c.UserID, roomID))
	}
	hello := crMsg("hello world")
	seesOnly := func(t *testing.T, c *crClient, roomID, since, eventID string) {
		c.mustSyncUntil(t, crSyncReq{Since: since}, crTimelineHas(roomID, func(ev gjson.Result) bool {
			return ev.Get("event_id").Str == eventID
		}))
	}

	for _, v := range []string{"3", "4", "5", "6", "7", "8", "9", "10", "11", "12"} {
		t.Run(fmt.Sprintf("User can create and send/receive messages in a room with version %s", v), func(t *testing.T) {
			roomID := createSynced(t, map[string]any{"room_version": v})
			res, _ := alice.mustSync(t, crSyncReq{})
			if ev0 := res.Get("rooms.join." + crEsc(roomID) + ".timeline.events.0"); ev0.Get("type").Str != "m.room.create" {
				t.Fatalf("first event: %s", ev0.Raw)
			}
			alice.sendEventSynced(t, roomID, "m.room.message", hello)
		})
		t.Run(fmt.Sprintf("local user can join room with version %s", v), func(t *testing.T) {
			alias := "roomAlias_Vlocal" + v
			roomID := createSynced(t, map[string]any{"room_version": v, "room_alias_name": alias, "preset": "public_chat"})
			joinSynced(t, bob, roomID, "#"+alias+":test.local")
			_, next := bob.mustSync(t, crSyncReq{})
			seesOnly(t, bob, roomID, next, alice.sendEventSynced(t, roomID, "m.room.message", hello))
		})
		t.Run(fmt.Sprintf("User can invite local user to room with version %s", v), func(t *testing.T) {
			roomID := createSynced(t, map[string]any{"room_version": v, "preset": "private_chat"})
			alice.inviteRoom(t, roomID, bob.UserID)
			bob.mustSyncUntil(t, crSyncReq{}, crInvitedTo(bob.UserID, roomID))
			joinSynced(t, bob, roomID, roomID)
			_, next := bob.mustSync(t, crSyncReq{})
			seesOnly(t, bob, roomID, next, alice.sendEventSynced(t, roomID, "m.room.message", hello))
		})
		t.Run(fmt.Sprintf("Can redact with POST in room version %s", v), func(t *testing.T) {
			roomID := createSynced(t, map[string]any{"room_version": v, "invite": []string{bob.UserID}})
			joinSynced(t, bob, roomID, roomID)
			eventID := bob.sendEventSynced(t, roomID, "m.room.message", hello)
			poster := &crClient{base: legacy.URL, UserID: bob.UserID, token: bob.token}
			redactID := poster.mustDo(t, "POST", crV3("rooms", roomID, "redact", eventID), []byte("{}"), nil).Get("event_id").Str
			alice.mustSyncUntil(t, crSyncReq{}, crTimelineHasEventID(roomID, redactID))
			evs := alice.mustDo(t, "GET", crV3("rooms", roomID, "messages"), nil, url.Values{"dir": {"b"}}).Get("chunk").Array()
			if len(evs) < 2 || evs[0].Get("event_id").Str != redactID || evs[0].Get("redacts").Str != eventID ||
				evs[1].Get("event_id").Str != eventID || evs[1].Get("unsigned.redacted_by").Str != redactID {
				t.Fatalf("newest events: %v", evs)
			}
		})
	}
}
