package stateres

import (
	"cmp"
	"fmt"
	"math"
	"slices"

	"maunium.net/go/mautrix/federation/pdu"
)

// noMainline is the position of an event whose power levels chain never
// meets the mainline: greater than any index, so it sorts first.
const noMainline = math.MaxInt

// mainlineSort is step 3: order ids by mainline position (greater first),
// then origin_server_ts, then event ID, against the mainline of plID.
func (r *resolver) mainlineSort(ids []string, plID string) ([]string, error) {
	mainline := make(map[string]int)
	for cur, i := plID, 0; cur != ""; i++ {
		if _, loop := mainline[cur]; loop {
			return nil, fmt.Errorf("%w in the power levels mainline at %s", ErrAuthCycle, cur)
		}
		mainline[cur] = i
		ev, err := r.event(cur)
		if err != nil {
			return nil, err
		}
		if cur, err = r.powerLevelsAuthEvent(ev); err != nil {
			return nil, err
		}
	}
	type item struct {
		id  string
		pos int
		ts  int64
	}
	known := make(map[string]int) // power levels event -> its position
	items := make([]item, 0, len(ids))
	for _, eid := range ids {
		ev, err := r.event(eid)
		if err != nil {
			return nil, err
		}
		pos, err := r.mainlinePosition(ev, mainline, known)
		if err != nil {
			return nil, err
		}
		items = append(items, item{id: eid, pos: pos, ts: ev.OriginServerTS})
	}
	slices.SortFunc(items, func(x, y item) int {
		if c := cmp.Compare(y.pos, x.pos); c != 0 {
			return c
		}
		if c := cmp.Compare(x.ts, y.ts); c != 0 {
			return c
		}
		return cmp.Compare(x.id, y.id)
	})
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.id
	}
	return out, nil
}

// mainlinePosition follows the power levels events e1, e2, ... in the
// auth events of ev (ev itself excluded) to the first that is on the
// mainline; known caches the answer for every event walked.
func (r *resolver) mainlinePosition(ev *pdu.PDU, mainline, known map[string]int) (int, error) {
	cur, err := r.powerLevelsAuthEvent(ev)
	if err != nil {
		return 0, err
	}
	pos := noMainline
	var walked []string
	seen := make(map[string]struct{})
	for cur != "" {
		if p, ok := mainline[cur]; ok {
			pos = p
			break
		}
		if p, ok := known[cur]; ok {
			pos = p
			break
		}
		if _, loop := seen[cur]; loop {
			return 0, fmt.Errorf("%w in power levels auth events at %s", ErrAuthCycle, cur)
		}
		seen[cur] = struct{}{}
		walked = append(walked, cur)
		next, err := r.event(cur)
		if err != nil {
			return 0, err
		}
		if cur, err = r.powerLevelsAuthEvent(next); err != nil {
			return 0, err
		}
	}
	for _, w := range walked {
		known[w] = pos
	}
	return pos, nil
}

// powerLevelsAuthEvent is the m.room.power_levels event among ev's auth
// events, or "".
func (r *resolver) powerLevelsAuthEvent(ev *pdu.PDU) (string, error) {
	for _, aid := range ev.AuthEvents {
		ae, err := r.event(string(aid))
		if err != nil {
			return "", err
		}
		if ae.Type == "m.room.power_levels" && ae.StateKey != nil && *ae.StateKey == "" {
			return string(aid), nil
		}
	}
	return "", nil
}
