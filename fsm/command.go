package fsm

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
)

// Command is one Raft log entry's payload. Everything a handler needs that
// is not in the store (clock, random IDs, hashed secrets) is chosen by the
// proposer and carried here, so Apply stays deterministic.
type Command struct {
	Op   string          `json:"op"`
	TS   int64           `json:"ts"` // proposer's wall clock, unix ms
	Data json.RawMessage `json:"data"`
}

// Envelope layout: version byte, op length byte, op, ts (8 bytes, big
// endian), then the JSON payload. The payload is parsed once, by its
// handler, instead of twice inside a JSON envelope.
const envelopeV1 = 1

// Encode builds a command from an op and its payload.
func Encode(op string, ts int64, payload any) ([]byte, error) {
	if len(op) == 0 || len(op) > 255 {
		return nil, fmt.Errorf("bad op name %q", op)
	}
	data, err := json.Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", op, err)
	}
	out := make([]byte, 0, 2+len(op)+8+len(data))
	out = append(out, envelopeV1, byte(len(op)))
	out = append(out, op...)
	out = binary.BigEndian.AppendUint64(out, uint64(ts))
	return append(out, data...), nil
}

// DecodeCommand parses an envelope made by Encode.
func DecodeCommand(b []byte) (*Command, error) {
	if len(b) < 2 || b[0] != envelopeV1 {
		return nil, fmt.Errorf("unknown command envelope")
	}
	n := int(b[1])
	if len(b) < 2+n+8 {
		return nil, fmt.Errorf("truncated command envelope")
	}
	return &Command{Op: string(b[2 : 2+n]), TS: int64(binary.BigEndian.Uint64(b[2+n:])), Data: b[2+n+8:]}, nil
}

// Error is a deterministic refusal by Apply, carried back to the proposer as
// a Matrix error.
type Error struct {
	Status  int    `json:"status"`
	Errcode string `json:"errcode"`
	Message string `json:"error"`
}

func (e *Error) Error() string { return e.Errcode + ": " + e.Message }

// Errorf builds an *Error.
func Errorf(status int, errcode, format string, args ...any) *Error {
	return &Error{Status: status, Errcode: errcode, Message: fmt.Sprintf(format, args...)}
}

// Common refusals.
func errForbidden(format string, args ...any) *Error {
	return Errorf(http.StatusForbidden, "M_FORBIDDEN", format, args...)
}

func errBadRequest(format string, args ...any) *Error {
	return Errorf(http.StatusBadRequest, "M_BAD_JSON", format, args...)
}

func errTooLarge(format string, args ...any) *Error {
	return Errorf(http.StatusRequestEntityTooLarge, "M_TOO_LARGE", format, args...)
}

func errNotFound(format string, args ...any) *Error {
	return Errorf(http.StatusNotFound, "M_NOT_FOUND", format, args...)
}

// Result is what Apply returns for each log entry.
type Result struct {
	Value any
	Err   error
}

// applyFunc applies one decoded command. It must validate everything before
// its first write; if it fails after writing, the whole batch is redone
// without it (see ApplyBatch), so a refusal never leaves a partial write.
// A panic is turned into a refusal the same way, and so is a command that
// asks for more than 65536 stream positions (see runHandler); both are
// bugs or abuse to fix at the source, the guard only keeps every node from
// crashing on the same entry. Anything iterated while writing (or while
// choosing which refusal to report) is iterated in sorted order.
type applyFunc func(w *WriteTx, cmd *Command) (any, error)

var handlers = map[string]applyFunc{}

// register installs the handler for op; called from init functions.
func register(op string, fn applyFunc) {
	if _, dup := handlers[op]; dup {
		panic("fsm: duplicate handler for " + op)
	}
	handlers[op] = fn
}

// Ops lists the registered command names (sorted), for tests and docs.
func Ops() []string {
	out := make([]string, 0, len(handlers))
	for op := range handlers {
		out = append(out, op)
	}
	sort.Strings(out)
	return out
}

func decode[T any](cmd *Command) (*T, error) {
	var v T
	if err := json.Unmarshal(cmd.Data, &v); err != nil {
		return nil, errBadRequest("malformed %s command: %v", cmd.Op, err)
	}
	return &v, nil
}
