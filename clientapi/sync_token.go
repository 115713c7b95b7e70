package clientapi

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ganglion/ganglion/fsm"
)

// syncToken is a /sync next_batch (also /events and /initialSync's end):
// "s<pos>_<eph>" or, while to-device messages are still queued past what
// was delivered, "s<pos>_<eph>_<todevice>". pos is a stream position valid
// on every node (everything <= pos was seen); eph is this node's serial of
// typing and presence; todevice is the last to-device position delivered.
type syncToken struct {
	Pos      int64
	Eph      int64
	ToDevice int64 // 0: everything up to Pos was delivered
}

var errBadSyncToken = errors.New("invalid sync token")

func parseSyncToken(s string) (syncToken, error) {
	rest, ok := strings.CutPrefix(s, "s")
	if !ok {
		return syncToken{}, errBadSyncToken
	}
	parts := strings.Split(rest, "_")
	if len(parts) < 2 || len(parts) > 3 {
		return syncToken{}, errBadSyncToken
	}
	var nums [3]int64
	for i, p := range parts {
		n, err := strconv.ParseInt(p, 10, 64)
		if err != nil || n < 0 {
			return syncToken{}, errBadSyncToken
		}
		nums[i] = n
	}
	t := syncToken{Pos: nums[0], Eph: nums[1], ToDevice: nums[2]}
	if t.ToDevice >= t.Pos {
		t.ToDevice = 0
	}
	return t, nil
}

func (t syncToken) String() string {
	if t.ToDevice > 0 && t.ToDevice < t.Pos {
		return fmt.Sprintf("s%d_%d_%d", t.Pos, t.Eph, t.ToDevice)
	}
	return fmt.Sprintf("s%d_%d", t.Pos, t.Eph)
}

// toDeviceSince is the to-device position the client has received.
func (t syncToken) toDeviceSince() int64 {
	if t.ToDevice > 0 {
		return t.ToDevice
	}
	return t.Pos
}

// boundaryToken is a pagination token for /messages meaning "before pos
// X": it is the sync token covering X-1, so /messages reads it as the
// boundary X.
func boundaryToken(x, eph int64) string {
	if x < 1 {
		x = 1
	}
	return syncToken{Pos: x - 1, Eph: eph}.String()
}

// catchUpGrace bounds the wait for a token from a node further ahead when
// the request itself asked not to wait.
const catchUpGrace = time.Second

// waitForToken blocks until this node has applied the index of pos (a
// token from a node further ahead), for at most timeout (catchUpGrace when
// zero) or until ctx ends; it reports whether the node caught up.
func (a *API) waitForToken(ctx context.Context, timeout time.Duration, pos int64) bool {
	idx := fsm.IndexOfPos(pos)
	n := a.node.Notifier()
	if _, applied := n.Changed(); applied >= idx {
		return true
	}
	if timeout <= 0 {
		timeout = catchUpGrace
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return n.WaitApplied(ctx, idx)
}

// longPollTimeout parses a timeout in milliseconds, capped so a client
// cannot hold a request forever.
func longPollTimeout(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, err
	}
	if ms < 0 {
		ms = 0
	}
	const maxWait = 10 * time.Minute
	d := time.Duration(ms) * time.Millisecond
	if d > maxWait || ms > int64(maxWait/time.Millisecond) {
		d = maxWait
	}
	return d, nil
}
