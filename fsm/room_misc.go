package fsm

import (
	"crypto/ed25519"
	"net/http"
	"strings"
)

// Room commands that are not events: aliases, directory visibility, forget,
// and the server signing key.
const (
	OpAliasPut      = "alias.put"
	OpAliasDelete   = "alias.delete"
	OpRoomPublish   = "room.publish"
	OpRoomForget    = "room.forget"
	OpSigningKeySet = "server.signing_key"
)

// AliasCmd maps an alias to a room.
type AliasCmd struct {
	Alias   string `json:"alias"`
	RoomID  string `json:"room_id,omitempty"`
	Creator string `json:"creator,omitempty"`
}

// PublishCmd sets a room's visibility in the directory.
type PublishCmd struct {
	RoomID    string `json:"room_id"`
	Published bool   `json:"published"`
}

// ForgetCmd forgets a room for a user.
type ForgetCmd struct {
	UserID string `json:"user_id"`
	RoomID string `json:"room_id"`
}

// SigningKey is the server's ed25519 key (one per cluster).
type SigningKey struct {
	KeyID string `json:"key_id"`
	Seed  []byte `json:"seed"`
}

var keySigningKey = []byte("signing_key")

func init() {
	register(OpAliasPut, func(w *WriteTx, cmd *Command) (any, error) {
		c, err := decode[AliasCmd](cmd)
		if err != nil {
			return nil, err
		}
		if err := checkAlias(c.Alias); err != nil {
			return nil, err
		}
		if _, _, taken := w.AliasRoom(c.Alias); taken {
			return nil, Errorf(http.StatusConflict, "M_UNKNOWN", "alias %s already exists", c.Alias)
		}
		if _, err := w.Room(c.RoomID); err != nil {
			return nil, errNotFound("unknown room %s", c.RoomID)
		}
		return nil, w.putJSON(bAliases, []byte(c.Alias), aliasRecord{RoomID: c.RoomID, Creator: c.Creator})
	})
	register(OpAliasDelete, func(w *WriteTx, cmd *Command) (any, error) {
		c, err := decode[AliasCmd](cmd)
		if err != nil {
			return nil, err
		}
		if _, _, ok := w.AliasRoom(c.Alias); !ok {
			return nil, errNotFound("unknown alias %s", c.Alias)
		}
		return nil, w.del(bAliases, []byte(c.Alias))
	})
	register(OpRoomPublish, func(w *WriteTx, cmd *Command) (any, error) {
		c, err := decode[PublishCmd](cmd)
		if err != nil {
			return nil, err
		}
		room, err := w.Room(c.RoomID)
		if err != nil {
			return nil, errNotFound("unknown room %s", c.RoomID)
		}
		room.Published = c.Published
		return nil, w.putJSON(bRooms, []byte(c.RoomID), room)
	})
	register(OpRoomForget, func(w *WriteTx, cmd *Command) (any, error) {
		c, err := decode[ForgetCmd](cmd)
		if err != nil {
			return nil, err
		}
		if c.UserID == "" || c.RoomID == "" || strings.ContainsRune(c.UserID+c.RoomID, 0) {
			return nil, errBadRequest("user_id and room_id are required")
		}
		if m := w.Membership(c.UserID, c.RoomID); m != nil && (m.Membership == "join" || m.Membership == "invite") {
			return nil, Errorf(http.StatusBadRequest, "M_UNKNOWN", "leave the room before forgetting it")
		}
		w.touchUser(c.UserID)
		return nil, w.put(bForgotten, key(c.UserID, c.RoomID), []byte{1})
	})
	register(OpSigningKeySet, func(w *WriteTx, cmd *Command) (any, error) {
		c, err := decode[SigningKey](cmd)
		if err != nil {
			return nil, err
		}
		// The first key wins: a second proposal (a race between two new
		// leaders) must not replace a key events were signed with.
		if existing, ok := w.SigningKey(); ok {
			return existing, nil
		}
		// Nor may a malformed one become the first (it could never be
		// replaced).
		if !strings.HasPrefix(c.KeyID, "ed25519:") || len(c.KeyID) == len("ed25519:") || len(c.Seed) != ed25519.SeedSize {
			return nil, errBadRequest("signing key must be an ed25519 key ID and a %d-byte seed", ed25519.SeedSize)
		}
		return c, w.putJSON(bMeta, keySigningKey, c)
	})
}

// checkAlias is the shape Apply can check itself: the store key must be
// non-empty and fit bbolt, and NUL is refused as everywhere.
func checkAlias(alias string) error {
	if alias == "" || len(alias) > 255 || strings.ContainsRune(alias, 0) {
		return errBadRequest("invalid room alias %q", alias)
	}
	return nil
}

// SigningKey is the cluster's signing key, if generated yet.
func (r *ReadTx) SigningKey() (*SigningKey, bool) {
	var k SigningKey
	if r.getJSON(bMeta, keySigningKey, &k) != nil {
		return nil, false
	}
	return &k, true
}
