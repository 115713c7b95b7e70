package chaos

import (
	"context"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ganglion/ganglion/internal/proctest"
)

// TestCrashLoop: 20 rounds of SIGKILL of random nodes (one, two, or all
// three at once in rounds 7, 14 and 20) with restarts, while ten clients
// keep writing and syncing. Pass: every acknowledged write survives exactly
// once; the cluster accepts a write within 10 s of the last restart; the
// unknown outcomes, retried with their txnIds, land exactly once; the nodes
// converge on identical rooms; porcupine accepts the history.
//
// The cluster was formed with cluster.bootstrap_expect, so every restart
// also checks that a node with Raft state never bootstraps again.
func TestCrashLoop(t *testing.T) {
	c := newCluster(t, clusterOptions{bootstrapExpect: true})
	c.start()
	w := newWorkload(t, c, 10, 2)
	seed := uint64(time.Now().UnixNano())
	if s, err := strconv.ParseUint(os.Getenv("CHAOS_SEED"), 10, 64); err == nil {
		seed = s // replay a failed run
	}
	t.Logf("crash loop seed %d (set CHAOS_SEED to replay)", seed)
	rng := rand.New(rand.NewPCG(seed, 1))

	ctx, stopLoad := context.WithTimeout(context.Background(), 4*time.Minute)
	defer stopLoad()
	var load sync.WaitGroup
	load.Add(1)
	go func() {
		defer load.Done()
		w.run(ctx, w.sessions, loadPlan{perClient: 2000, readEvery: 6, pace: 60 * time.Millisecond,
			attempt: 3 * time.Second, giveUp: 30 * time.Second})
	}()

	var lastRestart time.Time
	killedAll := 0
	for round := 1; round <= 20; round++ {
		victims := pickVictims(rng, round)
		if len(victims) == 3 {
			killedAll++
		}
		var wg sync.WaitGroup
		for _, i := range victims {
			wg.Add(1)
			go func() { defer wg.Done(); c.nodes[i].Kill() }()
		}
		wg.Wait()
		time.Sleep(time.Duration(100+rng.IntN(500)) * time.Millisecond)
		lastRestart = time.Now()
		for _, i := range victims {
			if err := c.nodes[i].Start(); err != nil {
				t.Fatal(err)
			}
		}
		c.waitReady(victims, 30*time.Second)
		// Half the rounds let the cluster settle; the others strike again
		// soon, possibly mid-election.
		if rng.IntN(2) == 0 {
			if _, _, err := c.waitLeader(c.all(), 15*time.Second); err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		} else {
			time.Sleep(time.Duration(rng.IntN(1000)) * time.Millisecond)
		}
		t.Logf("round %2d: killed %v; %d writes acknowledged so far", round, victims, w.acked.Load())
	}
	if killedAll == 0 {
		t.Fatal("no round killed all three nodes")
	}

	// The cluster must take a brand-new write within 10 s of the last restart.
	probe := w.sessions[0]
	var took time.Duration
	accepted := proctest.Poll(time.Until(lastRestart.Add(10*time.Second)), 100*time.Millisecond, func() bool {
		_, err := withResult(2*time.Second, func(ctx context.Context) (string, error) {
			return sendMessage(ctx, c.nodes[rng.IntN(3)].URL, probe.u, w.rooms[0], "after-the-crash-loop", "probe")
		})
		took = time.Since(lastRestart)
		return err == nil
	})
	if !accepted {
		t.Errorf("no write accepted within 10s of the last restart:%s", c.describe())
	} else {
		t.Logf("a new write was accepted %v after the last restart", took.Round(time.Millisecond))
	}

	stopLoad()
	load.Wait()
	w.retryUnacknowledged(loadPlan{attempt: 3 * time.Second, giveUp: 30 * time.Second, route: rotate})
	w.verify()
}

// pickVictims chooses the nodes to kill in a round: all three in rounds 7,
// 14 and 20, otherwise one (usually) or two at random.
func pickVictims(rng *rand.Rand, round int) []int {
	if round%7 == 0 || round == 20 {
		return []int{0, 1, 2}
	}
	perm := rng.Perm(3)
	if rng.IntN(10) < 6 {
		return perm[:1]
	}
	return perm[:2]
}

// withResult runs f with a timeout.
func withResult[T any](d time.Duration, f func(ctx context.Context) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return f(ctx)
}
