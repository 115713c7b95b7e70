package clientapi

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/julienschmidt/httprouter"
	"github.com/tidwall/gjson"
	"maunium.net/go/mautrix/id"

	"github.com/ganglion/ganglion/fsm"
	"github.com/ganglion/ganglion/rooms"
)

// POST /rooms/{roomId}/upgrade (room_upgrades.yaml and the "Server
// behaviour" of room_upgrades.md): a replacement room with the old one as
// predecessor and its transferable state, the old room's bans and local
// aliases moved over, then a tombstone in the old room and power levels
// there that stop ordinary users from talking or inviting.

// upgradeStateTypes are the state events copied (state key ""), the
// spec's recommended list; canonical_alias follows the aliases later.
var upgradeStateTypes = []string{"m.room.server_acl", "m.room.encryption", "m.room.name",
	"m.room.avatar", "m.room.topic", "m.room.guest_access", "m.room.history_visibility",
	"m.room.join_rules"}

// upgradeSpaceTypes are copied with every state key: the room's place in
// spaces and, for a space, its children.
var upgradeSpaceTypes = []string{"m.space.child", "m.space.parent"}

// upgradeLocks serialises upgrades of one room on this node, so a
// double-clicked upgrade makes its second replacement after the first
// one's tombstone rather than racing it.
var upgradeLocks sync.Map // room ID -> *sync.Mutex

type upgradeBody struct {
	NewVersion         *string  `json:"new_version"`
	AdditionalCreators []string `json:"additional_creators"`
}

// upgradePlan is everything read from the old room before anything is
// written.
type upgradePlan struct {
	oldRoomID string
	sender    string
	create    rooms.CreateRoomRequest
	// restorePL is the power levels to end with in the new room when the
	// caller had to be raised to copy the state; nil if not.
	restorePL json.RawMessage
	bans      []upgradeBan
	aliases   []upgradeAlias
	published bool
}

type upgradeBan struct{ userID, reason string }

type upgradeAlias struct{ alias, creator string }

func (a *API) upgradeRoom(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	c := callerOf(r)
	var body upgradeBody
	if !a.readJSON(w, r, &body) {
		return
	}
	if body.NewVersion == nil {
		writeError(w, http.StatusBadRequest, "M_MISSING_PARAM", "new_version is required")
		return
	}
	ver := id.RoomVersion(*body.NewVersion)
	if !rooms.SupportedVersions[ver] {
		writeError(w, http.StatusBadRequest, "M_UNSUPPORTED_ROOM_VERSION", "This server does not support room version "+*body.NewVersion)
		return
	}
	for _, u := range body.AdditionalCreators {
		if !validUserID(u) {
			writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "additional_creators must be user IDs")
			return
		}
	}
	roomID := p.ByName("roomId")
	mu, _ := upgradeLocks.LoadOrStore(roomID, &sync.Mutex{})
	mu.(*sync.Mutex).Lock()
	defer mu.(*sync.Mutex).Unlock()

	var plan *upgradePlan
	var ferr *fsm.Error
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		plan, ferr = planUpgrade(rt, roomID, c.UserID, ver, body.AdditionalCreators)
		return nil
	})
	if ferr != nil {
		writeErr(w, ferr)
		return
	}
	// The steps after the new room exists run to the end even if the
	// client goes away: a half-moved room helps no one.
	ctx, cancel := roomUpdateContext(r.Context())
	defer cancel()
	newRoomID, err := a.rooms.CreateRoom(ctx, plan.create)
	if err != nil {
		writeErr(w, err)
		return
	}
	if err := a.finishUpgrade(ctx, plan, newRoomID); err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"replacement_room": newRoomID})
}

// planUpgrade checks the caller may upgrade (joined, and allowed to send
// m.room.tombstone) and reads what moves to the new room.
func planUpgrade(rt *fsm.ReadTx, roomID, sender string, ver id.RoomVersion, extraCreators []string) (*upgradePlan, *fsm.Error) {
	room, err := rt.Room(roomID)
	if err != nil {
		return nil, fsm.Errorf(http.StatusNotFound, "M_NOT_FOUND", "Unknown room %s", roomID)
	}
	if !isJoined(rt, sender, roomID) {
		return nil, fsm.Errorf(http.StatusForbidden, "M_FORBIDDEN", "You are not in this room")
	}
	if userPowerLevel(rt, roomID, sender) < stateEventLevel(rt, roomID, "m.room.tombstone") {
		return nil, fsm.Errorf(http.StatusForbidden, "M_FORBIDDEN", "You cannot upgrade this room")
	}
	plan := &upgradePlan{oldRoomID: roomID, sender: sender, published: room.Published}
	creators := []string{sender}
	creation := map[string]any{"predecessor": predecessor(rt, room, ver)}
	if ev, err := rt.StateEvent(roomID, "m.room.create", ""); err == nil {
		content := gjson.GetBytes(ev.PDU, "content")
		if v := content.Get("type"); v.Exists() {
			creation["type"] = v.Value()
		}
		if v := content.Get(`m\.federate`); v.Exists() {
			creation["m.federate"] = v.Value()
		}
	}
	if ver.PrivilegedRoomCreators() {
		// Not carried over from the old room: the request names them all.
		extra := []string{}
		for _, u := range extraCreators {
			if u != sender && !slices.Contains(extra, u) {
				extra = append(extra, u)
			}
		}
		if len(extra) > 0 {
			creation["additional_creators"] = extra
			creators = append(creators, extra...)
		}
	}
	creationRaw, _ := json.Marshal(creation)
	plan.create = rooms.CreateRoomRequest{Creator: sender, Preset: "public_chat", RoomVersion: string(ver),
		CreationContent: creationRaw, InitialState: transferableState(rt, roomID)}

	override, restore := upgradePowerLevels(rt, room, ver, sender, creators)
	plan.create.PowerLevelOverride, plan.restorePL = override, restore

	for k, evID := range rt.CurrentState(roomID, evMember) {
		if m := rt.Membership(k[1], roomID); m == nil || m.Membership != "ban" {
			continue
		}
		reason := ""
		if ev, err := rt.Event(evID); err == nil {
			reason = gjson.GetBytes(ev.PDU, "content.reason").Str
		}
		plan.bans = append(plan.bans, upgradeBan{userID: k[1], reason: reason})
	}
	slices.SortFunc(plan.bans, func(x, y upgradeBan) int { return strings.Compare(x.userID, y.userID) })
	for _, alias := range rt.RoomAliases(roomID) {
		_, creator, _ := rt.AliasRoom(alias)
		plan.aliases = append(plan.aliases, upgradeAlias{alias: alias, creator: creator})
	}
	return plan, nil
}

// predecessor points at the old room and its latest event; from room v12
// the event may be left out (and is, as Synapse does).
func predecessor(rt *fsm.ReadTx, room *fsm.RoomRecord, ver id.RoomVersion) map[string]string {
	out := map[string]string{"room_id": room.RoomID}
	if ver.PrivilegedRoomCreators() {
		return out
	}
	rt.RoomEvents(room.RoomID, room.LastPos+1, false, 1, func(e *fsm.EventRecord) bool {
		out["event_id"] = e.EventID
		return false
	})
	return out
}

// transferableState is the old room's state to copy, as initial_state.
// The preset (public_chat) fills in only what the old room lacked, with
// the same meaning: shared history, no guest access. A room without join
// rules is invite-only by the auth rules, so it says so explicitly.
func transferableState(rt *fsm.ReadTx, roomID string) []rooms.StateEventSpec {
	var out []rooms.StateEventSpec
	for _, t := range upgradeStateTypes {
		if ev, err := rt.StateEvent(roomID, t, ""); err == nil {
			out = append(out, rooms.StateEventSpec{Type: t, Content: json.RawMessage(gjson.GetBytes(ev.PDU, "content").Raw)})
		} else if t == "m.room.join_rules" {
			out = append(out, rooms.StateEventSpec{Type: t, Content: json.RawMessage(`{"join_rule":"invite"}`)})
		}
	}
	for _, t := range upgradeSpaceTypes {
		state := rt.CurrentState(roomID, t)
		for _, k := range sortedStateKeys(state) {
			ev, err := rt.Event(state[k])
			if err != nil || k[1] == "" {
				continue
			}
			content := gjson.GetBytes(ev.PDU, "content")
			if !validVia(content.Get("via")) {
				continue // a removed link
			}
			out = append(out, rooms.StateEventSpec{Type: t, StateKey: k[1], Content: json.RawMessage(content.Raw)})
		}
	}
	return out
}

// finishUpgrade does everything after the new room exists. Only the
// tombstone's failure is reported: the rest is best effort and logged,
// as the new room is already usable.
func (a *API) finishUpgrade(ctx context.Context, plan *upgradePlan, newRoomID string) error {
	logFail := func(step string, err error) {
		if err != nil {
			a.log.Warn("room upgrade step failed", "step", step, "old_room", plan.oldRoomID, "new_room", newRoomID, "error", err)
		}
	}
	for _, b := range plan.bans {
		_, err := a.rooms.Membership(ctx, rooms.MembershipRequest{RoomID: newRoomID, Sender: plan.sender,
			Target: b.userID, Membership: "ban", Reason: b.reason})
		logFail("copy ban", err)
	}
	if plan.restorePL != nil {
		logFail("restore power levels", a.sendState(ctx, newRoomID, plan.sender, "m.room.power_levels", plan.restorePL))
	}
	tombstone, _ := json.Marshal(map[string]string{"body": "This room has been replaced", "replacement_room": newRoomID})
	if err := a.sendState(ctx, plan.oldRoomID, plan.sender, "m.room.tombstone", tombstone); err != nil {
		return err
	}
	a.moveAliases(ctx, plan, newRoomID, logFail)
	if plan.published {
		_, _, err := a.node.Propose(ctx, fsm.OpRoomPublish, fsm.PublishCmd{RoomID: newRoomID, Published: true})
		logFail("publish new room", err)
		_, _, err = a.node.Propose(ctx, fsm.OpRoomPublish, fsm.PublishCmd{RoomID: plan.oldRoomID, Published: false})
		logFail("unpublish old room", err)
	}
	if restricted := a.restrictedPowerLevels(plan.oldRoomID); restricted != nil {
		logFail("restrict old room", a.sendState(ctx, plan.oldRoomID, plan.sender, "m.room.power_levels", restricted))
	}
	a.copyRoomPushRules(ctx, plan.oldRoomID, newRoomID, logFail)
	return nil
}

// sendState sends one state event with an empty state key.
func (a *API) sendState(ctx context.Context, roomID, sender, evType string, content json.RawMessage) error {
	empty := ""
	_, err := a.rooms.Send(ctx, rooms.SendRequest{RoomID: roomID, EventSpec: rooms.EventSpec{
		Type: evType, StateKey: &empty, Sender: sender, Content: content}})
	return err
}
