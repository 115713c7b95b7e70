package federation

import (
	"context"
	"encoding/json"
	"slices"
	"sync"

	mfed "maunium.net/go/mautrix/federation"
	"maunium.net/go/mautrix/id"
)

// Fetching what received events depend on, from the server that sent them.
// Everything is bounded: requests, events per answer, events in all.
const (
	gmeLimit         = 20    // get_missing_events limit per round
	gmeRounds        = 2     // get_missing_events rounds
	maxGaps          = 3     // gaps filled with /state_ids per run
	maxGapState      = 20000 // state + auth chain IDs of one gap
	maxAuthChain     = 10000 // events of one /event_auth answer
	authChainCalls   = 3     // /event_auth requests per run
	authRounds       = 5     // rounds of single /event fetches for auth events
	maxFetchedEvents = 200   // events fetched one by one per run
	fetchByIDMax     = 50    // beyond this a gap's state comes from /state
	fetchParallel    = 8
	smallAnswerBytes = 16 << 20
	stateAnswerBytes = 256 << 20
)

// fetchClient is the signing client with an answer size limit.
func (a *API) fetchClient(limit int64) (*mfed.Client, error) {
	fed, err := a.client.Fed()
	if err != nil {
		return nil, err
	}
	cp := *fed
	cp.ResponseSizeLimit = limit
	return &cp, nil
}

// verifyFetched checks a fetched PDU like a received one; wantID, when
// set, is the event ID it must have. Failures are logged and give nil.
func (r *ingestRun) verifyFetched(raw json.RawMessage, wantID string) *VerifiedPDU {
	v, err := r.a.VerifyPDU(r.ctx, r.ver, r.roomID, raw)
	if err == nil && wantID != "" && v.EventID != wantID {
		r.log.Debug("fetched event has another ID", "origin", r.origin, "want", wantID, "got", v.EventID)
		return nil
	}
	if err != nil {
		r.log.Debug("fetched PDU refused", "origin", r.origin, "error", err)
		return nil
	}
	return v
}

// fetchMissingPrevs asks the origin for the prev events the run lacks
// (get_missing_events, from our forward extremities), at most gmeRounds
// times. An event stored as an outlier is not fetched again: the events
// after it are handled as a gap.
func (r *ingestRun) fetchMissingPrevs() {
	for range gmeRounds {
		missing := r.missingPrevs()
		if len(missing) == 0 {
			return
		}
		latest := make([]id.EventID, 0, len(missing))
		for _, evID := range sortedKeys(missing) {
			latest = append(latest, id.EventID(evID))
		}
		earliest := make([]id.EventID, 0, len(r.room.Extremities))
		for _, e := range r.room.Extremities {
			earliest = append(earliest, id.EventID(e))
		}
		fed, err := r.a.fetchClient(smallAnswerBytes)
		if err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(r.ctx, fetchTimeout)
		resp, err := fed.GetMissingEvents(ctx, &mfed.ReqGetMissingEvents{ServerName: r.origin,
			RoomID: id.RoomID(r.roomID), EarliestEvents: earliest, LatestEvents: latest, Limit: gmeLimit})
		cancel()
		if err != nil {
			r.log.Debug("get_missing_events failed", "origin", r.origin, "room_id", r.roomID, "error", err)
			return
		}
		var got []*VerifiedPDU
		for _, raw := range resp.Events[:min(len(resp.Events), gmeLimit)] {
			if v := r.verifyFetched(raw, ""); v != nil && r.events[v.EventID] == nil {
				got = append(got, v)
			}
		}
		known, _ := r.stored(eventIDs(got))
		added := 0
		for _, v := range got {
			if !known[v.EventID] {
				r.events[v.EventID] = v
				added++
			}
		}
		r.log.Debug("fetched missing events", "origin", r.origin, "room_id", r.roomID, "added", added)
		if added == 0 {
			return
		}
	}
}

// fillGaps gets, for the earliest events whose prev events are still
// missing, the state before them from the origin, so they are stored with
// their gap (fsm.RemoteEventsCmd.States).
func (r *ingestRun) fillGaps() {
	missing := r.missingPrevs()
	gaps := sortedKeys(missing)
	slices.SortStableFunc(gaps, func(x, y string) int {
		return int(min(max(r.events[x].PDU.Depth-r.events[y].PDU.Depth, -1), 1))
	})
	for _, evID := range gaps[:min(len(gaps), maxGaps)] {
		r.fillGap(evID)
	}
}

func (r *ingestRun) fillGap(evID string) {
	fed, err := r.a.fetchClient(stateAnswerBytes)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(r.ctx, fetchTimeout)
	defer cancel()
	ids, err := fed.GetStateIDs(ctx, r.origin, id.RoomID(r.roomID), id.EventID(evID))
	if err != nil || len(ids.PDUs)+len(ids.AuthChain) > maxGapState {
		r.log.Debug("state_ids failed", "origin", r.origin, "event_id", evID, "error", err)
		return
	}
	var all []string
	for _, e := range append(slices.Clone(ids.PDUs), ids.AuthChain...) {
		all = append(all, string(e))
	}
	known, _ := r.stored(all)
	need := map[string]bool{}
	for _, e := range all {
		if !known[e] && r.events[e] == nil && r.outliers[e] == nil {
			need[e] = true
		}
	}
	if len(need) > fetchByIDMax {
		st, err := fed.GetState(ctx, r.origin, id.RoomID(r.roomID), id.EventID(evID))
		if err != nil {
			r.log.Debug("state failed", "origin", r.origin, "event_id", evID, "error", err)
			return
		}
		for _, raw := range append(slices.Clone(st.PDUs), st.AuthChain...) {
			if v := r.verifyFetched(raw, ""); v != nil && need[v.EventID] {
				r.outliers[v.EventID] = v
			}
		}
	} else {
		r.fetchOutliers(sortedKeys(need))
	}
	state := make([]string, 0, len(ids.PDUs))
	for _, e := range ids.PDUs {
		state = append(state, string(e))
	}
	r.states[evID] = state
}

// fetchMissingAuth fetches the auth events the run's events name and the
// store lacks: the whole auth chain of an event that needs some (one
// /event_auth request), then single events, a few rounds deep.
func (r *ingestRun) fetchMissingAuth() {
	for calls := 0; calls < authChainCalls; calls++ {
		missing := r.missingAuth()
		if len(missing) == 0 {
			return
		}
		needs := r.eventNeeding(missing)
		if needs == "" {
			break
		}
		fed, err := r.a.fetchClient(stateAnswerBytes)
		if err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(r.ctx, fetchTimeout)
		resp, err := fed.GetEventAuthChain(ctx, r.origin, id.RoomID(r.roomID), id.EventID(needs))
		cancel()
		if err != nil || len(resp.AuthChain) > maxAuthChain {
			r.log.Debug("event_auth failed", "origin", r.origin, "event_id", needs, "error", err)
			break
		}
		r.addOutliers(resp.AuthChain)
	}
	for range authRounds {
		missing := r.missingAuth()
		if len(missing) == 0 || r.fetched >= maxFetchedEvents {
			return
		}
		r.fetchOutliers(missing)
	}
}

// eventNeeding is a run event (received first) that names one of the
// missing auth events.
func (r *ingestRun) eventNeeding(missing []string) string {
	for _, evID := range append(slices.Clone(r.received), sortedKeys(r.events)...) {
		if v := r.events[evID]; v != nil {
			for _, ae := range v.PDU.AuthEvents {
				if slices.Contains(missing, string(ae)) {
					return evID
				}
			}
		}
	}
	return ""
}

// addOutliers verifies fetched events and keeps those not stored yet.
func (r *ingestRun) addOutliers(raws []json.RawMessage) {
	var got []*VerifiedPDU
	for _, raw := range raws {
		if v := r.verifyFetched(raw, ""); v != nil && r.events[v.EventID] == nil {
			got = append(got, v)
		}
	}
	known, _ := r.stored(eventIDs(got))
	for _, v := range got {
		if !known[v.EventID] {
			r.outliers[v.EventID] = v
		}
	}
}

// fetchOutliers gets events one by one (GET /event/{eventId}), a few at a
// time, within the run's budget.
func (r *ingestRun) fetchOutliers(ids []string) {
	ids = ids[:min(len(ids), max(maxFetchedEvents-r.fetched, 0))]
	r.fetched += len(ids)
	fed, err := r.a.fetchClient(smallAnswerBytes)
	if err != nil {
		return
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, fetchParallel)
	for _, evID := range ids {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			ctx, cancel := context.WithTimeout(r.ctx, fetchTimeout)
			defer cancel()
			resp, err := fed.GetEvent(ctx, r.origin, id.EventID(evID))
			if err != nil || len(resp.PDUs) == 0 {
				r.log.Debug("event fetch failed", "origin", r.origin, "event_id", evID, "error", err)
				return
			}
			if v := r.verifyFetched(resp.PDUs[0], evID); v != nil {
				mu.Lock()
				r.outliers[evID] = v
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

func eventIDs(vs []*VerifiedPDU) []string {
	out := make([]string, 0, len(vs))
	for _, v := range vs {
		out = append(out, v.EventID)
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
