package federation

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"

	"github.com/tidwall/gjson"
	"maunium.net/go/mautrix/id"

	"github.com/ganglion/ganglion/fsm"
)

// What the resident server hands a joining server (send_join v2): the
// room's state before the join and the auth chain of that state and of the
// join, in full (omit_members is not honoured: members_omitted is false).

// maxJoinAuthChain bounds the auth chain walked for one answer.
const maxJoinAuthChain = 100000

// sendJoinResponse is send_join v2's answer.
type sendJoinResponse struct {
	AuthChain      []json.RawMessage `json:"auth_chain"`
	State          []json.RawMessage `json:"state"`
	Event          json.RawMessage   `json:"event"`
	MembersOmitted bool              `json:"members_omitted"`
	ServersInRoom  []string          `json:"servers_in_room"`
}

// answerSendJoin writes the state before the stored join eventID, its auth
// chain, the join as stored (with our signature when we authorised it) and
// the servers in the room.
func (a *API) answerSendJoin(w http.ResponseWriter, roomID, eventID string) {
	resp := &sendJoinResponse{AuthChain: []json.RawMessage{}, State: []json.RawMessage{}, ServersInRoom: []string{}}
	err := a.store.View(func(rt *fsm.ReadTx) error {
		join, err := rt.Event(eventID)
		if err != nil {
			return err
		}
		before, err := rt.StateBeforeEvent(join)
		if err != nil {
			return err
		}
		resp.Event = join.PDU
		stateIDs := make([]string, 0, len(before))
		for _, evID := range before {
			stateIDs = append(stateIDs, evID)
		}
		sort.Strings(stateIDs)
		servers := map[string]bool{}
		roots := []string{eventID}
		for _, evID := range stateIDs {
			rec, err := rt.Event(evID)
			if err != nil {
				continue
			}
			resp.State = append(resp.State, rec.PDU)
			roots = append(roots, evID)
			if rec.Type == "m.room.member" && rec.StateKey != nil &&
				gjson.GetBytes(rec.PDU, "content.membership").Str == "join" {
				servers[id.UserID(*rec.StateKey).Homeserver()] = true
			}
		}
		resp.AuthChain = joinAuthChain(rt, roots)
		for s := range servers {
			resp.ServersInRoom = append(resp.ServersInRoom, s)
		}
		sort.Strings(resp.ServersInRoom)
		return nil
	})
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// joinAuthChain is every event reachable through auth_events from the
// roots (the roots themselves only when another root cites them), as
// stored PDUs in event ID order.
func joinAuthChain(rt *fsm.ReadTx, roots []string) []json.RawMessage {
	seen := map[string]*fsm.EventRecord{}
	var queue []string
	push := func(rec *fsm.EventRecord) {
		for _, ae := range gjson.GetBytes(rec.PDU, "auth_events").Array() {
			if _, ok := seen[ae.Str]; !ok && len(seen) < maxJoinAuthChain {
				seen[ae.Str] = nil
				queue = append(queue, ae.Str)
			}
		}
	}
	for _, root := range roots {
		if rec, err := rt.Event(root); err == nil {
			push(rec)
		}
	}
	for len(queue) > 0 {
		evID := queue[0]
		queue = queue[1:]
		rec, err := rt.Event(evID)
		if err != nil {
			delete(seen, evID)
			continue
		}
		seen[evID] = rec
		push(rec)
	}
	ids := make([]string, 0, len(seen))
	for evID, rec := range seen {
		if rec != nil {
			ids = append(ids, evID)
		}
	}
	sort.Strings(ids)
	out := make([]json.RawMessage, len(ids))
	for i, evID := range ids {
		out[i] = seen[evID].PDU
	}
	return out
}

// forwardToRoom queues an event a server handed us in a handshake for the
// room's other servers (the resident server passes it on); the origin has
// it already. Failure to queue is logged: the others fetch it when a later
// event names it.
func (a *API) forwardToRoom(ctx context.Context, roomID, eventID, origin string) {
	var dests []string
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		seen := map[string]bool{a.cfg.ServerName: true, origin: true}
		for user, membership := range rt.RoomMembers(roomID) {
			server := id.UserID(user).Homeserver()
			if membership == "join" && !seen[server] {
				seen[server] = true
				dests = append(dests, server)
			}
		}
		return nil
	})
	if len(dests) == 0 {
		return
	}
	sort.Strings(dests)
	if _, _, err := a.node.Propose(ctx, fsm.OpFedEnqueue, fsm.FedEnqueueCmd{Destinations: dests, EventIDs: []string{eventID}}); err != nil {
		a.log.Named("membership").Warn("could not queue a handshake event for the room's servers",
			"room_id", roomID, "event_id", eventID, "error", err)
	}
}
