package clientapi

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/ganglion/ganglion/fsm"
)

// Typing timeouts: the spec gives none; 30s is what clients assume, and a
// cap keeps a client from pinning "typing" for hours.
const (
	defaultTypingTimeout = 30 * time.Second
	maxTypingTimeout     = 120 * time.Second
)

// typing is PUT /rooms/{roomId}/typing/{userId}.
func (a *API) typing(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	c, ok := ownUserParam(w, r, p, "set typing state")
	if !ok {
		return
	}
	var body struct {
		Typing  *bool            `json:"typing"`
		Timeout *json.RawMessage `json:"timeout"`
	}
	if !a.readJSON(w, r, &body) {
		return
	}
	if body.Typing == nil {
		writeError(w, http.StatusBadRequest, "M_BAD_JSON", "typing is required and must be a boolean")
		return
	}
	timeout := defaultTypingTimeout
	if body.Timeout != nil && !isJSONNull(*body.Timeout) {
		var ms int64
		if json.Unmarshal(*body.Timeout, &ms) != nil || ms < 0 {
			writeError(w, http.StatusBadRequest, "M_BAD_JSON", "timeout must be a non-negative integer")
			return
		}
		timeout = min(time.Duration(ms)*time.Millisecond, maxTypingTimeout)
	}
	roomID := p.ByName("roomId")
	joined := false
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		m := rt.Membership(c.UserID, roomID)
		joined = m != nil && m.Membership == "join"
		return nil
	})
	if !joined {
		writeError(w, http.StatusForbidden, "M_FORBIDDEN", "you are not joined to this room")
		return
	}
	a.setTyping(roomID, c.UserID, *body.Typing && timeout > 0, timeout)
	if a.typingOut != nil {
		a.typingOut.LocalTyping(roomID, c.UserID, *body.Typing && timeout > 0, timeout)
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

var presenceStates = map[string]bool{"online": true, "unavailable": true, "offline": true}

// putPresence is PUT /presence/{userId}/status.
func (a *API) putPresence(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	c, ok := ownUserParam(w, r, p, "set presence")
	if !ok {
		return
	}
	var body struct {
		Presence  *string `json:"presence"`
		StatusMsg *string `json:"status_msg"`
	}
	if !a.readJSON(w, r, &body) {
		return
	}
	if body.Presence == nil {
		writeError(w, http.StatusBadRequest, "M_BAD_JSON", "presence is required")
		return
	}
	if !presenceStates[*body.Presence] {
		writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "presence must be online, unavailable or offline")
		return
	}
	msg := ""
	if body.StatusMsg != nil {
		msg = *body.StatusMsg
	}
	a.setPresence(c.UserID, *body.Presence, msg)
	writeJSON(w, http.StatusOK, struct{}{})
}

// getPresence is GET /presence/{userId}/status: visible to the user and to
// those sharing a joined room with them.
func (a *API) getPresence(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	c := callerOf(r)
	target := p.ByName("userId")
	known, visible := false, target == c.UserID
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		_, err := rt.User(target)
		known = err == nil
		if known && !visible {
			visible = sharesJoinedRoom(rt, c.UserID, target)
		}
		return nil
	})
	if !known {
		writeError(w, http.StatusNotFound, "M_NOT_FOUND", "unknown user "+target)
		return
	}
	if !visible {
		writeError(w, http.StatusForbidden, "M_FORBIDDEN", "you are not allowed to see their presence")
		return
	}
	state, ok := a.eph.Presence(target)
	if !ok {
		state = PresenceState{Presence: "offline"}
	}
	writeJSON(w, http.StatusOK, presenceEventContent(state, time.Now()))
}

// sharesJoinedRoom reports whether a and b are both joined to some room.
func sharesJoinedRoom(rt *fsm.ReadTx, a, b string) bool {
	for roomID, m := range rt.UserRooms(a) {
		if m.Membership != "join" {
			continue
		}
		if mb := rt.Membership(b, roomID); mb != nil && mb.Membership == "join" {
			return true
		}
	}
	return false
}
