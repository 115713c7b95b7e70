package clientapi

import (
	"github.com/tidwall/gjson"

	"github.com/ganglion/ganglion/fsm"
)

// unread_notifications and unread_thread_notifications of a joined room:
// the events after what the user has read that their push rules say notify
// (highlight when a rule sets the highlight tweak), computed on read as
// GET /notifications does. The main timeline and each thread have their
// own read point: an unthreaded receipt reads everything before it, a
// "main" receipt the main timeline, a receipt with a thread ID that thread
// (receipts.md, "Threaded read receipts").

// syncCountScan bounds the events one room's counts examine per sync, and
// syncCountBudget all rooms' together (an initial sync of many busy rooms
// counts the first ones exactly and the rest in part).
const (
	syncCountScan   = 500
	syncCountBudget = 5000
)

// threadOf is the thread root an event belongs to, "" for the main timeline.
func threadOf(rec *fsm.EventRecord) string {
	rel := gjson.GetBytes(rec.PDU, `content.m\.relates_to`)
	if rel.Get("rel_type").Str == "m.thread" {
		return rel.Get("event_id").Str
	}
	return ""
}

// readPoint is the furthest of the user's m.read and m.read.private
// receipts for one thread ID ("" unthreaded), never before from.
func readPoint(rt *fsm.ReadTx, roomID, userID, thread string, from int64) int64 {
	for _, rType := range []string{fsm.ReceiptRead, fsm.ReceiptReadPrivate} {
		if rec, ok := rt.UserReceipt(roomID, userID, rType, thread); ok && rec.EventPos > from {
			from = rec.EventPos
		}
	}
	return from
}

// unreadCounts counts the room's unread notifying events. With threaded,
// thread events are counted per thread root; without, all go in main.
func (s *syncer) unreadCounts(roomID string, m fsm.MembershipRecord, threaded bool) (main unreadCounts, threads map[string]unreadCounts) {
	if s.pushRules == nil {
		rules, err := userPushRules(s.rt, s.user)
		if err != nil {
			return
		}
		s.pushRules = rules
		s.countBudget = syncCountBudget
	}
	base := readPoint(s.rt, roomID, s.user, "", m.Pos)
	mainRead := readPoint(s.rt, roomID, s.user, "main", base)
	threadRead := map[string]int64{}
	key := unreadKey{user: s.user, room: roomID, threaded: threaded}
	rulesPos, sig := pushRulesPos(s.rt, s.user), ignoredSignature(s.ignored)
	stopAt := base
	if e := s.a.unread.get(key); e.reusable(s.rt, roomID, s.user, base, mainRead, rulesPos, sig, s.upto) {
		main, threads, threadRead = e.clone()
		stopAt = e.upto
	}
	defer func() {
		s.a.unread.put(key, &unreadEntry{upto: s.upto, base: base, mainRead: mainRead, threadRead: threadRead,
			rulesPos: rulesPos, ignoredSig: sig, main: main, threads: threads})
	}()
	readUpTo := func(thread string) int64 {
		if thread == "" {
			return mainRead
		}
		if _, ok := threadRead[thread]; !ok {
			threadRead[thread] = readPoint(s.rt, roomID, s.user, thread, base)
		}
		return threadRead[thread]
	}
	var ctx *pushContext
	powers := map[string]int64{}
	scanned := 0
	s.rt.RoomEvents(roomID, s.upto+1, false, 0, func(rec *fsm.EventRecord) bool {
		if rec.Pos <= stopAt || scanned >= syncCountScan || s.countBudget <= 0 {
			return false
		}
		scanned++
		s.countBudget--
		thread := threadOf(rec)
		if rec.Rejected || rec.Sender == s.user || hiddenByIgnore(s.ignored, rec) || rec.Pos <= readUpTo(thread) {
			return true
		}
		if ctx == nil {
			c := roomPushContext(s.rt, roomID, s.user)
			ctx = &c
		}
		if _, ok := powers[rec.Sender]; !ok {
			powers[rec.Sender] = userPowerLevel(s.rt, roomID, rec.Sender)
		}
		ctx.SenderPower = powers[rec.Sender]
		actions, ok := matchPushRules(&s.pushRules.Global, newPushEvent(formatEvent(s.rt, rec, s.p.caller)), ctx)
		if !ok {
			return true
		}
		notify, highlight := actionEffects(actions)
		if !notify {
			return true
		}
		if !threaded || thread == "" {
			main.add(highlight)
			return true
		}
		if threads == nil {
			threads = map[string]unreadCounts{}
		}
		c := threads[thread]
		c.add(highlight)
		threads[thread] = c
		return true
	})
	return main, threads
}

func (c *unreadCounts) add(highlight bool) {
	c.Notification++
	if highlight {
		c.Highlight++
	}
}
