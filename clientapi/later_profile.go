package clientapi

import (
	"net/http"

	"github.com/julienschmidt/httprouter"

	"github.com/ganglion/ganglion/fsm"
)

// deleteProfileField is DELETE /profile/{userId}/{keyName} (profile.yaml,
// v1.16): clears displayname or avatar_url of the caller (200 also when
// it was not set) and refreshes the caller's member events, as the PUT
// does. Other fields cannot be set here, so they cannot be deleted either.
func (a *API) deleteProfileField(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	c := callerOf(r)
	userID, field := p.ByName("userId"), p.ByName("field")
	if !checkProfileKey(w, field) {
		return
	}
	if userID != c.UserID {
		writeError(w, http.StatusForbidden, "M_FORBIDDEN", "Cannot delete another user's profile")
		return
	}
	if field != fieldDisplayName && field != fieldAvatarURL {
		writeError(w, http.StatusForbidden, "M_FORBIDDEN", "Profile field "+field+" cannot be deleted on this server")
		return
	}
	empty := "" // profile.set clears a field given ""
	cmd := fsm.ProfileSetCmd{UserID: c.UserID}
	if field == fieldDisplayName {
		cmd.DisplayName = &empty
	} else {
		cmd.AvatarURL = &empty
	}
	var before fsm.ProfileResult
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		if u, err := rt.User(c.UserID); err == nil {
			before = fsm.ProfileResult{DisplayName: u.DisplayName, AvatarURL: u.AvatarURL}
		}
		return nil
	})
	v, ok := a.propose(w, r.Context(), fsm.OpProfileSet, cmd)
	if !ok {
		return
	}
	after, ok := v.(fsm.ProfileResult)
	if !ok { // defensive, as in the PUT: derive it from the request
		after = before
		if field == fieldDisplayName {
			after.DisplayName = ""
		} else {
			after.AvatarURL = ""
		}
	}
	if after != before {
		a.updateRoomsProfile(r.Context(), c.UserID, after)
	}
	writeJSON(w, http.StatusOK, struct{}{})
}
