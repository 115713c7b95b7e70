package federation

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"

	"github.com/tidwall/gjson"
	mfed "maunium.net/go/mautrix/federation"

	"github.com/ganglion/ganglion/fsm"
)

// Checking what a resident server answers to send_join before any of it is
// proposed (invariant 7): every event's format, signatures and content
// hash; the room's create event present; events ordered so that each one's
// auth events come before it.

// maxJoinStateEvents bounds the events one send_join answer may hold.
const maxJoinStateEvents = 200000

// joinState is a checked send_join answer, ready for the join proposal.
type joinState struct {
	join     json.RawMessage // our join, with the resident's signature if it added one
	joinID   string
	outliers []json.RawMessage // auth chain and state, auth events first
	stateIDs []string          // the state before the join
	keys     map[string]map[string]string
}

// checkJoinResponse verifies the answer to our join m.
func (a *API) checkJoinResponse(ctx context.Context, roomID string, m *signedMembership, resp *mfed.RespSendJoin) (*joinState, error) {
	log := a.log.Named("membership")
	if resp == nil || len(resp.State) == 0 || len(resp.State)+len(resp.AuthChain) > maxJoinStateEvents {
		return nil, fsm.Errorf(http.StatusBadGateway, "M_UNKNOWN", "the resident server sent no usable room state")
	}
	st := &joinState{join: m.raw, joinID: m.id, keys: map[string]map[string]string{}}
	if len(resp.Event) > 0 {
		// The resident's copy carries its signature (restricted joins).
		v, err := a.VerifyPDU(ctx, m.ver, roomID, resp.Event)
		if err == nil && v.EventID == m.id && !v.Redacted {
			st.join = v.Raw
			a.keysFor(ctx, v.PDU, st.keys)
		} else {
			log.Warn("ignoring the resident's copy of our join", "room_id", roomID, "error", err)
		}
	}
	byID := map[string]*VerifiedPDU{}
	check := func(raw json.RawMessage) *VerifiedPDU {
		v, err := a.VerifyPDU(ctx, m.ver, roomID, raw)
		if err != nil {
			log.Debug("dropping an event of the join's state", "room_id", roomID, "error", err)
			return nil
		}
		if prev := byID[v.EventID]; prev != nil {
			return prev
		}
		byID[v.EventID] = v
		a.keysFor(ctx, v.PDU, st.keys)
		return v
	}
	for _, raw := range resp.AuthChain {
		check(raw)
	}
	keys := map[[2]string]bool{}
	hasCreate := false
	for _, raw := range resp.State {
		v := check(raw)
		if v == nil || v.PDU.StateKey == nil {
			continue
		}
		k := [2]string{v.PDU.Type, *v.PDU.StateKey}
		if keys[k] {
			return nil, fsm.Errorf(http.StatusBadGateway, "M_UNKNOWN", "the resident server's state holds %s %q twice", k[0], k[1])
		}
		keys[k] = true
		st.stateIDs = append(st.stateIDs, v.EventID)
		if k == [2]string{"m.room.create", ""} &&
			gjson.GetBytes(v.PDU.Content, "room_version").Str == string(m.ver) {
			hasCreate = true
		}
	}
	if !hasCreate {
		return nil, fsm.Errorf(http.StatusBadGateway, "M_UNKNOWN", "the resident server's state has no create event of this room version")
	}
	sort.Strings(st.stateIDs)
	st.outliers = authOrder(byID)
	return st, nil
}

// authOrder lists the events so that every event comes after the create
// event and those of its auth events that are in the set; ties in event ID
// order, so the same answer gives the same command.
func authOrder(byID map[string]*VerifiedPDU) []json.RawMessage {
	ids := make([]string, 0, len(byID))
	for evID := range byID {
		ids = append(ids, evID)
	}
	sort.Strings(ids)
	out := make([]json.RawMessage, 0, len(ids))
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(string)
	visit = func(evID string) {
		v := byID[evID]
		if v == nil || state[evID] != 0 {
			return // outside the set, done, or a cycle (Apply refuses it)
		}
		state[evID] = 1
		for _, ae := range v.PDU.AuthEvents {
			visit(string(ae))
		}
		state[evID] = 2
		out = append(out, v.Raw)
	}
	// The create event first: from room v12 on, events do not list it in
	// auth_events, yet the auth rules read it through the room ID.
	for _, evID := range ids {
		if v := byID[evID]; v.PDU.Type == "m.room.create" && v.PDU.StateKey != nil && *v.PDU.StateKey == "" {
			visit(evID)
		}
	}
	for _, evID := range ids {
		visit(evID)
	}
	return out
}
