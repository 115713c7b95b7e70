package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// parallel runs fn(0..n-1) on a bounded worker pool and returns the first
// error; after an error the remaining indexes are not started.
func parallel(ctx context.Context, n int, fn func(i int) error) error {
	var (
		next  atomic.Int64
		once  sync.Once
		first error
		wg    sync.WaitGroup
	)
	failed := make(chan struct{})
	for w := 0; w < min(setupWorkers, n); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				select {
				case <-failed:
					return
				case <-ctx.Done():
					once.Do(func() { first = ctx.Err(); close(failed) })
					return
				default:
				}
				if err := fn(i); err != nil {
					once.Do(func() { first = err; close(failed) })
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}

// stoppedEarly explains why a measured loop ended before its count.
func stoppedEarly(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("stopped early: %w", err)
	}
	return nil
}

// sequential is scenario 1: one user sends N messages one after the other,
// so each sample is the pure request latency without queueing.
func (r *runner) sequential(ctx context.Context) *result {
	n := r.cfg.seq
	res := newResult(kindSeq, "sequential_send", fmt.Sprintf("sequential send: 1 user, 1 room, %d msgs", n))
	if n == 0 {
		res.Skipped = true
		return res
	}
	c, err := r.register(ctx, r.nextHS(), "seq")
	if err != nil {
		return res.abort(fmt.Errorf("setup: %w", err))
	}
	room, err := c.createRoom(ctx, "bench sequential")
	if err != nil {
		return res.abort(fmt.Errorf("setup: %w", err))
	}
	el := &errLog{}
	samples := make([]time.Duration, 0, n)
	start := time.Now()
	for i := 0; i < n && ctx.Err() == nil; i++ {
		t0 := time.Now()
		_, err := c.send(ctx, room, fmt.Sprintf("seq %d", i))
		d := time.Since(t0)
		if err != nil {
			el.add(ctx, err)
			continue
		}
		samples = append(samples, d)
	}
	res.finish(samples, time.Since(start), el)
	return res.abort(stoppedEarly(ctx))
}

// concurrent is scenario 2: many users spread over many rooms, which shows
// how well the server parallelises across rooms.
func (r *runner) concurrent(ctx context.Context) *result {
	c := r.cfg
	res := newResult(kindTput, "concurrent_send",
		fmt.Sprintf("concurrent send: %d senders, %d rooms, %d msgs", c.senders, c.rooms, c.concMsgs))
	return r.throughput(ctx, res, c.senders, c.rooms, c.concMsgs, "conc")
}

// oneRoom is scenario 3: all senders contend for a single room, which is
// serialised by the room's event DAG on any homeserver.
func (r *runner) oneRoom(ctx context.Context) *result {
	c := r.cfg
	res := newResult(kindTput, "one_room_send",
		fmt.Sprintf("one-room send: %d senders, 1 room, %d msgs", c.oneRoomSenders, c.oneRoomMsgs))
	return r.throughput(ctx, res, c.oneRoomSenders, 1, c.oneRoomMsgs, "one")
}

// throughput registers the senders, creates and joins the rooms (untimed),
// then releases all senders at once. Sender s sends its k-th message to room
// (s+k) mod rooms, and messages are split evenly between senders.
func (r *runner) throughput(ctx context.Context, res *result, senders, rooms, msgs int, role string) *result {
	if msgs == 0 {
		res.Skipped = true
		return res
	}
	senders = min(senders, msgs) // idle senders would only add setup
	share := func(s int) int {
		if s < msgs%senders {
			return msgs/senders + 1
		}
		return msgs / senders
	}
	users := make([]*client, senders)
	err := parallel(ctx, senders, func(i int) (err error) {
		users[i], err = r.register(ctx, r.nextHS(), role)
		return err
	})
	if err != nil {
		return res.abort(fmt.Errorf("setup: %w", err))
	}
	// Room j is created by sender j mod senders. Each user creates its rooms
	// one at a time, as a real client would; only different users overlap.
	roomIDs := make([]string, rooms)
	err = parallel(ctx, min(senders, rooms), func(s int) (err error) {
		for j := s; j < rooms && err == nil; j += senders {
			roomIDs[j], err = users[s].createRoom(ctx, fmt.Sprintf("bench %s %d", role, j))
		}
		return err
	})
	if err != nil {
		return res.abort(fmt.Errorf("setup: %w", err))
	}
	// Join only the rooms each sender will actually use (its creator is
	// already a member).
	type membership struct{ s, room int }
	var joins []membership
	for s := 0; s < senders; s++ {
		for k := 0; k < min(share(s), rooms); k++ {
			if j := (s + k) % rooms; j%senders != s {
				joins = append(joins, membership{s, j})
			}
		}
	}
	err = parallel(ctx, len(joins), func(i int) error {
		return users[joins[i].s].join(ctx, roomIDs[joins[i].room])
	})
	if err != nil {
		return res.abort(fmt.Errorf("setup: %w", err))
	}

	el := &errLog{}
	perSender := make([][]time.Duration, senders)
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for s := 0; s < senders; s++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			lat := make([]time.Duration, 0, share(s))
			for k := 0; k < share(s) && ctx.Err() == nil; k++ {
				t0 := time.Now()
				_, err := users[s].send(ctx, roomIDs[(s+k)%rooms], fmt.Sprintf("%s %d/%d", role, s, k))
				d := time.Since(t0)
				if err != nil {
					el.add(ctx, err)
					continue
				}
				lat = append(lat, d)
			}
			perSender[s] = lat
		}()
	}
	start := time.Now()
	close(gate)
	wg.Wait()
	elapsed := time.Since(start)

	var all []time.Duration
	for _, l := range perSender {
		all = append(all, l...)
	}
	res.finish(all, elapsed, el)
	return res.abort(stoppedEarly(ctx))
}
