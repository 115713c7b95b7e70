package clientapi

import (
	"context"
	"net/http"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/ganglion/ganglion/fsm"
)

// GET /sync: compute the delta since the token in one read transaction; if
// it is empty, long-poll until an applied batch or an ephemeral change
// could make it non-empty, then compute again.

type eventList struct {
	Events []any `json:"events"`
}

type syncResponse struct {
	NextBatch   string         `json:"next_batch"`
	Rooms       syncRooms      `json:"rooms"`
	Presence    eventList      `json:"presence"`
	AccountData eventList      `json:"account_data"`
	ToDevice    eventList      `json:"to_device"`
	DeviceLists deviceLists    `json:"device_lists"`
	OTKCounts   map[string]int `json:"device_one_time_keys_count"`
	// FallbackKeyTypes is required by the spec even when empty: clients
	// take its presence as the server's support for fallback keys.
	FallbackKeyTypes []string `json:"device_unused_fallback_key_types"`
}

type deviceLists struct {
	Changed []string `json:"changed"`
	Left    []string `json:"left"`
}

type syncRooms struct {
	Join   map[string]*joinedRoom   `json:"join"`
	Invite map[string]*strippedRoom `json:"invite"`
	Knock  map[string]*strippedRoom `json:"knock"`
	Leave  map[string]*leftRoom     `json:"leave"`
}

func newSyncResponse() *syncResponse {
	return &syncResponse{
		Rooms: syncRooms{Join: map[string]*joinedRoom{}, Invite: map[string]*strippedRoom{},
			Knock: map[string]*strippedRoom{}, Leave: map[string]*leftRoom{}},
		Presence: eventList{Events: []any{}}, AccountData: eventList{Events: []any{}},
		ToDevice: eventList{Events: []any{}}, DeviceLists: deviceLists{Changed: []string{}, Left: []string{}},
		OTKCounts: map[string]int{},
	}
}

// empty reports whether the response carries nothing for the client, so a
// long-poll should keep waiting.
func (r *syncResponse) empty() bool {
	return len(r.Rooms.Join) == 0 && len(r.Rooms.Invite) == 0 && len(r.Rooms.Knock) == 0 &&
		len(r.Rooms.Leave) == 0 && len(r.Presence.Events) == 0 && len(r.AccountData.Events) == 0 &&
		len(r.ToDevice.Events) == 0 && len(r.DeviceLists.Changed) == 0 && len(r.DeviceLists.Left) == 0
}

// syncParams is one /sync request, parsed.
type syncParams struct {
	caller    *Caller
	filter    *syncFilter
	since     *syncToken // nil for an initial sync
	fullState bool
}

func (a *API) sync(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	sp, timeout, ok := a.parseSyncParams(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	if sp.since != nil && !a.waitForToken(ctx, timeout, sp.since.Pos) {
		// This node has not caught up with the token: answer with nothing
		// rather than with a token that goes back in time.
		resp := newSyncResponse()
		resp.NextBatch = sp.since.String()
		writeJSON(w, http.StatusOK, resp)
		return
	}
	// Not bounded by the long-poll timeout: a short timeout must not skip
	// the deletion.
	a.ackToDevice(r.Context(), sp.caller, sp.since)
	for {
		// Take both wake-up channels before reading, so no change slips
		// between the read and the wait.
		notified, applied := a.node.Notifier().Changed()
		ephChanged := a.eph.Changed()
		resp, watch, err := a.computeSync(sp, applied)
		if err != nil {
			writeErr(w, err)
			return
		}
		if sp.since == nil || timeout == 0 || !resp.empty() {
			writeJSON(w, http.StatusOK, resp)
			return
		}
		if !a.park(ctx, watch, notified, ephChanged) {
			if r.Context().Err() == nil {
				writeJSON(w, http.StatusOK, resp)
			}
			return
		}
	}
}

// parseSyncParams reads the query and applies set_presence; on a bad
// parameter it writes the 400 and returns ok false. The timeout is zero
// when the request must not wait (full_state ignores it).
func (a *API) parseSyncParams(w http.ResponseWriter, r *http.Request) (sp *syncParams, timeout time.Duration, ok bool) {
	c := callerOf(r)
	q := r.URL.Query()
	bad := func(msg string) (*syncParams, time.Duration, bool) {
		writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", msg)
		return nil, 0, false
	}
	timeout, err := longPollTimeout(q.Get("timeout"))
	if err != nil {
		return bad("timeout must be an integer")
	}
	sp = &syncParams{caller: c}
	switch q.Get("full_state") {
	case "", "false":
	case "true":
		sp.fullState, timeout = true, 0
	default:
		return bad("full_state must be true or false")
	}
	setPresence := q.Get("set_presence")
	switch setPresence {
	case "":
		setPresence = "online"
	case "online", "offline", "unavailable":
	default:
		return bad("set_presence must be online, offline or unavailable")
	}
	if s := q.Get("since"); s != "" {
		tok, err := parseSyncToken(s)
		if err != nil {
			return bad("invalid since token")
		}
		sp.since = &tok
	}
	if sp.filter, ok = a.loadSyncFilter(w, c.UserID, q.Get("filter")); !ok {
		return nil, 0, false
	}
	a.markPresence(c.UserID, setPresence)
	return sp, timeout, true
}

// markPresence applies set_presence, skipping a change that would only
// refresh an unchanged state: every change wakes every long-poll.
func (a *API) markPresence(userID, presence string) {
	if presence == "offline" {
		return
	}
	cur, ok := a.eph.Presence(userID)
	if ok && cur.Presence == presence && time.Now().UnixMilli()-cur.LastActiveTS < 30_000 {
		return
	}
	a.setPresence(userID, presence, cur.StatusMsg)
}

// computeSync builds the response from one consistent view of the store.
// The watch tells a long-poll which wake-ups may change it; applied is the
// notifier's index taken before the view.
func (a *API) computeSync(sp *syncParams, applied uint64) (*syncResponse, *longPollWatch, error) {
	resp := newSyncResponse()
	var watch *longPollWatch
	ephSerial := a.eph.Serial() // before any ephemeral read: a change after it is resent, never lost
	err := a.store.View(func(rt *fsm.ReadTx) error {
		s := newSyncer(a, rt, sp, ephSerial)
		s.rooms(resp)
		s.globalData(resp)
		e2eeSync(a, rt, sp.caller, s.since, resp)
		resp.NextBatch = s.nextToken().String()
		watch = s.watch(applied)
		return nil
	})
	return resp, watch, err
}
