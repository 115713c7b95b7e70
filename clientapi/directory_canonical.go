package clientapi

import (
	"encoding/json"
	"net/http"

	"github.com/tidwall/gjson"

	"github.com/ganglion/ganglion/fsm"
	"github.com/ganglion/ganglion/rooms"
)

// dropCanonicalAlias removes a deleted alias from the room's
// m.room.canonical_alias event, as Synapse does, sent as the user who
// deleted it. It is best effort: a user without the power to change the
// event still deletes the alias (Complement's "Alias creators can delete
// canonical alias with no ops").
func (a *API) dropCanonicalAlias(r *http.Request, roomID, userID, alias string) {
	var content map[string]any
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		ev, err := rt.StateEvent(roomID, "m.room.canonical_alias", "")
		if err != nil {
			return nil
		}
		c := gjson.GetBytes(ev.PDU, "content")
		mentioned := c.Get("alias").Str == alias
		for _, alt := range c.Get("alt_aliases").Array() {
			mentioned = mentioned || alt.Str == alias
		}
		if mentioned && json.Unmarshal([]byte(c.Raw), &content) != nil {
			content = nil
		}
		return nil
	})
	if content == nil {
		return
	}
	if content["alias"] == alias {
		delete(content, "alias")
	}
	if alts, ok := content["alt_aliases"].([]any); ok {
		kept := []any{}
		for _, alt := range alts {
			if alt != alias {
				kept = append(kept, alt)
			}
		}
		if len(kept) == 0 {
			delete(content, "alt_aliases")
		} else {
			content["alt_aliases"] = kept
		}
	}
	raw, _ := json.Marshal(content)
	empty := ""
	if _, err := a.rooms.Send(r.Context(), rooms.SendRequest{RoomID: roomID, EventSpec: rooms.EventSpec{
		Type: "m.room.canonical_alias", StateKey: &empty, Sender: userID, Content: raw}}); err != nil {
		a.log.Debug("canonical alias not updated after alias deletion", "room", roomID, "error", err)
	}
}
