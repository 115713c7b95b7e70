package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

const (
	wakePollMS = 30000 // long-poll timeout the receiver asks for
	// wakeSampleTimeout bounds one sample: two full long-polls plus slack,
	// after which the event counts as not delivered.
	wakeSampleTimeout = 65 * time.Second
	// wakeSettle gives the receiver's request time to reach the server and
	// park before the message is sent; without it a sample could measure an
	// immediate sync reply instead of a wake-up.
	wakeSettle      = 10 * time.Millisecond
	initialSyncRuns = 5
)

// wakeup is scenario 4: how long after a send returns does a parked
// long-poll /sync of another user deliver the event. With several --hs the
// sender and receiver sit on different nodes, so this includes fan-out.
func (r *runner) wakeup(ctx context.Context) *result {
	n := r.cfg.wake
	hsA, hsB := r.hsAt(0), r.hsAt(1)
	res := newResult(kindWake, "sync_wakeup",
		fmt.Sprintf("sync wake-up: %d samples, sender %s -> receiver %s", n, hsA, hsB))
	if n == 0 {
		res.Skipped = true
		return res
	}
	a, err := r.register(ctx, hsA, "wakea")
	if err != nil {
		return res.abort(fmt.Errorf("setup: %w", err))
	}
	b, err := r.register(ctx, hsB, "wakeb")
	if err != nil {
		return res.abort(fmt.Errorf("setup: %w", err))
	}
	room, err := a.createRoom(ctx, "bench wake-up")
	if err == nil {
		err = b.join(ctx, room)
	}
	if err != nil {
		return res.abort(fmt.Errorf("setup: %w", err))
	}
	first, err := b.sync(ctx, "", 0)
	if err == nil && first.NextBatch == "" {
		err = errors.New("initial /sync returned no next_batch")
	}
	if err != nil {
		return res.abort(fmt.Errorf("setup: %w", err))
	}
	since := first.NextBatch

	el := &errLog{}
	samples := make([]time.Duration, 0, n)
	start := time.Now()
	for i := 0; i < n && ctx.Err() == nil; i++ {
		var d, fromStart time.Duration
		d, fromStart, since, err = wakeSample(ctx, a, b, room, since, i)
		if err != nil {
			el.add(ctx, err)
			continue
		}
		if d < 0 {
			// The sync beat the send's own reply: report it as zero delay but
			// count it; the from-send-start figure then carries the signal.
			res.early++
			d = 0
		}
		samples = append(samples, d)
		res.fromStart = append(res.fromStart, fromStart)
	}
	res.finish(samples, time.Since(start), el)
	return res.abort(stoppedEarly(ctx))
}

// wakeSample measures one send -> sync delivery, both from the send's reply
// (negative when the sync returned first) and from the send's start. It also
// returns the receiver's new since token, on error too, so the next sample
// starts from there.
func wakeSample(ctx context.Context, a, b *client, room, since string, i int) (fromReturn, fromStart time.Duration, next string, err error) {
	sctx, cancel := context.WithTimeout(ctx, wakeSampleTimeout)
	defer cancel()
	type arrival struct {
		at    time.Time
		since string
		err   error
	}
	want := make(chan string, 1)
	done := make(chan arrival, 1)
	go func() {
		// The event may arrive before the send even returns, so remember
		// when each event was first seen and match once its ID is known.
		seen := map[string]time.Time{}
		cur, target := since, ""
		for {
			s, err := b.sync(sctx, cur, wakePollMS)
			at := time.Now()
			if err != nil {
				done <- arrival{since: cur, err: err}
				return
			}
			if s.NextBatch != "" {
				cur = s.NextBatch
			}
			for _, ev := range s.Rooms.Join[room].Timeline.Events {
				if _, ok := seen[ev.EventID]; !ok {
					seen[ev.EventID] = at
				}
			}
			if target == "" {
				select {
				case target = <-want:
				case <-sctx.Done():
					done <- arrival{since: cur, err: sctx.Err()}
					return
				}
			}
			if t, ok := seen[target]; ok {
				done <- arrival{at: t, since: cur}
				return
			}
		}
	}()

	select {
	case <-sctx.Done():
	case <-time.After(wakeSettle):
	}
	t0 := time.Now()
	eventID, err := a.send(sctx, room, fmt.Sprintf("wake %d", i))
	sent := time.Now()
	if err != nil {
		cancel()
		return 0, 0, (<-done).since, err
	}
	want <- eventID
	got := <-done
	if got.err != nil {
		if errors.Is(got.err, context.DeadlineExceeded) && ctx.Err() == nil {
			got.err = fmt.Errorf("event %s not delivered by /sync within %s", eventID, wakeSampleTimeout)
		}
		return 0, 0, got.since, got.err
	}
	return got.at.Sub(sent), got.at.Sub(t0), got.since, nil
}

// initialSync is scenario 5: a full /sync without since for a user in many
// rooms with history, i.e. what a freshly logged-in client waits for.
func (r *runner) initialSync(ctx context.Context) *result {
	rooms, msgs := r.cfg.initRooms, r.cfg.initMsgs
	res := newResult(kindInit, "initial_sync",
		fmt.Sprintf("initial sync: 1 user, %d rooms x %d msgs, %d runs", rooms, msgs, initialSyncRuns))
	if rooms == 0 {
		res.Skipped = true
		return res
	}
	res.roomsWant = rooms
	c, err := r.register(ctx, r.nextHS(), "init")
	if err != nil {
		return res.abort(fmt.Errorf("setup: %w", err))
	}
	// One user creates its rooms sequentially, as a client would; the
	// history is then seeded in parallel to keep setup short.
	roomIDs := make([]string, rooms)
	for j := range roomIDs {
		if roomIDs[j], err = c.createRoom(ctx, fmt.Sprintf("bench initial %d", j)); err != nil {
			return res.abort(fmt.Errorf("setup: %w", err))
		}
	}
	err = parallel(ctx, rooms, func(j int) error {
		for k := 0; k < msgs; k++ {
			err := withRetry(ctx, func() error {
				_, err := c.send(ctx, roomIDs[j], fmt.Sprintf("history %d/%d", j, k))
				return err
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return res.abort(fmt.Errorf("setup: %w", err))
	}

	el := &errLog{}
	var samples []time.Duration
	seenMin := -1
	start := time.Now()
	for i := 0; i < initialSyncRuns && ctx.Err() == nil; i++ {
		t0 := time.Now()
		data, err := c.syncRaw(ctx, "", 0)
		d := time.Since(t0) // decoding is client work, so it is not timed
		if err != nil {
			el.add(ctx, err)
			continue
		}
		var s syncResp
		if err := json.Unmarshal(data, &s); err != nil {
			el.add(ctx, fmt.Errorf("GET /sync: bad JSON reply: %w", err))
			continue
		}
		seen := 0
		for _, id := range roomIDs {
			if _, ok := s.Rooms.Join[id]; ok {
				seen++
			}
		}
		if seenMin < 0 || seen < seenMin {
			seenMin = seen
		}
		res.syncBytes = len(data)
		samples = append(samples, d)
	}
	res.roomsSeen = max(seenMin, 0)
	res.finish(samples, time.Since(start), el)
	return res.abort(stoppedEarly(ctx))
}
