package federation

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"

	mfed "maunium.net/go/mautrix/federation"
	"maunium.net/go/mautrix/id"

	"github.com/ganglion/ganglion/fsm"
)

// ErrNoSigningKey means the cluster has not committed its signing key yet
// (rooms.Service.Start creates it).
var ErrNoSigningKey = errors.New("federation: the server's signing key is not generated yet")

// KeySource gives this server's own signing keys. The cluster holds one
// current key; retired keys stay listed with the time they stopped being
// used, so events they signed still verify.
type KeySource interface {
	// Current is the key that signs requests, key documents and new events.
	Current() (*mfed.SigningKey, error)
	// Old are the retired keys by ID.
	Old() map[id.KeyID]mfed.OldVerifyKey
}

// StaticKeys is a fixed KeySource: tests, fake remote servers and tools.
type StaticKeys struct {
	Key     *mfed.SigningKey
	OldKeys map[id.KeyID]mfed.OldVerifyKey
}

// Current returns the fixed key.
func (s *StaticKeys) Current() (*mfed.SigningKey, error) {
	if s.Key == nil {
		return nil, ErrNoSigningKey
	}
	return s.Key, nil
}

// Old returns the fixed old keys.
func (s *StaticKeys) Old() map[id.KeyID]mfed.OldVerifyKey { return s.OldKeys }

// storeKeys reads the key the FSM replicates (fsm.SigningKey), keeping the
// expanded private key while the stored key ID stays the same.
type storeKeys struct {
	store *fsm.Store

	mu  sync.Mutex
	key *mfed.SigningKey
}

// NewStoreKeys is the KeySource of a cluster node: the signing key in the
// node's FSM store.
func NewStoreKeys(store *fsm.Store) KeySource { return &storeKeys{store: store} }

func (s *storeKeys) Current() (*mfed.SigningKey, error) {
	var k *fsm.SigningKey
	var ok bool
	if err := s.store.View(func(rt *fsm.ReadTx) error {
		k, ok = rt.SigningKey()
		return nil
	}); err != nil {
		return nil, err
	}
	if !ok {
		return nil, ErrNoSigningKey
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.key == nil || string(s.key.ID) != k.KeyID {
		sk, err := signingKeyFromSeed(k.KeyID, k.Seed)
		if err != nil {
			return nil, err
		}
		s.key = sk
	}
	return s.key, nil
}

// Old is empty: the FSM keeps one key and no rotation exists yet. A rotation
// command would record the retired key with its expired_ts and list it here.
func (s *storeKeys) Old() map[id.KeyID]mfed.OldVerifyKey { return nil }

// signingKeyFromSeed expands an ed25519 seed into mautrix's key pair.
func signingKeyFromSeed(keyID string, seed []byte) (*mfed.SigningKey, error) {
	if !strings.HasPrefix(keyID, "ed25519:") || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("federation: bad signing key %q", keyID)
	}
	priv := ed25519.NewKeyFromSeed(seed)
	return &mfed.SigningKey{
		ID:   id.KeyID(keyID),
		Pub:  id.SigningKey(base64.RawStdEncoding.EncodeToString(priv.Public().(ed25519.PublicKey))),
		Priv: priv,
	}, nil
}

// NewSigningKey makes a random key whose ID is ed25519:<version>.
func NewSigningKey(version string) *mfed.SigningKey {
	k := mfed.GenerateSigningKey()
	if version != "" {
		k.ID = id.NewKeyID(id.KeyAlgorithmEd25519, version)
	}
	return k
}

// decodeVerifyKey checks that keyID is an ed25519 key ID and key a 32-byte
// unpadded-base64 public key.
func decodeVerifyKey(keyID id.KeyID, key id.SigningKey) (ed25519.PublicKey, error) {
	if !isEd25519KeyID(keyID) {
		return nil, fmt.Errorf("key ID %q is not an ed25519 key ID", keyID)
	}
	raw, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(string(key), "="))
	if err != nil || len(raw) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("key %s is not a base64 ed25519 public key", keyID)
	}
	return raw, nil
}

// isEd25519KeyID accepts ed25519:<version>, version in [a-zA-Z0-9_] (plus
// '-' and '.', which older servers use).
func isEd25519KeyID(keyID id.KeyID) bool {
	version, ok := strings.CutPrefix(string(keyID), "ed25519:")
	if !ok || version == "" || len(version) > 255 {
		return false
	}
	for _, c := range version {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}
