package clientapi

import (
	"encoding/json"
	"net/http"
	"reflect"

	"github.com/julienschmidt/httprouter"
	"github.com/tidwall/gjson"

	"github.com/ganglion/ganglion/fsm"
	"github.com/ganglion/ganglion/rooms"
)

// GET /rooms/{roomId}/state: the readable state as a list of client events.
func (a *API) stateAll(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	c := callerOf(r)
	roomID := p.ByName("roomId")
	a.answerRead(w, func(rt *fsm.ReadTx) (any, *fsm.Error) {
		acc, e := roomReadAccess(rt, roomID, c.UserID)
		if e != nil {
			return nil, e
		}
		return stateEvents(rt, acc.stateIDs(rt, 0), c, nil), nil
	})
}

// GET /rooms/{roomId}/state/{eventType}[/{stateKey}]: the content, or the
// whole event with ?format=event.
func (a *API) stateGet(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	c := callerOf(r)
	roomID, evType, stateKey := p.ByName("roomId"), p.ByName("eventType"), p.ByName("stateKey")
	format := r.URL.Query().Get("format")
	if format != "" && format != "content" && format != "event" {
		writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "format must be content or event")
		return
	}
	a.answerRead(w, func(rt *fsm.ReadTx) (any, *fsm.Error) {
		acc, e := roomReadAccess(rt, roomID, c.UserID)
		if e != nil {
			return nil, e
		}
		var eventID string
		if acc.current {
			eventID = rt.StateEventID(roomID, evType, stateKey)
		} else {
			eventID = acc.stateIDs(rt, 0)[[2]string{evType, stateKey}]
		}
		rec, _ := rt.Event(eventID)
		if eventID == "" || rec == nil {
			return nil, fsm.Errorf(http.StatusNotFound, "M_NOT_FOUND", "no %s state with key %q in this room", evType, stateKey)
		}
		if format == "event" {
			return formatEvent(rt, rec, c), nil
		}
		return formatEvent(nil, rec, c).Content, nil
	})
}

// PUT /rooms/{roomId}/state/{eventType}[/{stateKey}]: the body is the content.
func (a *API) statePut(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	c := callerOf(r)
	roomID, evType, stateKey := p.ByName("roomId"), p.ByName("eventType"), p.ByName("stateKey")
	content, ok := a.readObject(w, r)
	if !ok {
		return
	}
	if evType == "m.room.canonical_alias" {
		if ferr := a.checkCanonicalAlias(roomID, content); ferr != nil {
			writeErr(w, ferr)
			return
		}
	}
	if same := a.unchangedState(roomID, evType, stateKey, c.UserID, content); same != "" {
		writeJSON(w, http.StatusOK, map[string]string{"event_id": same})
		return
	}
	eventID, err := a.rooms.Send(r.Context(), rooms.SendRequest{RoomID: roomID, EventSpec: rooms.EventSpec{
		Type: evType, StateKey: &stateKey, Sender: c.UserID, Content: content}})
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"event_id": eventID})
}

// unchangedState is the current event's ID when the caller re-sends the
// same content for a state key they set last (Synapse answers so instead of
// adding a duplicate event). Membership changes always go through.
func (a *API) unchangedState(roomID, evType, stateKey, sender string, content json.RawMessage) string {
	if evType == evMember {
		return ""
	}
	same := ""
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		cur, err := rt.StateEvent(roomID, evType, stateKey)
		if err != nil || cur.Sender != sender || cur.RedactedBecause != "" || !isJoined(rt, sender, roomID) {
			return nil
		}
		var old, next any
		if json.Unmarshal([]byte(gjson.GetBytes(cur.PDU, "content").Raw), &old) == nil &&
			json.Unmarshal(content, &next) == nil && reflect.DeepEqual(old, next) {
			same = cur.EventID
		}
		return nil
	})
	return same
}

// checkCanonicalAlias validates the aliases a canonical_alias event adds:
// valid syntax (M_INVALID_PARAM) and, for our own aliases, pointing at this
// room (M_BAD_ALIAS). Aliases already in the current event are not checked.
func (a *API) checkCanonicalAlias(roomID string, content json.RawMessage) *fsm.Error {
	var body struct {
		Alias      *string  `json:"alias"`
		AltAliases []string `json:"alt_aliases"`
	}
	if err := json.Unmarshal(content, &body); err != nil {
		return fsm.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", "alias must be a string and alt_aliases a list of strings")
	}
	aliases := body.AltAliases
	if body.Alias != nil && *body.Alias != "" {
		aliases = append(aliases, *body.Alias)
	}
	var ferr *fsm.Error
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		existing := map[string]bool{}
		if ev, err := rt.StateEvent(roomID, "m.room.canonical_alias", ""); err == nil {
			existing[gjson.GetBytes(ev.PDU, "content.alias").Str] = true
			for _, alt := range gjson.GetBytes(ev.PDU, "content.alt_aliases").Array() {
				existing[alt.Str] = true
			}
		}
		for _, alias := range aliases {
			if existing[alias] {
				continue
			}
			_, server, ok := parseAlias(alias)
			if !ok {
				ferr = fsm.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", "invalid room alias %q", alias)
				return nil
			}
			if server != a.rooms.ServerName() {
				continue // a remote alias cannot be resolved without federation
			}
			if target, _, found := rt.AliasRoom(alias); !found || target != roomID {
				ferr = fsm.Errorf(http.StatusBadRequest, "M_BAD_ALIAS", "the alias %s does not point to this room", alias)
				return nil
			}
		}
		return nil
	})
	return ferr
}

var membershipValues = map[string]bool{"join": true, "invite": true, "knock": true, "leave": true, "ban": true}

// GET /rooms/{roomId}/members: member events, optionally at a pagination
// token and filtered by membership.
func (a *API) members(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	c := callerOf(r)
	roomID := p.ByName("roomId")
	q := r.URL.Query()
	want, notWant := q.Get("membership"), q.Get("not_membership")
	if (want != "" && !membershipValues[want]) || (notWant != "" && !membershipValues[notWant]) {
		writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "membership and not_membership must be join, invite, knock, leave or ban")
		return
	}
	var at int64
	if s := q.Get("at"); s != "" {
		var ok bool
		if at, ok = parsePageToken(s); !ok {
			writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "invalid 'at' token")
			return
		}
		a.waitForBoundary(r, at)
	}
	keep := func(rec *fsm.EventRecord) bool {
		m := gjson.GetBytes(rec.PDU, "content.membership").Str
		switch {
		case want != "" && notWant != "":
			return m == want || m != notWant
		case want != "":
			return m == want
		case notWant != "":
			return m != notWant
		}
		return true
	}
	a.answerRead(w, func(rt *fsm.ReadTx) (any, *fsm.Error) {
		acc, e := roomReadAccess(rt, roomID, c.UserID)
		if e != nil {
			return nil, e
		}
		state := acc.stateIDs(rt, at)
		for k := range state {
			if k[0] != evMember {
				delete(state, k)
			}
		}
		return map[string]any{"chunk": stateEvents(rt, state, c, keep)}, nil
	})
}

// joinedMember carries both keys even when unset (null), as Synapse does:
// Complement's TestRoomState checks they are present.
type joinedMember struct {
	DisplayName *string `json:"display_name"`
	AvatarURL   *string `json:"avatar_url"`
}

func optString(r gjson.Result) *string {
	if r.Type != gjson.String {
		return nil
	}
	return &r.Str
}

// GET /rooms/{roomId}/joined_members: only for current members (or anyone
// in a world-readable room).
func (a *API) joinedMembers(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	c := callerOf(r)
	roomID := p.ByName("roomId")
	a.answerRead(w, func(rt *fsm.ReadTx) (any, *fsm.Error) {
		acc, e := roomReadAccess(rt, roomID, c.UserID)
		if e != nil || !acc.current {
			return nil, errNotInRoom
		}
		joined := map[string]joinedMember{}
		for k, eventID := range rt.CurrentState(roomID, evMember) {
			rec, err := rt.Event(eventID)
			if err != nil {
				continue
			}
			content := gjson.GetBytes(rec.PDU, "content")
			if content.Get("membership").Str != "join" {
				continue
			}
			joined[k[1]] = joinedMember{DisplayName: optString(content.Get("displayname")), AvatarURL: optString(content.Get("avatar_url"))}
		}
		return map[string]any{"joined": joined}, nil
	})
}
