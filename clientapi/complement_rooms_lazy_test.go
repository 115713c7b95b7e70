package clientapi

import (
	"fmt"
	"testing"

	"github.com/tidwall/gjson"
)

// sytest tests/31sync/15lazy-members.pl (no Complement port yet): which
// membership events a lazy-loading /sync puts in the state section.

func crStateMembers(t *testing.T, res gjson.Result, roomID string, want ...string) {
	t.Helper()
	var got []string
	for _, ev := range res.Get("rooms.join." + crEsc(roomID) + ".state.events").Array() {
		if ev.Get("type").Str == "m.room.member" {
			got = append(got, ev.Get("state_key").Str)
		}
	}
	if fmt.Sprint(sortedCopy(got)) != fmt.Sprint(sortedCopy(want)) {
		t.Fatalf("state members: want %v, got %v", want, got)
	}
}

func sortedCopy(in []string) []string {
	out := append([]string{}, in...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func TestComplementLazyLoadingMembers(t *testing.T) {
	base := crServer(t)
	alice := crUser(t, base, "alice")
	bob := crUser(t, base, "bob")
	charlie := crUser(t, base, "charlie")
	dave := crUser(t, base, "dave")
	lazy := func(redundant bool) string {
		state := map[string]any{"lazy_load_members": true}
		if redundant {
			state["include_redundant_members"] = true
		}
		return alice.createFilter(t, map[string]any{"room": map[string]any{"state": state, "timeline": map[string]any{"limit": 10}}})
	}
	setup := func(t *testing.T, joiners ...*crClient) string {
		roomID := alice.createRoom(t, map[string]any{"preset": "public_chat"})
		alice.mustSyncUntil(t, crSyncReq{}, crJoinedTo(alice.UserID, roomID))
		alice.sendState(t, roomID, "m.room.name", "", map[string]any{"name": "A room name"})
		for _, c := range joiners {
			c.joinRoom(t, roomID)
		}
		return roomID
	}
	say := func(t *testing.T, c *crClient, roomID string, n int) {
		for i := 0; i < n; i++ {
			c.sendEvent(t, roomID, "m.room.message", crMsg(fmt.Sprint("Message ", i)))
		}
	}
	synced := func(t *testing.T, c *crClient, roomID string) {
		c.sendEventSynced(t, roomID, "m.room.message", crMsg("sentinel"))
	}

	t.Run("The only membership state included in an initial sync are for all the senders in the timeline", func(t *testing.T) {
		filter := lazy(false)
		roomID := setup(t, bob, charlie)
		say(t, bob, roomID, 10)
		say(t, charlie, roomID, 9)
		synced(t, charlie, roomID)
		res, _ := alice.mustSync(t, crSyncReq{Filter: filter})
		crStateMembers(t, res, roomID, charlie.UserID)
	})
	t.Run("The only membership state included in an incremental sync are for senders in the timeline", func(t *testing.T) {
		filter := lazy(false)
		roomID := setup(t, bob, charlie)
		say(t, bob, roomID, 9)
		synced(t, bob, roomID)
		res, next := alice.mustSync(t, crSyncReq{Filter: filter})
		crStateMembers(t, res, roomID, bob.UserID)
		synced(t, charlie, roomID)
		res, _ = alice.mustSync(t, crSyncReq{Filter: filter, Since: next})
		crStateMembers(t, res, roomID, charlie.UserID)
	})
	t.Run("The only membership state included in a gapped incremental sync are for senders in the timeline", func(t *testing.T) {
		filter := lazy(false)
		roomID := setup(t, bob, charlie, dave)
		say(t, bob, roomID, 9)
		synced(t, bob, roomID)
		res, next := alice.mustSync(t, crSyncReq{Filter: filter})
		crStateMembers(t, res, roomID, bob.UserID)
		say(t, charlie, roomID, 10)
		say(t, dave, roomID, 9)
		synced(t, dave, roomID)
		res, _ = alice.mustSync(t, crSyncReq{Filter: filter, Since: next})
		crStateMembers(t, res, roomID, dave.UserID)
	})
	for _, redundant := range []bool{false, true} {
		name := "We don't send redundant membership state across incremental syncs by default"
		if redundant {
			name = "We do send redundant membership state across incremental syncs if asked"
		}
		t.Run(name, func(t *testing.T) {
			filter := lazy(redundant)
			roomID := setup(t, bob, charlie)
			say(t, bob, roomID, 10)
			say(t, charlie, roomID, 4)
			synced(t, charlie, roomID)
			res, next := alice.mustSync(t, crSyncReq{Filter: filter})
			crStateMembers(t, res, roomID, bob.UserID, charlie.UserID)
			synced(t, bob, roomID)
			synced(t, charlie, roomID)
			res, _ = alice.mustSync(t, crSyncReq{Filter: filter, Since: next})
			if redundant {
				crStateMembers(t, res, roomID, bob.UserID, charlie.UserID)
			} else {
				crStateMembers(t, res, roomID)
			}
		})
	}
}

// sytest tests/31sync/16room-summary.pl.
func TestComplementRoomSummary(t *testing.T) {
	base := crServer(t)
	alice := crUser(t, base, "alice")
	var users []*crClient
	for i := 1; i <= 5; i++ {
		users = append(users, crUser(t, base, fmt.Sprint("user", i)))
	}
	filter := alice.createFilter(t, map[string]any{"room": map[string]any{"state": map[string]any{"lazy_load_members": true}}})
	summary := func(t *testing.T, roomID string) string {
		res, _ := alice.mustSync(t, crSyncReq{Filter: filter})
		return res.Get("rooms.join." + crEsc(roomID) + ".summary").Raw
	}
	for _, tc := range []struct {
		name    string
		named   bool
		joiners []*crClient
		want    string
	}{
		{"Unnamed room comes with a name summary", false, users[:2],
			fmt.Sprintf(`{"m.heroes":["%s","%s"],"m.joined_member_count":3,"m.invited_member_count":0}`, users[0].UserID, users[1].UserID)},
		{"Named room comes with just joined member count summary", true, users[:2], `{"m.joined_member_count":3,"m.invited_member_count":0}`},
		{"Room summary only has 5 heroes", false, users, fmt.Sprintf(`{"m.heroes":["%s","%s","%s","%s","%s"],"m.joined_member_count":6,"m.invited_member_count":0}`,
			users[0].UserID, users[1].UserID, users[2].UserID, users[3].UserID, users[4].UserID)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			roomID := alice.createRoom(t, map[string]any{"preset": "public_chat"})
			if tc.named {
				alice.sendState(t, roomID, "m.room.name", "", map[string]any{"name": "A room name"})
			}
			for _, c := range tc.joiners {
				c.joinRoom(t, roomID)
			}
			if got := summary(t, roomID); !gjsonEqual(got, tc.want) {
				t.Fatalf("summary: want %s, got %s", tc.want, got)
			}
		})
	}
}

// gjsonEqual compares two JSON objects key by key, ignoring key order.
func gjsonEqual(a, b string) bool {
	ma, mb := gjson.Parse(a).Map(), gjson.Parse(b).Map()
	if len(ma) != len(mb) {
		return false
	}
	for k, v := range ma {
		if w, ok := mb[k]; !ok || v.Raw != w.Raw {
			return false
		}
	}
	return true
}
