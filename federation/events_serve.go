package federation

import (
	"encoding/json"
	"net/http"
	"slices"
	"time"

	"github.com/julienschmidt/httprouter"
	"github.com/tidwall/gjson"

	"github.com/ganglion/ganglion/fsm"
)

// Serving events to other servers (events.yaml, event_auth.yaml):
// GET /event/{eventId}, /state/{roomId}, /state_ids/{roomId} and
// /event_auth/{roomId}/{eventId}. What a server may see is decided in
// events_serve_visibility.go.

// maxAuthChainServed bounds an auth chain walk.
const maxAuthChainServed = 50000

// pduTransaction is a transaction holding PDUs (single_pdu_transaction.yaml,
// unlimited_pdu_transaction.yaml).
type pduTransaction struct {
	Origin         string            `json:"origin"`
	OriginServerTS int64             `json:"origin_server_ts"`
	PDUs           []json.RawMessage `json:"pdus"`
}

func (a *API) pduTransaction(pdus []json.RawMessage) pduTransaction {
	if pdus == nil {
		pdus = []json.RawMessage{}
	}
	return pduTransaction{Origin: a.cfg.ServerName, OriginServerTS: time.Now().UnixMilli(), PDUs: pdus}
}

// getEvent is GET /event/{eventId}: the event, redacted when the origin
// may not see its content (its DAG position is never secret from a server
// in the room).
func (a *API) getEvent(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	if !a.serving(w) {
		return
	}
	origin, evID := Origin(r), p.ByName("eventId")
	var out json.RawMessage
	var merr *matrixError
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		rec, err := rt.Event(evID)
		if err != nil || rec.Rejected {
			merr = errorf(http.StatusNotFound, "M_NOT_FOUND", "event not found")
			return nil
		}
		room, err := rt.Room(rec.RoomID)
		if err != nil {
			merr = errorf(http.StatusNotFound, "M_NOT_FOUND", "event not found")
			return nil
		}
		if merr = roomAccess(rt, rec.RoomID, origin); merr != nil {
			return nil
		}
		out = newVisibility(rt, room, origin).served(rec)
		return nil
	})
	if merr != nil {
		writeMatrixError(w, merr)
		return
	}
	writeJSON(w, http.StatusOK, a.pduTransaction([]json.RawMessage{out}))
}

// stateAt reads the state before event_id in roomID with its auth chain,
// for /state and /state_ids.
func (a *API) stateAt(w http.ResponseWriter, r *http.Request, p httprouter.Params, fn func(rt *fsm.ReadTx, state, chain []string)) {
	if !a.serving(w) {
		return
	}
	origin, roomID, evID := Origin(r), p.ByName("roomId"), r.URL.Query().Get("event_id")
	if evID == "" {
		writeError(w, http.StatusBadRequest, "M_MISSING_PARAM", "event_id is required")
		return
	}
	var merr *matrixError
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		if merr = roomAccess(rt, roomID, origin); merr != nil {
			return nil
		}
		rec, err := rt.Event(evID)
		if err != nil || rec.RoomID != roomID || rec.Rejected {
			merr = errorf(http.StatusNotFound, "M_NOT_FOUND", "could not find event "+evID+" in room "+roomID)
			return nil
		}
		st, err := rt.StateBeforeEvent(rec)
		if err != nil {
			merr = errorf(http.StatusNotFound, "M_NOT_FOUND", "the state at event "+evID+" is not known here")
			return nil
		}
		room, err := rt.Room(roomID)
		if err != nil || !newVisibility(rt, room, origin).canSee(rec) {
			merr = errorf(http.StatusForbidden, "M_FORBIDDEN", "you may not see the state at the requested event")
			return nil
		}
		state := make([]string, 0, len(st))
		for _, sid := range st {
			state = append(state, sid)
		}
		slices.Sort(state)
		fn(rt, state, authChain(rt, state))
		return nil
	})
	if merr != nil {
		writeMatrixError(w, merr)
	}
}

// getStateIDs is GET /state_ids/{roomId}?event_id=.
func (a *API) getStateIDs(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	a.stateAt(w, r, p, func(_ *fsm.ReadTx, state, chain []string) {
		writeJSON(w, http.StatusOK, map[string][]string{"pdu_ids": state, "auth_chain_ids": chain})
	})
}

// getState is GET /state/{roomId}?event_id=.
func (a *API) getState(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	a.stateAt(w, r, p, func(rt *fsm.ReadTx, state, chain []string) {
		writeJSON(w, http.StatusOK, map[string][]json.RawMessage{"pdus": pdusOf(rt, state), "auth_chain": pdusOf(rt, chain)})
	})
}

// getEventAuth is GET /event_auth/{roomId}/{eventId}: the event's full auth
// chain.
func (a *API) getEventAuth(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	if !a.serving(w) {
		return
	}
	origin, roomID, evID := Origin(r), p.ByName("roomId"), p.ByName("eventId")
	var chain []json.RawMessage
	var merr *matrixError
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		if merr = roomAccess(rt, roomID, origin); merr != nil {
			return nil
		}
		rec, err := rt.Event(evID)
		if err != nil || rec.RoomID != roomID {
			merr = errorf(http.StatusNotFound, "M_NOT_FOUND", "could not find event "+evID+" in room "+roomID)
			return nil
		}
		chain = pdusOf(rt, authChain(rt, []string{evID}))
		return nil
	})
	if merr != nil {
		writeMatrixError(w, merr)
		return
	}
	writeJSON(w, http.StatusOK, map[string][]json.RawMessage{"auth_chain": chain})
}

// serving reports whether this API serves rooms (fake remote servers in
// tests do not); if not it has answered.
func (a *API) serving(w http.ResponseWriter) bool {
	if a.store == nil {
		writeError(w, http.StatusNotFound, "M_UNRECOGNIZED", "this server serves no rooms")
		return false
	}
	return true
}

// authEventsOf lists a stored PDU's auth event IDs.
func authEventsOf(raw json.RawMessage) []string {
	var out []string
	for _, v := range gjson.GetBytes(raw, "auth_events").Array() {
		out = append(out, v.Str)
	}
	return out
}

// authChain is every event reachable from the auth events of start
// (recursively), sorted; events not stored here are left out.
func authChain(rt *fsm.ReadTx, start []string) []string {
	seen := map[string]bool{}
	var queue []string
	for _, s := range start {
		if rec, err := rt.Event(s); err == nil {
			queue = append(queue, authEventsOf(rec.PDU)...)
		}
	}
	for len(queue) > 0 && len(seen) < maxAuthChainServed {
		evID := queue[0]
		queue = queue[1:]
		if seen[evID] {
			continue
		}
		rec, err := rt.Event(evID)
		if err != nil {
			continue
		}
		seen[evID] = true
		queue = append(queue, authEventsOf(rec.PDU)...)
	}
	out := make([]string, 0, len(seen))
	for evID := range seen {
		out = append(out, evID)
	}
	slices.Sort(out)
	return out
}

// pdusOf reads the PDUs of stored events, in the order given.
func pdusOf(rt *fsm.ReadTx, ids []string) []json.RawMessage {
	out := make([]json.RawMessage, 0, len(ids))
	for _, evID := range ids {
		if rec, err := rt.Event(evID); err == nil {
			out = append(out, rec.PDU)
		}
	}
	return out
}
