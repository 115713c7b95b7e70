package stateres

import (
	"container/heap"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
	"go.mau.fi/util/exgjson"
	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/id"
)

// ErrAuthCycle: the auth_events of the events to sort form a cycle.
var ErrAuthCycle = errors.New("stateres: auth events form a cycle")

// infinitePower is a room v12 creator's power level; canonical JSON keeps
// every real level within ±2^53.
const infinitePower = math.MaxInt64

// powerItem is one vertex of the reverse topological power ordering.
type powerItem struct {
	id    string
	power int64
	ts    int64
}

// before is the spec's x < y: greater sender power, then smaller
// origin_server_ts, then smaller event ID. Event IDs are unique, so this
// is a total order and the heap's result never depends on insertion order.
func (x powerItem) before(y powerItem) bool {
	if x.power != y.power {
		return x.power > y.power
	}
	if x.ts != y.ts {
		return x.ts < y.ts
	}
	return x.id < y.id
}

type powerHeap []powerItem

func (h powerHeap) Len() int           { return len(h) }
func (h powerHeap) Less(i, j int) bool { return h[i].before(h[j]) }
func (h powerHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *powerHeap) Push(x any)        { *h = append(*h, x.(powerItem)) }
func (h *powerHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}

// reverseTopologicalPowerSort is step 1: Kahn's algorithm over X's auth
// DAG, oldest first, taking the smallest ready vertex at each step.
func (r *resolver) reverseTopologicalPowerSort(powerEvents []string, full map[string]struct{}) ([]string, error) {
	graph, err := r.powerGraph(powerEvents, full)
	if err != nil {
		return nil, err
	}
	nodes := slices.Sorted(maps.Keys(graph))
	items := make(map[string]powerItem, len(nodes))
	pending := make(map[string]int, len(nodes))
	namedBy := make(map[string][]string)
	h := &powerHeap{}
	for _, eid := range nodes {
		ev, err := r.event(eid)
		if err != nil {
			return nil, err
		}
		power, err := r.senderPower(ev)
		if err != nil {
			return nil, err
		}
		items[eid] = powerItem{id: eid, power: power, ts: ev.OriginServerTS}
		pending[eid] = len(graph[eid])
		for _, a := range graph[eid] {
			namedBy[a] = append(namedBy[a], eid)
		}
		if len(graph[eid]) == 0 {
			heap.Push(h, items[eid])
		}
	}
	out := make([]string, 0, len(nodes))
	for h.Len() > 0 {
		it := heap.Pop(h).(powerItem)
		out = append(out, it.id)
		for _, p := range namedBy[it.id] {
			pending[p]--
			if pending[p] == 0 {
				heap.Push(h, items[p])
			}
		}
	}
	if len(out) != len(nodes) {
		return nil, fmt.Errorf("%w among %d power events", ErrAuthCycle, len(nodes)-len(out))
	}
	return out, nil
}

// senderPower is the power level of ev's sender according to ev's own
// auth events, as Synapse computes it: the users entry, else
// users_default, else 0; with no power levels event, 100 for the room's
// creator (before v12). From v12 the creators' level is infinite.
func (r *resolver) senderPower(ev *pdu.PDU) (int64, error) {
	var pl, create *pdu.PDU
	for _, aid := range ev.AuthEvents {
		ae, err := r.event(string(aid))
		if err != nil {
			return 0, err
		}
		if ae.StateKey == nil || *ae.StateKey != "" {
			continue
		}
		if ae.Type == "m.room.power_levels" && pl == nil {
			pl = ae
		} else if ae.Type == "m.room.create" && create == nil {
			create = ae
		}
	}
	if r.version.PrivilegedRoomCreators() {
		create, err := r.roomCreate(ev)
		if err != nil {
			return 0, err
		}
		if isCreator(create, ev.Sender) {
			return infinitePower, nil
		}
	} else if pl == nil && create != nil && legacyCreator(r.version, create) == ev.Sender {
		return 100, nil
	}
	if pl == nil {
		return 0, nil
	}
	users := gjson.GetBytes(pl.Content, "users")
	if n, ok := r.powerInt(users.Get(exgjson.Path(ev.Sender.String()))); ok {
		return n, nil
	}
	if n, ok := r.powerInt(gjson.GetBytes(pl.Content, "users_default")); ok {
		return n, nil
	}
	return 0, nil
}

// roomCreate is the m.room.create event of ev's room in versions where the
// room ID is the create event's ID.
func (r *resolver) roomCreate(ev *pdu.PDU) (*pdu.PDU, error) {
	if ev.Type == "m.room.create" && ev.StateKey != nil && *ev.StateKey == "" {
		return ev, nil
	}
	rid := string(ev.RoomID)
	if len(rid) < 2 || rid[0] != '!' {
		return nil, fmt.Errorf("%w: create event of room %q", ErrMissingEvent, rid)
	}
	return r.event("$" + rid[1:])
}

func isCreator(create *pdu.PDU, user id.UserID) bool {
	if create.Sender == user {
		return true
	}
	for _, c := range gjson.GetBytes(create.Content, "additional_creators").Array() {
		if c.Type == gjson.String && c.Str == user.String() {
			return true
		}
	}
	return false
}

// legacyCreator is the creator before v12: content.creator up to v10, the
// sender from v11.
func legacyCreator(version id.RoomVersion, create *pdu.PDU) id.UserID {
	if version.CreatorInContent() {
		return id.UserID(gjson.GetBytes(create.Content, "creator").Str)
	}
	return create.Sender
}

// powerInt reads a power level the way the room version's auth rules do:
// integers only from v10; before that Python's int() of a number, a
// numeric string or a boolean.
func (r *resolver) powerInt(v gjson.Result) (int64, bool) {
	switch v.Type {
	case gjson.Number:
		return v.Int(), true
	case gjson.String:
		if r.version.ValidatePowerLevelInts() {
			return 0, false
		}
		n, err := strconv.ParseInt(strings.TrimSpace(v.Str), 10, 64)
		return n, err == nil
	case gjson.True, gjson.False:
		if r.version.ValidatePowerLevelInts() {
			return 0, false
		}
		if v.Type == gjson.True {
			return 1, true
		}
		return 0, true
	}
	return 0, false
}
