package clientapi

import (
	"encoding/json"
	"time"
)

// Typing and presence travel between nodes by gossip, never through the
// Raft log (DESIGN invariant 1): the node that takes a change broadcasts it
// and every other node applies it to its own ephemeral view.

// ephemeralMsg is one gossiped change; Kind says which fields apply.
type ephemeralMsg struct {
	Kind      string `json:"k"` // "typing" or "presence"
	RoomID    string `json:"r,omitempty"`
	UserID    string `json:"u"`
	Typing    bool   `json:"t,omitempty"`
	TimeoutMS int64  `json:"ms,omitempty"`
	Presence  string `json:"p,omitempty"`
	StatusMsg string `json:"s,omitempty"`
}

// setTyping applies a typing change here and tells the other nodes.
func (a *API) setTyping(roomID, userID string, typing bool, timeout time.Duration) {
	a.eph.SetTyping(roomID, userID, typing, timeout)
	a.gossip("typing|"+roomID+"|"+userID, ephemeralMsg{Kind: "typing", RoomID: roomID, UserID: userID,
		Typing: typing, TimeoutMS: timeout.Milliseconds()})
}

// setPresence applies a presence change here and tells the other nodes.
func (a *API) setPresence(userID, presence, statusMsg string) {
	a.eph.SetPresence(userID, presence, statusMsg)
	a.gossip("presence|"+userID, ephemeralMsg{Kind: "presence", UserID: userID, Presence: presence, StatusMsg: statusMsg})
}

// gossip broadcasts m; a newer message with the same key replaces one
// still queued, so a stale "typing" never overtakes its "stopped".
func (a *API) gossip(key string, m ephemeralMsg) {
	raw, err := json.Marshal(m)
	if err != nil {
		return
	}
	a.node.BroadcastEphemeralKey(key, raw)
}

// receiveEphemeral applies a change another node gossiped.
func (a *API) receiveEphemeral(raw []byte) {
	var m ephemeralMsg
	if json.Unmarshal(raw, &m) != nil || m.UserID == "" {
		return
	}
	switch m.Kind {
	case "typing":
		timeout := min(time.Duration(m.TimeoutMS)*time.Millisecond, maxTypingTimeout)
		if m.RoomID != "" {
			a.eph.SetTyping(m.RoomID, m.UserID, m.Typing && timeout > 0, timeout)
		}
	case "presence":
		if presenceStates[m.Presence] {
			a.eph.SetPresence(m.UserID, m.Presence, m.StatusMsg)
		}
	}
}

// RemoteTyping applies a typing notification another server sent over
// federation; like a local one it is gossiped to the other nodes.
func (a *API) RemoteTyping(roomID, userID string, typing bool, timeout time.Duration) {
	a.setTyping(roomID, userID, typing, timeout)
}

// RemotePresence applies a presence update another server sent.
func (a *API) RemotePresence(userID, presence, statusMsg string) {
	if presenceStates[presence] {
		a.setPresence(userID, presence, statusMsg)
	}
}

// TypingNotifier tells other servers in a room that a local user types
// (the federation sender, on the leader where typing requests land).
type TypingNotifier interface {
	LocalTyping(roomID, userID string, typing bool, timeout time.Duration)
}

// SetTypingNotifier wires the federation sender.
func (a *API) SetTypingNotifier(n TypingNotifier) { a.typingOut = n }
