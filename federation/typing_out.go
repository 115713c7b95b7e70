package federation

import (
	"encoding/json"
	"time"

	"github.com/ganglion/ganglion/fsm"
)

// TypingOut sends local users' typing notifications (m.typing EDUs, not
// durable) to the other servers with joined members in the room. Typing
// requests land on the leader, where the sender runs.
type TypingOut struct {
	sender *Sender
	store  *fsm.Store
}

// NewTypingOut builds the typing notifier over the running sender.
func NewTypingOut(s *Sender, store *fsm.Store) *TypingOut { return &TypingOut{sender: s, store: store} }

// LocalTyping queues the EDU for every other server in the room.
func (t *TypingOut) LocalTyping(roomID, userID string, typing bool, _ time.Duration) {
	var dests []string
	_ = t.store.View(func(r *fsm.ReadTx) error {
		dests = r.JoinedServers(roomID, fsm.ServerOfUser(userID))
		return nil
	})
	if len(dests) == 0 {
		return
	}
	edu, err := json.Marshal(map[string]any{"edu_type": "m.typing",
		"content": map[string]any{"room_id": roomID, "user_id": userID, "typing": typing}})
	if err != nil {
		return
	}
	for _, d := range dests {
		t.sender.QueueEphemeralEDU(d, edu)
	}
}
