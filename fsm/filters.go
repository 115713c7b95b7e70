package fsm

import (
	"encoding/json"
	"strconv"
)

// OpFilterCreate stores a sync filter under user \x00 id. The ID is the
// decimal Raft index, the same on every node and never starting with '{'.
const OpFilterCreate = "filter.create"

// FilterCreate is the payload of OpFilterCreate; the filter's shape is
// checked by the HTTP handler.
type FilterCreate struct {
	UserID string          `json:"user_id"`
	Filter json.RawMessage `json:"filter"`
}

func init() {
	register(OpFilterCreate, func(w *WriteTx, cmd *Command) (any, error) {
		c, err := decode[FilterCreate](cmd)
		if err != nil {
			return nil, err
		}
		if !isJSONObject(c.Filter) {
			return nil, errBadRequest("filter must be a JSON object")
		}
		if _, err := w.User(c.UserID); err != nil {
			return nil, errNotFound("unknown user %s", c.UserID)
		}
		id := strconv.FormatUint(w.Index(), 10)
		return id, w.put(bFilters, key(c.UserID, id), compactJSON(c.Filter))
	})
}

// Filter reads a stored filter; ErrNotFound if absent.
func (r *ReadTx) Filter(userID, filterID string) (json.RawMessage, error) {
	v := r.get(bFilters, key(userID, filterID))
	if v == nil {
		return nil, ErrNotFound
	}
	return append(json.RawMessage{}, v...), nil
}
