package chaos

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// The porcupine model: each room is an append-only log. A send appends its
// body; a read returns the prefix of the log the client has seen. Reads may
// lag (a follower serves from its own store) but never go back in time for
// one client, and, where the server promises it, include the client's own
// acknowledged sends.
//
// To keep the search linear, every append carries its position in the
// final timeline, which the test has checked is identical on every node: the
// model then only has to place appends in that order and check that the
// real-time order of the calls and every read agree with it.

// logInput is one operation on one room's log.
type logInput struct {
	Room    string
	Client  int
	Node    int // where a read was served, for the failure messages
	Read    bool
	Body    string // appends
	SeesOwn bool   // reads: must include the client's own acknowledged sends
}

// logOutput is what the operation observed.
type logOutput struct {
	Acked bool     // appends: the server confirmed it
	Pos   int      // appends: index in the final timeline, -1 if absent
	View  []string // reads: the bodies seen, oldest first
}

// logState is the model state; Step never mutates it.
type logState struct {
	log  []string
	seen map[int]int // client -> length of the view it last read
	own  map[int]int // client -> 1 + position of its last append
}

func (s logState) with(client int, seen, own int) logState {
	next := logState{log: s.log, seen: make(map[int]int, len(s.seen)+1), own: make(map[int]int, len(s.own)+1)}
	for k, v := range s.seen {
		next.seen[k] = v
	}
	for k, v := range s.own {
		next.own[k] = v
	}
	if seen >= 0 {
		next.seen[client] = seen
	}
	if own >= 0 {
		next.own[client] = own
	}
	return next
}

func logStep(state, input, output any) (bool, any) {
	s, in, out := state.(logState), input.(logInput), output.(logOutput)
	if !in.Read {
		if out.Pos < 0 {
			// Never landed: fine for an unknown outcome, a loss if acknowledged.
			return !out.Acked, s
		}
		if out.Pos != len(s.log) {
			return false, s
		}
		next := s.with(in.Client, -1, out.Pos+1)
		next.log = append(s.log[:len(s.log):len(s.log)], in.Body)
		return true, next
	}
	n := len(out.View)
	if n > len(s.log) || !slices.Equal(out.View, s.log[:n]) || n < s.seen[in.Client] {
		return false, s
	}
	if in.SeesOwn && n < s.own[in.Client] {
		return false, s
	}
	return true, s.with(in.Client, n, -1)
}

func logStateEqual(a, b any) bool {
	x, y := a.(logState), b.(logState)
	return slices.Equal(x.log, y.log) && mapsEqual(x.seen, y.seen) && mapsEqual(x.own, y.own)
}

func mapsEqual(a, b map[int]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

var roomLogModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byRoom := map[string][]porcupine.Operation{}
		var rooms []string
		for _, op := range history {
			r := op.Input.(logInput).Room
			if _, ok := byRoom[r]; !ok {
				rooms = append(rooms, r)
			}
			byRoom[r] = append(byRoom[r], op)
		}
		out := make([][]porcupine.Operation, 0, len(rooms))
		for _, r := range rooms {
			out = append(out, byRoom[r])
		}
		return out
	},
	Init:  func() any { return logState{seen: map[int]int{}, own: map[int]int{}} },
	Step:  logStep,
	Equal: logStateEqual,
	DescribeOperation: func(input, output any) string {
		in, out := input.(logInput), output.(logOutput)
		if in.Read {
			last := ""
			if len(out.View) > 0 {
				last = " last=" + out.View[len(out.View)-1]
			}
			return fmt.Sprintf("read c%d on node%d -> %d events%s", in.Client, in.Node+1, len(out.View), last)
		}
		return fmt.Sprintf("send c%d %s -> pos %d acked=%v", in.Client, in.Body, out.Pos, out.Acked)
	},
	DescribeState: func(state any) string {
		s := state.(logState)
		if len(s.log) == 0 {
			return "[]"
		}
		return fmt.Sprintf("%d events, last %s", len(s.log), s.log[len(s.log)-1])
	},
}

// unknownReturn is the return time of an operation whose outcome was never
// learned: it may take effect at any point after its call.
const unknownReturn = math.MaxInt64

// history records operations with times relative to its creation.
type history struct {
	mu    sync.Mutex
	start time.Time
	ops   []porcupine.Operation
}

func newHistory() *history { return &history{start: time.Now()} }

func (h *history) now() int64 { return int64(time.Since(h.start)) }

func (h *history) add(client int, in logInput, out logOutput, call, ret int64) {
	h.mu.Lock()
	h.ops = append(h.ops, porcupine.Operation{ClientId: client, Input: in, Output: out, Call: call, Return: ret})
	h.mu.Unlock()
}

// check runs porcupine over the history; on a violation it writes the
// visualization next to the test binary's temp files and fails the test.
func (h *history) check(t *testing.T) {
	t.Helper()
	h.mu.Lock()
	ops := slices.Clone(h.ops)
	h.mu.Unlock()
	begin := time.Now()
	res := porcupine.CheckOperationsTimeout(roomLogModel, ops, 60*time.Second)
	t.Logf("porcupine: %d operations, %s in %v", len(ops), res, time.Since(begin).Round(time.Millisecond))
	if res == porcupine.Ok {
		return
	}
	// Only a failing history pays for the partial linearizations.
	_, info := porcupine.CheckOperationsVerbose(roomLogModel, ops, 60*time.Second)
	name := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())
	path := filepath.Join(os.TempDir(), "ganglion-chaos-"+name+".html")
	if err := porcupine.VisualizePath(roomLogModel, info, path); err != nil {
		t.Logf("visualization: %v", err)
	}
	t.Errorf("history is %s for the room-log model (visualization: %s)", res, path)
}
