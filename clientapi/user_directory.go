package clientapi

import (
	"net/http"
	"sort"
	"strings"

	"github.com/julienschmidt/httprouter"
	"github.com/tidwall/gjson"

	"github.com/ganglion/ganglion/fsm"
)

// The user directory (users.yaml) searches the users the caller can see,
// as Synapse does by default: those sharing a room with the caller and
// those joined to public or world-readable rooms, plus an exact match on
// a local user ID. The caller is listed only through a public room. There is no directory index: each search walks the
// rooms, bounded by maxDirectoryRooms.

const (
	defaultDirectoryLimit = 10
	maxDirectoryLimit     = 1000
	maxDirectoryRooms     = 10000
)

// directoryUser is one result; rank orders results (lower is better).
type directoryUser struct {
	UserID      string `json:"user_id"`
	DisplayName string `json:"display_name,omitempty"`
	AvatarURL   string `json:"avatar_url,omitempty"`
	rank        int
}

// POST /user_directory/search.
func (a *API) userDirectorySearch(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	c := callerOf(r)
	var body struct {
		SearchTerm *string `json:"search_term"`
		Limit      *int    `json:"limit"`
	}
	if !a.readJSON(w, r, &body) {
		return
	}
	if body.SearchTerm == nil {
		writeError(w, http.StatusBadRequest, "M_MISSING_PARAM", "search_term is required")
		return
	}
	limit := defaultDirectoryLimit
	if body.Limit != nil && *body.Limit > 0 {
		limit = min(*body.Limit, maxDirectoryLimit)
	}
	term := strings.ToLower(strings.TrimSpace(*body.SearchTerm))
	words := strings.Fields(term)
	var found []*directoryUser
	if len(words) > 0 {
		_ = a.store.View(func(rt *fsm.ReadTx) error {
			for _, u := range visibleUsers(rt, c.UserID, term) {
				if rank, ok := directoryRank(u, term, words); ok {
					u.rank = rank
					found = append(found, u)
				}
			}
			return nil
		})
	}
	sort.Slice(found, func(i, j int) bool {
		x, y := found[i], found[j]
		if x.rank != y.rank {
			return x.rank < y.rank
		}
		if px, py := x.DisplayName != "" || x.AvatarURL != "", y.DisplayName != "" || y.AvatarURL != ""; px != py {
			return px
		}
		return x.UserID < y.UserID
	})
	limited := len(found) > limit
	if limited {
		found = found[:limit]
	}
	if found == nil {
		found = []*directoryUser{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"results": found, "limited": limited})
}

// visibleUsers collects the users the caller may find, with their profiles:
// the global profile for local users, the member event's for remote ones.
func visibleUsers(rt *fsm.ReadTx, caller, term string) map[string]*directoryUser {
	out := map[string]*directoryUser{}
	addLocal := func(userID string) bool {
		u, err := rt.User(userID)
		if err != nil {
			return false
		}
		if !u.Deactivated {
			out[userID] = &directoryUser{UserID: userID, DisplayName: u.DisplayName, AvatarURL: u.AvatarURL}
		}
		return true
	}
	if validUserID(term) {
		addLocal(term)
	}
	n := 0
	rt.RoomIDs(func(roomID string) bool {
		n++
		open := openRoom(rt, roomID)
		if m := rt.Membership(caller, roomID); (m == nil || m.Membership != "join") && !open {
			return n < maxDirectoryRooms
		}
		for userID, membership := range rt.RoomMembers(roomID) {
			// Sharing a private room with oneself does not list oneself
			// (Synapse; Complement's user directory tests count results).
			if membership != "join" || out[userID] != nil || (userID == caller && !open) || addLocal(userID) {
				continue
			}
			if ev, err := rt.StateEvent(roomID, evMember, userID); err == nil {
				out[userID] = &directoryUser{UserID: userID,
					DisplayName: gjson.GetBytes(ev.PDU, "content.displayname").Str,
					AvatarURL:   gjson.GetBytes(ev.PDU, "content.avatar_url").Str}
			}
		}
		return n < maxDirectoryRooms
	})
	return out
}

// openRoom reports whether anyone may see the room's members: a public
// join rule or world-readable history.
func openRoom(rt *fsm.ReadTx, roomID string) bool {
	if ev, err := rt.StateEvent(roomID, "m.room.join_rules", ""); err == nil &&
		gjson.GetBytes(ev.PDU, "content.join_rule").Str == "public" {
		return true
	}
	return worldReadable(rt, roomID)
}

// directoryRank matches every word of the term case-insensitively against
// the user ID and display name: 0 for an exact match, 1 when every word
// starts a word of either, 2 for substrings.
func directoryRank(u *directoryUser, term string, words []string) (int, bool) {
	id, name := strings.ToLower(u.UserID), strings.ToLower(u.DisplayName)
	if term == id || term == name {
		return 0, true
	}
	local := strings.TrimPrefix(id, "@")
	if i := strings.IndexByte(local, ':'); i >= 0 {
		local = local[:i]
	}
	tokens := append(strings.FieldsFunc(local, notAlnum), strings.FieldsFunc(name, notAlnum)...)
	tokens = append(tokens, local, name)
	rank := 1
	for _, w := range words {
		if !strings.Contains(id, w) && !strings.Contains(name, w) {
			return 0, false
		}
		prefixed := false
		for _, t := range tokens {
			if strings.HasPrefix(t, w) {
				prefixed = true
				break
			}
		}
		if !prefixed {
			rank = 2
		}
	}
	return rank, true
}

func notAlnum(r rune) bool {
	return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r > 0x7f)
}
