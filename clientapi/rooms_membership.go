package clientapi

import (
	"encoding/json"
	"net/http"
	"reflect"
	"sort"
	"strings"

	"github.com/julienschmidt/httprouter"
	"github.com/tidwall/gjson"

	"github.com/ganglion/ganglion/fsm"
	"github.com/ganglion/ganglion/rooms"
)

// membershipBody is the body of invite, kick, ban, unban, join and leave.
type membershipBody struct {
	UserID *string `json:"user_id"`
	Reason string  `json:"reason"`
}

// POST /join/{roomIdOrAlias}: local aliases resolve through the store;
// server_name and via only matter for remote rooms, which need federation.
func (a *API) joinRoomIDOrAlias(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	target := p.ByName("roomIdOrAlias")
	if strings.HasPrefix(target, "#") {
		_, server, ok := parseAlias(target)
		if !ok {
			writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "invalid room alias")
			return
		}
		if server != a.rooms.ServerName() {
			raw, ok := a.readObject(w, r)
			if !ok {
				return
			}
			extra, reason := joinExtra(raw)
			a.joinRemote(w, r, target, extra, reason)
			return
		}
		roomID, found := "", false
		_ = a.store.View(func(rt *fsm.ReadTx) error {
			roomID, _, found = rt.AliasRoom(target)
			return nil
		})
		if !found {
			writeError(w, http.StatusNotFound, "M_NOT_FOUND", "room alias "+target+" not found")
			return
		}
		target = roomID
	}
	a.join(w, r, target, true)
}

// POST /rooms/{roomId}/join.
func (a *API) joinRoom(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	a.join(w, r, p.ByName("roomId"), false)
}

// join joins the caller. With bodyContent, the body's other keys go into
// the member event as Synapse's /join/{roomIdOrAlias} puts them (Complement's
// "POST /join/:room_id can join a room with custom content").
func (a *API) join(w http.ResponseWriter, r *http.Request, roomID string, bodyContent bool) {
	c := callerOf(r)
	if !validRoomID(roomID) {
		writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "expected a room ID or alias")
		return
	}
	raw, ok := a.readObject(w, r)
	if !ok {
		return
	}
	var body membershipBody
	if err := json.Unmarshal(raw, &body); err != nil {
		writeError(w, http.StatusBadRequest, "M_BAD_JSON", "request body has the wrong shape: "+err.Error())
		return
	}
	var extra map[string]json.RawMessage
	if bodyContent {
		extra, _ = joinExtra(raw)
	}
	// The service reports an unknown room as "not in room" (403); a join
	// to a room this server does not know is 404.
	known, wasJoined := false, false
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		_, err := rt.Room(roomID)
		known = err == nil
		m := rt.Membership(c.UserID, roomID)
		wasJoined = m != nil && m.Membership == "join"
		return nil
	})
	if !known || (!a.resident(roomID) && a.remote != nil) {
		// Not in the room here: join through a server that is.
		if !known && a.remote == nil {
			writeError(w, http.StatusNotFound, "M_NOT_FOUND", "unknown room "+roomID)
			return
		}
		a.joinRemote(w, r, roomID, extra, body.Reason)
		return
	}
	if err := a.setMembershipWith(r, roomID, c.UserID, c.UserID, "join", body.Reason, extra); err != nil {
		writeErr(w, err)
		return
	}
	if !wasJoined {
		// Push rules, tags and m.direct follow a room upgrade (best effort).
		a.followUpgradeOnJoin(r.Context(), c.UserID, roomID)
	}
	writeJSON(w, http.StatusOK, map[string]string{"room_id": roomID})
}

func (a *API) invite(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	a.changeMembership(w, r, p, "invite")
}

func (a *API) kick(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	a.changeMembership(w, r, p, "kick")
}

func (a *API) ban(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	a.changeMembership(w, r, p, "ban")
}

func (a *API) unban(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	a.changeMembership(w, r, p, "unban")
}

// POST /rooms/{roomId}/leave: also rejects an invite or withdraws a knock.
func (a *API) leave(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	c := callerOf(r)
	var body membershipBody
	if !a.readJSON(w, r, &body) {
		return
	}
	roomID := p.ByName("roomId")
	if a.remote != nil && !a.resident(roomID) {
		// An invite or knock from a room this server is not in: the
		// rejection goes through a server that is.
		if err := a.remote.LeaveRemote(r.Context(), c.UserID, roomID, body.Reason); err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, http.StatusOK, struct{}{})
		return
	}
	if err := a.setMembership(r, roomID, c.UserID, c.UserID, "leave", body.Reason); err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

// changeMembership acts on another user: invite, kick, ban or unban. The
// auth rules (power levels, bans) are the service's; this checks what the
// endpoints add: kick needs a member, unban a banned user.
func (a *API) changeMembership(w http.ResponseWriter, r *http.Request, p httprouter.Params, action string) {
	c := callerOf(r)
	roomID := p.ByName("roomId")
	var body membershipBody
	if !a.readJSON(w, r, &body) {
		return
	}
	if body.UserID == nil {
		writeError(w, http.StatusBadRequest, "M_BAD_JSON", "user_id is required")
		return
	}
	target := *body.UserID
	if !validUserID(target) {
		writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "invalid user_id")
		return
	}
	current := ""
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		if m := rt.Membership(target, roomID); m != nil {
			current = m.Membership
		}
		return nil
	})
	membership := action
	switch action {
	case "kick":
		membership = "leave"
		if current != "join" && current != "invite" && current != "knock" {
			writeError(w, http.StatusForbidden, "M_FORBIDDEN", target+" is not in the room")
			return
		}
	case "unban":
		membership = "leave"
		if current != "ban" {
			writeError(w, http.StatusForbidden, "M_BAD_STATE", target+" is not banned")
			return
		}
	}
	if err := a.setMembership(r, roomID, c.UserID, target, membership, body.Reason); err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

// setMembership sends the membership event, unless the target's current
// one already says the same thing from the same sender: then, as Synapse
// does, the request succeeds without a duplicate event (a second leave, a
// repeated invite or join).
func (a *API) setMembership(r *http.Request, roomID, sender, target, membership, reason string) error {
	return a.setMembershipWith(r, roomID, sender, target, membership, reason, nil)
}

// setMembershipWith is setMembership with further content for the event;
// a request with such content always sends.
func (a *API) setMembershipWith(r *http.Request, roomID, sender, target, membership, reason string, extra map[string]json.RawMessage) error {
	if len(extra) == 0 && a.sameMembership(roomID, sender, target, membership, reason) {
		return nil
	}
	_, err := a.rooms.Membership(r.Context(), rooms.MembershipRequest{
		RoomID: roomID, Sender: sender, Target: target, Membership: membership, Reason: reason, Extra: extra})
	return err
}

// sameMembership compares with the content rooms.Service.Membership would
// build: membership, reason, and for join and invite the target's profile.
func (a *API) sameMembership(roomID, sender, target, membership, reason string) bool {
	same := false
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		cur, err := rt.StateEvent(roomID, evMember, target)
		if err != nil || cur.Sender != sender || cur.RedactedBecause != "" {
			return nil
		}
		want := map[string]any{"membership": membership}
		if reason != "" {
			want["reason"] = reason
		}
		if u, err := rt.User(target); err == nil && (membership == "join" || membership == "invite") {
			if u.DisplayName != "" {
				want["displayname"] = u.DisplayName
			}
			if u.AvatarURL != "" {
				want["avatar_url"] = u.AvatarURL
			}
		}
		var have map[string]any
		if json.Unmarshal([]byte(gjson.GetBytes(cur.PDU, "content").Raw), &have) == nil {
			same = reflect.DeepEqual(have, want)
		}
		return nil
	})
	return same
}

// POST /rooms/{roomId}/forget: 400 while still joined or invited (Apply
// checks it again). A room the user never had a membership in has nothing
// to forget: 200 without a write, as Synapse answers.
func (a *API) forget(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	c := callerOf(r)
	roomID := p.ByName("roomId")
	known := false
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		known = rt.Membership(c.UserID, roomID) != nil
		return nil
	})
	if !known {
		writeJSON(w, http.StatusOK, struct{}{})
		return
	}
	if _, _, err := a.node.Propose(r.Context(), fsm.OpRoomForget, fsm.ForgetCmd{UserID: c.UserID, RoomID: roomID}); err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

// GET /joined_rooms.
func (a *API) joinedRooms(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	c := callerOf(r)
	ids := []string{}
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		for roomID, m := range rt.UserRooms(c.UserID) {
			if m.Membership == "join" {
				ids = append(ids, roomID)
			}
		}
		return nil
	})
	sort.Strings(ids)
	writeJSON(w, http.StatusOK, map[string][]string{"joined_rooms": ids})
}

// joinExtra splits a join body into the extra member content (its keys
// besides membership, reason and third_party_signed) and the reason.
func joinExtra(raw json.RawMessage) (map[string]json.RawMessage, string) {
	var extra map[string]json.RawMessage
	_ = json.Unmarshal(raw, &extra)
	var reason string
	if r, ok := extra["reason"]; ok {
		_ = json.Unmarshal(r, &reason)
	}
	for _, k := range []string{"membership", "reason", "third_party_signed"} {
		delete(extra, k)
	}
	return extra, reason
}
