package clientapi

import (
	"sort"
	"strings"
	"sync"

	"github.com/ganglion/ganglion/fsm"
)

// Unread counts are kept per user and room between syncs, so a sync only
// evaluates push rules on events that arrived since the last one. An entry
// is reused only while everything its counts depend on is unchanged: the
// user's read points, push rules and ignore list. Anything else recomputes.

const maxUnreadEntries = 100000

type unreadKey struct {
	user, room string
	threaded   bool
}

type unreadEntry struct {
	upto       int64 // events up to here are counted
	base       int64
	mainRead   int64
	threadRead map[string]int64
	rulesPos   int64
	ignoredSig string
	main       unreadCounts
	threads    map[string]unreadCounts
}

type unreadCache struct {
	mu sync.Mutex
	m  map[unreadKey]*unreadEntry
}

func newUnreadCache() *unreadCache { return &unreadCache{m: map[unreadKey]*unreadEntry{}} }

func (c *unreadCache) get(k unreadKey) *unreadEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[k]
}

func (c *unreadCache) put(k unreadKey, e *unreadEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= maxUnreadEntries {
		c.m = map[unreadKey]*unreadEntry{} // bounded; entries are only a speed-up
	}
	c.m[k] = e
}

// pushRulesPos identifies the version of the user's push rules.
func pushRulesPos(rt *fsm.ReadTx, userID string) int64 {
	if rec, err := rt.AccountData(userID, "", fsm.PushRulesType); err == nil {
		return rec.Pos
	}
	return 0
}

func ignoredSignature(ignored map[string]bool) string {
	users := make([]string, 0, len(ignored))
	for u, on := range ignored {
		if on {
			users = append(users, u)
		}
	}
	sort.Strings(users)
	return strings.Join(users, "\x00")
}

// reusable reports whether e still describes the room for this sync.
func (e *unreadEntry) reusable(rt *fsm.ReadTx, roomID, userID string, base, mainRead, rulesPos int64, sig string, upto int64) bool {
	if e == nil || e.base != base || e.mainRead != mainRead || e.rulesPos != rulesPos || e.ignoredSig != sig || e.upto > upto {
		return false
	}
	for thread, read := range e.threadRead {
		if readPoint(rt, roomID, userID, thread, base) != read {
			return false
		}
	}
	return true
}

func (e *unreadEntry) clone() (main unreadCounts, threads map[string]unreadCounts, threadRead map[string]int64) {
	threadRead = make(map[string]int64, len(e.threadRead))
	for k, v := range e.threadRead {
		threadRead[k] = v
	}
	if e.threads != nil {
		threads = make(map[string]unreadCounts, len(e.threads))
		for k, v := range e.threads {
			threads[k] = v
		}
	}
	return e.main, threads, threadRead
}
