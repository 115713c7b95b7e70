package clientapi

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/julienschmidt/httprouter"

	"github.com/ganglion/ganglion/fsm"
	"github.com/ganglion/ganglion/rooms"
)

const (
	fieldDisplayName = "displayname"
	fieldAvatarURL   = "avatar_url"

	maxDisplayNameLen = 256  // characters, as Synapse
	maxAvatarURLLen   = 1000 // bytes
	maxProfileKeyLen  = 255  // bytes (spec: M_KEY_TOO_LARGE)

	// roomUpdateTimeout bounds the membership updates that follow a profile
	// change or a deactivation; they go on if the client disconnects.
	roomUpdateTimeout = 2 * time.Minute
)

// profileKeyRe is the spec's grammar of profile field names.
var profileKeyRe = regexp.MustCompile(`^(avatar_url|displayname|m\.tz|[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+)$`)

// profileFields are the fields this server stores and lets users set; the
// m.profile_fields capability advertises the same list.
var profileFields = []string{fieldAvatarURL, fieldDisplayName}

// getProfile is GET /profile/{userId}.
func (a *API) getProfile(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	u, ok := a.profileUser(w, p.ByName("userId"))
	if !ok {
		return
	}
	out := map[string]string{}
	if u.DisplayName != "" {
		out[fieldDisplayName] = u.DisplayName
	}
	if u.AvatarURL != "" {
		out[fieldAvatarURL] = u.AvatarURL
	}
	writeJSON(w, http.StatusOK, out)
}

// getProfileField is GET /profile/{userId}/{keyName}.
func (a *API) getProfileField(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	field := p.ByName("field")
	if !checkProfileKey(w, field) {
		return
	}
	u, ok := a.profileUser(w, p.ByName("userId"))
	if !ok {
		return
	}
	var v string
	switch field {
	case fieldDisplayName:
		v = u.DisplayName
	case fieldAvatarURL:
		v = u.AvatarURL
	}
	if v == "" {
		writeError(w, http.StatusNotFound, "M_NOT_FOUND", "Profile field not found")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{field: v})
}

// putProfileField is PUT /profile/{userId}/{keyName}: displayname and
// avatar_url of the caller. The change then reaches the caller's
// m.room.member event in every joined room.
func (a *API) putProfileField(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	c := callerOf(r)
	userID, field := p.ByName("userId"), p.ByName("field")
	if !checkProfileKey(w, field) {
		return
	}
	if userID != c.UserID {
		writeError(w, http.StatusForbidden, "M_FORBIDDEN", "Cannot set another user's profile")
		return
	}
	if field != fieldDisplayName && field != fieldAvatarURL {
		writeError(w, http.StatusForbidden, "M_FORBIDDEN", "Profile field "+field+" cannot be set on this server")
		return
	}
	raw, ok := a.readObject(w, r)
	if !ok {
		return
	}
	var body map[string]json.RawMessage
	_ = json.Unmarshal(raw, &body) // readObject checked it is an object
	rawVal, present := body[field]
	if !present {
		writeError(w, http.StatusBadRequest, "M_MISSING_PARAM", "missing "+field)
		return
	}
	var val string
	if err := json.Unmarshal(rawVal, &val); err != nil || string(rawVal) == "null" {
		writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", field+" must be a string")
		return
	}
	cmd := fsm.ProfileSetCmd{UserID: c.UserID}
	switch field {
	case fieldDisplayName:
		if utf8.RuneCountInString(val) > maxDisplayNameLen {
			writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "displayname is too long (max 256)")
			return
		}
		cmd.DisplayName = &val
	case fieldAvatarURL:
		if val != "" && !validMXC(val) || len(val) > maxAvatarURLLen {
			writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "avatar_url must be an mxc:// URI")
			return
		}
		cmd.AvatarURL = &val
	}
	a.setProfile(w, r, c.UserID, cmd)
}

// setProfile commits a profile change and, when it changed anything, sends
// the user's new member event to each joined room.
func (a *API) setProfile(w http.ResponseWriter, r *http.Request, userID string, cmd fsm.ProfileSetCmd) {
	var before fsm.ProfileResult
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		if u, err := rt.User(userID); err == nil {
			before = fsm.ProfileResult{DisplayName: u.DisplayName, AvatarURL: u.AvatarURL}
		}
		return nil
	})
	v, ok := a.propose(w, r.Context(), fsm.OpProfileSet, cmd)
	if !ok {
		return
	}
	after, ok := v.(fsm.ProfileResult)
	if !ok { // defensive: derive it from the request
		after = before
		if cmd.DisplayName != nil {
			after.DisplayName = *cmd.DisplayName
		}
		if cmd.AvatarURL != nil {
			after.AvatarURL = *cmd.AvatarURL
		}
	}
	if after != before {
		a.updateRoomsProfile(r.Context(), userID, after)
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

// profileUser reads a local user for the profile API; on failure it has
// written the error.
func (a *API) profileUser(w http.ResponseWriter, userID string) (*fsm.UserRecord, bool) {
	local, domain, ok := strings.Cut(strings.TrimPrefix(userID, "@"), ":")
	if !strings.HasPrefix(userID, "@") || !ok || local == "" || domain == "" {
		writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "invalid user ID")
		return nil, false
	}
	var u *fsm.UserRecord
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		u, _ = rt.User(userID)
		return nil
	})
	// Remote profiles would need a federation query, which is not wired in
	// here: they are reported as not found.
	if u == nil {
		writeError(w, http.StatusNotFound, "M_NOT_FOUND", "Profile not found")
		return nil, false
	}
	return u, true
}

func checkProfileKey(w http.ResponseWriter, field string) bool {
	if len(field) > maxProfileKeyLen {
		writeError(w, http.StatusBadRequest, "M_KEY_TOO_LARGE", "profile key exceeds 255 bytes")
		return false
	}
	if !profileKeyRe.MatchString(field) {
		writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "Invalid profile key.")
		return false
	}
	return true
}

// validMXC checks the mxc://<server-name>/<media-id> shape.
func validMXC(s string) bool {
	rest, ok := strings.CutPrefix(s, "mxc://")
	if !ok {
		return false
	}
	server, media, ok := strings.Cut(rest, "/")
	return ok && server != "" && media != "" && !strings.ContainsAny(s, " \t\r\n")
}

// userRoomIDs lists, in a stable order, the rooms where userID's
// membership is one of memberships.
func (a *API) userRoomIDs(userID string, memberships ...string) []string {
	var ids []string
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		for roomID, m := range rt.UserRooms(userID) {
			for _, want := range memberships {
				if m.Membership == want {
					ids = append(ids, roomID)
					break
				}
			}
		}
		return nil
	})
	sort.Strings(ids)
	return ids
}

// roomUpdateContext detaches the follow-up room updates from the client's
// connection, within a bound.
func roomUpdateContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), roomUpdateTimeout)
}

// updateRoomsProfile sends a fresh m.room.member join event carrying the
// new profile into every room userID is joined to. A room that refuses is
// logged and skipped (as Synapse does): the profile itself is already set.
func (a *API) updateRoomsProfile(ctx context.Context, userID string, p fsm.ProfileResult) {
	ctx, cancel := roomUpdateContext(ctx)
	defer cancel()
	for _, roomID := range a.userRoomIDs(userID, "join") {
		if err := a.setOwnMembership(ctx, roomID, userID, "join", p); err != nil {
			a.log.Warn("profile change not sent to room", "user", userID, "room", roomID, "error", err)
		}
	}
}

// leaveAllRooms makes a deactivated user leave every room it is joined to,
// and reject its pending invites and knocks.
func (a *API) leaveAllRooms(ctx context.Context, userID string) {
	ctx, cancel := roomUpdateContext(ctx)
	defer cancel()
	for _, roomID := range a.userRoomIDs(userID, "join", "invite", "knock") {
		if err := a.setOwnMembership(ctx, roomID, userID, "leave", fsm.ProfileResult{}); err != nil {
			a.log.Warn("deactivated user could not leave room", "user", userID, "room", roomID, "error", err)
		}
	}
}

// setOwnMembership is the single call point into rooms.Service for
// membership changes a user makes to itself.
func (a *API) setOwnMembership(ctx context.Context, roomID, userID, membership string, p fsm.ProfileResult) error {
	_, err := a.rooms.Membership(ctx, rooms.MembershipRequest{
		RoomID: roomID, Sender: userID, Target: userID, Membership: membership,
		DisplayName: p.DisplayName, AvatarURL: p.AvatarURL,
	})
	return err
}
