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
	a.setProfile(w, r, c.UserID, cmd)
}
