package clientapi

import (
	"net/http"
	"strings"

	"github.com/julienschmidt/httprouter"
	"github.com/tidwall/gjson"
	"maunium.net/go/mautrix/id"

	"github.com/ganglion/ganglion/fsm"
	"github.com/ganglion/ganglion/rooms"
)

// Room summaries (room_summary.yaml) and the rule for which rooms a user
// may preview, shared with the space hierarchy.

// roomSummaryChunk is the spec's RoomSummary: a directory entry plus the
// fields only summaries carry.
type roomSummaryChunk struct {
	rooms.PublicRoom
	AllowedRoomIDs []string `json:"allowed_room_ids,omitempty"`
	Encryption     string   `json:"encryption,omitempty"`
	RoomVersion    string   `json:"room_version,omitempty"`
}

// roomSummaryResponse is GET /room_summary's answer.
type roomSummaryResponse struct {
	roomSummaryChunk
	Membership string `json:"membership,omitempty"`
}

// summarizeRoom builds a room's summary from its current state.
func summarizeRoom(rt *fsm.ReadTx, room *fsm.RoomRecord) roomSummaryChunk {
	s := roomSummaryChunk{PublicRoom: rooms.DescribePublicRoom(rt, room.RoomID), RoomVersion: room.Version}
	if ev, err := rt.StateEvent(room.RoomID, "m.room.encryption", ""); err == nil {
		s.Encryption = gjson.GetBytes(ev.PDU, "content.algorithm").Str
	}
	if s.JoinRule == "restricted" || s.JoinRule == "knock_restricted" {
		s.AllowedRoomIDs = allowedRoomIDs(rt, room.RoomID)
	}
	return s
}

// allowedRoomIDs lists the rooms whose members a restricted join rule
// lets in.
func allowedRoomIDs(rt *fsm.ReadTx, roomID string) []string {
	ev, err := rt.StateEvent(roomID, "m.room.join_rules", "")
	if err != nil {
		return nil
	}
	var out []string
	for _, a := range gjson.GetBytes(ev.PDU, "content.allow").Array() {
		if a.Get("type").Str == "m.room_membership" && strings.HasPrefix(a.Get("room_id").Str, "!") {
			out = append(out, a.Get("room_id").Str)
		}
	}
	return out
}

// roomPreviewable is the spec's list of rooms a user may see in the space
// hierarchy and get a summary of: joined or invited, world-readable, or
// one the user could join or knock on without an invite.
func roomPreviewable(rt *fsm.ReadTx, room *fsm.RoomRecord, userID string) bool {
	m := rt.Membership(userID, room.RoomID)
	if m != nil && (m.Membership == "join" || m.Membership == "invite") {
		return true
	}
	if worldReadable(rt, room.RoomID) {
		return true
	}
	if m != nil && m.Membership == "ban" {
		return false // a banned user can neither join nor knock
	}
	ver := id.RoomVersion(room.Version)
	rule := ""
	if ev, err := rt.StateEvent(room.RoomID, "m.room.join_rules", ""); err == nil {
		rule = gjson.GetBytes(ev.PDU, "content.join_rule").Str
	}
	switch rule {
	case "public":
		return true
	case "knock":
		return ver.Knocks()
	case "knock_restricted":
		if ver.KnockRestricted() {
			return true
		}
	case "restricted":
		if !ver.RestrictedJoins() {
			return false
		}
		for _, allowed := range allowedRoomIDs(rt, room.RoomID) {
			if isJoined(rt, userID, allowed) {
				return true
			}
		}
	}
	return false
}

// GET /v1/room_summary/{roomIdOrAlias}: the summary of a local room the
// caller may preview, with the caller's membership; 404 for anything
// else, so the answer does not reveal rooms the caller may not see. via
// only matters for remote rooms, which need federation.
func (a *API) roomSummary(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	c := callerOf(r)
	target := p.ByName("roomIdOrAlias")
	if !strings.HasPrefix(target, "!") && !strings.HasPrefix(target, "#") {
		writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "expected a room ID or alias")
		return
	}
	var out *roomSummaryResponse
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		roomID := target
		if strings.HasPrefix(target, "#") {
			var ok bool
			if roomID, _, ok = rt.AliasRoom(target); !ok {
				return nil
			}
		}
		room, err := rt.Room(roomID)
		if err != nil || !roomPreviewable(rt, room, c.UserID) {
			return nil
		}
		out = &roomSummaryResponse{roomSummaryChunk: summarizeRoom(rt, room)}
		if m := rt.Membership(c.UserID, roomID); m != nil {
			out.Membership = m.Membership
		}
		return nil
	})
	if out == nil {
		writeError(w, http.StatusNotFound, "M_NOT_FOUND", "Room not found.")
		return
	}
	writeJSON(w, http.StatusOK, out)
}
