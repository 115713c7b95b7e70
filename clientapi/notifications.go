package clientapi

import (
	"encoding/json"
	"math"
	"net/http"
	"sort"
	"strconv"

	"github.com/julienschmidt/httprouter"
	"github.com/tidwall/gjson"

	"github.com/ganglion/ganglion/fsm"
)

// GET /notifications (notifications.yaml): the events of the user's joined
// rooms that their push rules say notify, newest first, computed on read.
// Only unread events count (after the user's read receipt, or their join
// when they have none), as Synapse does, so every entry has read=false. The
// work is bounded: a request examines at most notifScanPerRoom events of a
// room and notifScanTotal in all, most recently active rooms first.
const (
	notifDefaultLimit = 50
	notifScanPerRoom  = 1000
	notifScanTotal    = 5000
)

type notification struct {
	Actions    json.RawMessage `json:"actions"`
	Event      *ClientEvent    `json:"event"`
	ProfileTag *string         `json:"profile_tag"`
	Read       bool            `json:"read"`
	RoomID     string          `json:"room_id"`
	TS         int64           `json:"ts"`
	pos        int64
}

func (a *API) notifications(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	c := callerOf(r)
	q := r.URL.Query()
	limit, ok := parseLimit(q.Get("limit"), notifDefaultLimit)
	if !ok {
		writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "limit must be a non-negative integer")
		return
	}
	limit = max(limit, 1)
	before := int64(math.MaxInt64)
	if from := q.Get("from"); from != "" {
		n, err := strconv.ParseInt(from, 10, 64)
		if err != nil || n <= 0 {
			writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "unknown from token")
			return
		}
		before = n
	}
	onlyHighlight := q.Get("only") == "highlight"

	var found []notification
	err := a.store.View(func(rt *fsm.ReadTx) error {
		rules, err := userPushRules(rt, c.UserID)
		if err != nil {
			return err
		}
		budget := notifScanTotal
		for _, room := range joinedRoomsByActivity(rt, c.UserID) {
			if budget <= 0 {
				break
			}
			found = append(found, roomNotifications(rt, c, room, &rules.Global, before, limit+1, onlyHighlight, &budget)...)
		}
		return nil
	})
	if err != nil {
		writeErr(w, err)
		return
	}
	sort.Slice(found, func(i, j int) bool { return found[i].pos > found[j].pos })
	resp := map[string]any{}
	if len(found) > limit {
		found = found[:limit]
		resp["next_token"] = strconv.FormatInt(found[limit-1].pos, 10)
	}
	resp["notifications"] = append([]notification{}, found...)
	writeJSON(w, http.StatusOK, resp)
}

// joinedRoomsByActivity lists the user's joined rooms, latest event first.
func joinedRoomsByActivity(rt *fsm.ReadTx, userID string) []*fsm.RoomRecord {
	var out []*fsm.RoomRecord
	for roomID, m := range rt.UserRooms(userID) {
		if m.Membership != "join" {
			continue
		}
		if room, err := rt.Room(roomID); err == nil {
			out = append(out, room)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].LastPos != out[j].LastPos {
			return out[i].LastPos > out[j].LastPos
		}
		return out[i].RoomID < out[j].RoomID
	})
	return out
}

// roomNotifications walks one room back from before down to what the user
// has read, keeping up to want notifying events.
func roomNotifications(rt *fsm.ReadTx, viewer *Caller, room *fsm.RoomRecord, rules *fsm.PushRuleset,
	before int64, want int, onlyHighlight bool, budget *int) []notification {
	readUpTo := readBoundary(rt, room.RoomID, viewer.UserID)
	var ctx *pushContext // built on the first event that needs it
	powers := map[string]int64{}
	var out []notification
	scanned := 0
	rt.RoomEvents(room.RoomID, before, false, 0, func(rec *fsm.EventRecord) bool {
		if rec.Pos <= readUpTo || scanned >= notifScanPerRoom || *budget <= 0 {
			return false
		}
		scanned++
		*budget--
		if rec.Rejected || rec.Sender == viewer.UserID {
			return true
		}
		ev := formatEvent(rt, rec, viewer)
		if ctx == nil {
			c := roomPushContext(rt, room.RoomID, viewer.UserID)
			ctx = &c
		}
		if _, ok := powers[rec.Sender]; !ok {
			powers[rec.Sender] = userPowerLevel(rt, room.RoomID, rec.Sender)
		}
		ctx.SenderPower = powers[rec.Sender]
		actions, ok := matchPushRules(rules, newPushEvent(ev), ctx)
		if !ok {
			return true
		}
		notify, highlight := actionEffects(actions)
		if !notify || (onlyHighlight && !highlight) {
			return true
		}
		ev.RoomID = ""
		out = append(out, notification{Actions: actions, Event: ev, RoomID: room.RoomID, TS: rec.TS, pos: rec.Pos})
		return len(out) < want
	})
	return out
}

// readBoundary is the stream position up to which the user has read the
// room: the furthest of their m.read and m.read.private receipts, unthreaded
// or for the main timeline ("main", as thread-aware clients send them), and
// never before their current membership event. Receipts inside threads are
// not counted per thread.
func readBoundary(rt *fsm.ReadTx, roomID, userID string) int64 {
	var upTo int64
	if m := rt.Membership(userID, roomID); m != nil {
		upTo = m.Pos
	}
	for _, rType := range []string{fsm.ReceiptRead, fsm.ReceiptReadPrivate} {
		for _, thread := range []string{"", "main"} {
			if rec, ok := rt.UserReceipt(roomID, userID, rType, thread); ok && rec.EventPos > upTo {
				upTo = rec.EventPos
			}
		}
	}
	return upTo
}

// roomPushContext is the per-room part of a pushContext (SenderPower is
// per event and left to the caller).
func roomPushContext(rt *fsm.ReadTx, roomID, userID string) pushContext {
	ctx := pushContext{UserID: userID, NotifyLevels: map[string]int64{"room": 50}}
	if m, err := rt.StateEvent(roomID, "m.room.member", userID); err == nil {
		ctx.DisplayName = gjson.GetBytes(m.PDU, "content.displayname").Str
	}
	for _, membership := range rt.RoomMembers(roomID) {
		if membership == "join" {
			ctx.MemberCount++
		}
	}
	if pl, err := rt.StateEvent(roomID, "m.room.power_levels", ""); err == nil {
		gjson.GetBytes(pl.PDU, "content.notifications").ForEach(func(k, v gjson.Result) bool {
			ctx.NotifyLevels[k.Str] = v.Int()
			return true
		})
	}
	return ctx
}
