package clientapi

import (
	"encoding/json"
	"net/http"

	"github.com/julienschmidt/httprouter"

	"github.com/ganglion/ganglion/fsm"
)

// Room tags (tags.yaml) live in the room's m.tag account data, so /sync
// shows them in the room's account_data like any other entry.
//
// PUT and DELETE read the entry, change one tag and write the whole entry
// back through account_data.put. Two concurrent changes to the same room's
// tags can therefore lose one of them (last write wins); a per-tag FSM
// command would close that race if it ever matters.

const (
	tagEventType = "m.tag"
	maxTagBytes  = 255 // tags.md: a tag name MUST NOT exceed 255 bytes
)

// tagOwner checks the path's user is the caller (403 otherwise).
func tagOwner(w http.ResponseWriter, r *http.Request, p httprouter.Params) (*Caller, bool) {
	c := callerOf(r)
	if p.ByName("userId") != c.UserID {
		writeError(w, http.StatusForbidden, "M_FORBIDDEN", "cannot access another user's tags")
		return nil, false
	}
	return c, true
}

// readTags loads the room's m.tag content and its tags object (both empty
// when unset).
func (a *API) readTags(userID, roomID string) (content, tags map[string]json.RawMessage) {
	content, tags = map[string]json.RawMessage{}, map[string]json.RawMessage{}
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		rec, err := rt.AccountData(userID, roomID, tagEventType)
		if err != nil {
			return nil
		}
		if json.Unmarshal(rec.Content, &content) != nil || content == nil {
			content = map[string]json.RawMessage{}
		}
		if json.Unmarshal(content["tags"], &tags) != nil || tags == nil {
			tags = map[string]json.RawMessage{}
		}
		return nil
	})
	return content, tags
}

// GET /user/{userId}/rooms/{roomId}/tags.
func (a *API) getTags(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	c, ok := tagOwner(w, r, p)
	if !ok {
		return
	}
	_, tags := a.readTags(c.UserID, p.ByName("roomId"))
	writeJSON(w, http.StatusOK, map[string]any{"tags": tags})
}

// PUT /user/{userId}/rooms/{roomId}/tags/{tag}: the body is the tag's
// object (e.g. {"order": 0.5}).
func (a *API) putTag(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	c, ok := tagOwner(w, r, p)
	if !ok {
		return
	}
	tag := p.ByName("tag")
	if tag == "" || len(tag) > maxTagBytes {
		writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "tag names must be 1 to 255 bytes")
		return
	}
	body, ok := a.readObject(w, r)
	if !ok {
		return
	}
	var info struct {
		Order *float64 `json:"order"`
	}
	if json.Unmarshal(body, &info) != nil {
		writeError(w, http.StatusBadRequest, "M_BAD_JSON", "order must be a number")
		return
	}
	roomID := p.ByName("roomId")
	content, tags := a.readTags(c.UserID, roomID)
	tags[tag] = body
	a.writeTags(w, r, c.UserID, roomID, content, tags)
}

// DELETE /user/{userId}/rooms/{roomId}/tags/{tag}: removing a tag that is
// not set succeeds without a write.
func (a *API) deleteTag(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	c, ok := tagOwner(w, r, p)
	if !ok {
		return
	}
	roomID, tag := p.ByName("roomId"), p.ByName("tag")
	content, tags := a.readTags(c.UserID, roomID)
	if _, set := tags[tag]; !set {
		writeJSON(w, http.StatusOK, struct{}{})
		return
	}
	delete(tags, tag)
	a.writeTags(w, r, c.UserID, roomID, content, tags)
}

// writeTags stores the m.tag entry with the new tags, keeping any other
// keys the content had. The FSM refuses unknown rooms (404) and rooms the
// user has no membership in (403).
func (a *API) writeTags(w http.ResponseWriter, r *http.Request, userID, roomID string, content, tags map[string]json.RawMessage) {
	rawTags, err := json.Marshal(tags)
	if err != nil {
		writeErr(w, err)
		return
	}
	content["tags"] = rawTags
	raw, err := json.Marshal(content)
	if err != nil {
		writeErr(w, err)
		return
	}
	if _, ok := a.propose(w, r.Context(), fsm.OpAccountDataPut,
		fsm.AccountDataPut{UserID: userID, RoomID: roomID, Type: tagEventType, Content: raw}); !ok {
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}
