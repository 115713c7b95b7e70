package clientapi

import (
	"context"
	"encoding/json"
	"slices"
	"time"

	"github.com/tidwall/gjson"

	"github.com/ganglion/ganglion/fsm"
)

// A user joining an upgraded room (its m.room.create names a predecessor)
// takes their per-room settings along, as Synapse's
// copy_user_state_on_room_upgrade does: room-specific push rules, the old
// room's m.tag entry, and m.direct listings of the old room.

// upgradeFollowTimeout bounds the copy, which runs after the join succeeded
// even when the client stops waiting.
const upgradeFollowTimeout = 10 * time.Second

// followUpgradeOnJoin copies userID's settings from roomID's predecessor.
// Best effort: failures are logged, never reported to the client.
func (a *API) followUpgradeOnJoin(ctx context.Context, userID, roomID string) {
	oldRoomID := ""
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		if ev, err := rt.StateEvent(roomID, "m.room.create", ""); err == nil {
			oldRoomID = gjson.GetBytes(ev.PDU, "content.predecessor.room_id").Str
		}
		return nil
	})
	if oldRoomID == "" || oldRoomID == roomID {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), upgradeFollowTimeout)
	defer cancel()
	logFail := func(step string, err error) {
		if err != nil {
			a.log.Warn("copying settings to an upgraded room failed", "step", step, "user", userID,
				"old_room", oldRoomID, "new_room", roomID, "error", err)
		}
	}
	a.copyRoomPushRulesFor(ctx, oldRoomID, roomID, userID, logFail)
	a.copyRoomTags(ctx, userID, oldRoomID, roomID, logFail)
	a.copyDirectListing(ctx, userID, oldRoomID, roomID, logFail)
}

// copyRoomTags adds the old room's tags to the new room's m.tag entry
// (tags already set there win).
func (a *API) copyRoomTags(ctx context.Context, userID, oldRoomID, newRoomID string, logFail func(string, error)) {
	_, oldTags := a.readTags(userID, oldRoomID)
	if len(oldTags) == 0 {
		return
	}
	content, tags := a.readTags(userID, newRoomID)
	changed := false
	for tag, info := range oldTags {
		if _, set := tags[tag]; !set {
			tags[tag], changed = info, true
		}
	}
	if !changed {
		return
	}
	rawTags, err := json.Marshal(tags)
	if err != nil {
		logFail("encode tags", err)
		return
	}
	content["tags"] = rawTags
	raw, err := json.Marshal(content)
	if err != nil {
		logFail("encode tags", err)
		return
	}
	_, _, err = a.node.Propose(ctx, fsm.OpAccountDataPut,
		fsm.AccountDataPut{UserID: userID, RoomID: newRoomID, Type: tagEventType, Content: raw})
	logFail("copy tags", err)
}

// copyDirectListing adds the new room next to the old one in each of the
// user's m.direct lists that names it.
func (a *API) copyDirectListing(ctx context.Context, userID, oldRoomID, newRoomID string, logFail func(string, error)) {
	var direct map[string]json.RawMessage
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		if rec, err := rt.AccountData(userID, "", "m.direct"); err == nil {
			_ = json.Unmarshal(rec.Content, &direct)
		}
		return nil
	})
	changed := false
	for other, raw := range direct {
		var roomIDs []string
		if json.Unmarshal(raw, &roomIDs) != nil || !slices.Contains(roomIDs, oldRoomID) || slices.Contains(roomIDs, newRoomID) {
			continue
		}
		updated, err := json.Marshal(append(roomIDs, newRoomID))
		if err != nil {
			continue
		}
		direct[other], changed = updated, true
	}
	if !changed {
		return
	}
	raw, err := json.Marshal(direct)
	if err != nil {
		logFail("encode m.direct", err)
		return
	}
	_, _, err = a.node.Propose(ctx, fsm.OpAccountDataPut,
		fsm.AccountDataPut{UserID: userID, Type: "m.direct", Content: raw})
	logFail("update m.direct", err)
}
