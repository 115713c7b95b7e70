package chaos

import (
	"testing"

	"github.com/anishathalye/porcupine"
)

// histOp builds a history entry for the model's unit test.
func histOp(client int, in logInput, out logOutput, call, ret int64) porcupine.Operation {
	in.Client = client
	if in.Room == "" {
		in.Room = "!r"
	}
	return porcupine.Operation{ClientId: client, Input: in, Output: out, Call: call, Return: ret}
}

func appendIn(body string) logInput { return logInput{Body: body} }
func readIn(seesOwn bool) logInput  { return logInput{Read: true, SeesOwn: seesOwn} }
func atPos(pos int) logOutput       { return logOutput{Acked: true, Pos: pos} }
func sawView(bodies ...string) logOutput {
	return logOutput{View: bodies}
}

func TestRoomLogModel(t *testing.T) {
	cases := []struct {
		name string
		ops  []porcupine.Operation
		ok   bool
	}{
		{"sequential sends and reads", []porcupine.Operation{
			histOp(0, appendIn("a"), atPos(0), 0, 1),
			histOp(1, readIn(false), sawView("a"), 2, 3),
			histOp(0, appendIn("b"), atPos(1), 4, 5),
			histOp(1, readIn(false), sawView("a", "b"), 6, 7),
		}, true},
		{"concurrent sends in either order", []porcupine.Operation{
			histOp(0, appendIn("a"), atPos(1), 0, 10),
			histOp(1, appendIn("b"), atPos(0), 1, 9),
			histOp(2, readIn(false), sawView("b", "a"), 11, 12),
		}, true},
		{"a stale read is allowed", []porcupine.Operation{
			histOp(0, appendIn("a"), atPos(0), 0, 1),
			histOp(0, appendIn("b"), atPos(1), 2, 3),
			histOp(1, readIn(false), sawView("a"), 4, 5),
		}, true},
		{"log order against real time", []porcupine.Operation{
			histOp(0, appendIn("a"), atPos(1), 0, 1),
			histOp(1, appendIn("b"), atPos(0), 2, 3),
		}, false},
		{"an acknowledged send lost", []porcupine.Operation{
			histOp(0, appendIn("a"), logOutput{Acked: true, Pos: -1}, 0, 1),
		}, false},
		{"an unknown send that never landed", []porcupine.Operation{
			histOp(0, appendIn("a"), logOutput{Pos: -1}, 0, unknownReturn),
			histOp(1, appendIn("b"), atPos(0), 2, 3),
			histOp(1, readIn(false), sawView("b"), 4, 5),
		}, true},
		{"an unknown send that landed late", []porcupine.Operation{
			histOp(0, appendIn("a"), logOutput{Pos: 1}, 0, unknownReturn),
			histOp(1, appendIn("b"), atPos(0), 2, 3),
			histOp(1, readIn(false), sawView("b"), 4, 5),
			histOp(1, readIn(false), sawView("b", "a"), 6, 7),
		}, true},
		{"a read goes back in time", []porcupine.Operation{
			histOp(0, appendIn("a"), atPos(0), 0, 1),
			histOp(0, appendIn("b"), atPos(1), 2, 3),
			histOp(1, readIn(false), sawView("a", "b"), 4, 5),
			histOp(1, readIn(false), sawView("a"), 6, 7),
		}, false},
		{"a read sees a send made after it returned", []porcupine.Operation{
			histOp(1, readIn(false), sawView("a"), 0, 1),
			histOp(0, appendIn("a"), atPos(0), 2, 3),
		}, false},
		{"a read out of log order", []porcupine.Operation{
			histOp(0, appendIn("a"), atPos(0), 0, 5),
			histOp(1, appendIn("b"), atPos(1), 0, 5),
			histOp(2, readIn(false), sawView("b"), 6, 7),
		}, false},
		{"a client misses its own send", []porcupine.Operation{
			histOp(0, appendIn("a"), atPos(0), 0, 1),
			histOp(0, readIn(true), sawView(), 2, 3),
		}, false},
		{"another client may lag", []porcupine.Operation{
			histOp(0, appendIn("a"), atPos(0), 0, 1),
			histOp(1, readIn(true), sawView(), 2, 3),
		}, true},
		{"rooms are separate logs", []porcupine.Operation{
			histOp(0, appendIn("a"), atPos(0), 0, 1),
			histOp(0, logInput{Room: "!other", Body: "x"}, atPos(0), 2, 3),
			histOp(1, logInput{Room: "!other", Read: true}, sawView("x"), 4, 5),
		}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := porcupine.CheckOperations(roomLogModel, c.ops)
			if got != c.ok {
				t.Fatalf("linearizable = %v, want %v", got, c.ok)
			}
		})
	}
}
