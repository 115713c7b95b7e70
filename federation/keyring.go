package federation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"maunium.net/go/mautrix/id"
)

// ServerKey is one verify key of a server as the keyring knows it.
type ServerKey struct {
	Key id.SigningKey
	// ValidUntil is, for a verify key, the lesser of the response's
	// valid_until_ts and 7 days after we received it; for an old key, its
	// expired_ts.
	ValidUntil time.Time
	// Expired keys (old_verify_keys) verify events sent before ValidUntil
	// but never requests.
	Expired bool
}

var (
	// ErrKeyNotFound: the server publishes no such key (after a fetch).
	ErrKeyNotFound = errors.New("server key not found")
	// ErrKeyFetchBackoff: the last fetch failed and the retry delay runs.
	ErrKeyFetchBackoff = errors.New("server key fetch failed recently")
)

const (
	// minRefetchInterval stops a peer that names unknown key IDs from
	// making us fetch its keys on every request.
	minRefetchInterval = time.Minute
	minFetchBackoff    = 5 * time.Second
	maxFetchBackoff    = 10 * time.Minute
	keyFetchTimeout    = 30 * time.Second
	// maxKeyEntries bounds the cache; servers with no keys go first.
	maxKeyEntries = 20000
)

// Keyring fetches, checks and caches other servers' signing keys (in memory,
// per node): directly from the server, else from the trusted notaries. It
// also answers for this server's own keys without any request.
type Keyring struct {
	serverName string
	own        KeySource
	validity   time.Duration
	client     *Client
	notaries   []TrustedKeyServer
	log        hclog.Logger
	now        func() time.Time

	mu       sync.Mutex
	servers  map[string]*keyEntry
	inflight map[string]chan struct{}
}

// keyEntry is what we know of one server.
type keyEntry struct {
	keys map[id.KeyID]ServerKey
	// raw is the newest verified key document, as its server signed it
	// (the notary endpoint serves it), with its valid_until_ts and when we
	// received it.
	raw           json.RawMessage
	rawValidUntil time.Time
	rawFetchedAt  time.Time

	lastFetch time.Time // last completed fetch attempt
	failures  int       // consecutive failed fetches
	lastErr   error
}

// NewKeyring builds a keyring that fetches with client.
func NewKeyring(cfg Config, own KeySource, client *Client, log hclog.Logger) (*Keyring, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Keyring{serverName: cfg.ServerName, own: own, validity: cfg.KeyValidity, client: client,
		notaries: cfg.TrustedKeyServers, log: log, now: time.Now,
		servers: map[string]*keyEntry{}, inflight: map[string]chan struct{}{}}, nil
}

// Key returns server's key keyID, fetching it when it is unknown or not
// known to be valid at `at` (for events: their origin_server_ts; for
// requests: now). A key returned may still be valid only before `at`, or
// be expired: the caller decides what that means for its check.
func (k *Keyring) Key(ctx context.Context, server string, keyID id.KeyID, at time.Time) (ServerKey, error) {
	if server == k.serverName {
		return k.ownKey(keyID)
	}
	if !isEd25519KeyID(keyID) {
		return ServerKey{}, fmt.Errorf("%w: %q is not an ed25519 key ID", ErrKeyNotFound, keyID)
	}
	good := func(e *keyEntry) bool {
		sk, ok := e.keys[keyID]
		return ok && !sk.ValidUntil.Before(at)
	}
	if k.has(server, good) {
		sk, _ := k.cached(server, keyID)
		return sk, nil
	}
	ferr := k.refresh(ctx, server, at, good)
	if sk, ok := k.cached(server, keyID); ok {
		return sk, nil
	}
	if ferr != nil {
		return ServerKey{}, fmt.Errorf("keys of %s: %w", server, ferr)
	}
	return ServerKey{}, fmt.Errorf("%w: %s has no key %s", ErrKeyNotFound, server, keyID)
}

// ownKey answers for this server: the current key is valid for our own
// validity period from now, old keys until their expired_ts.
func (k *Keyring) ownKey(keyID id.KeyID) (ServerKey, error) {
	cur, err := k.own.Current()
	if err != nil {
		return ServerKey{}, err
	}
	if cur.ID == keyID {
		return ServerKey{Key: cur.Pub, ValidUntil: k.now().Add(k.validity)}, nil
	}
	if old, ok := k.own.Old()[keyID]; ok {
		return ServerKey{Key: old.Key, ValidUntil: old.ExpiredTS.Time, Expired: true}, nil
	}
	return ServerKey{}, fmt.Errorf("%w: %s has no key %s", ErrKeyNotFound, k.serverName, keyID)
}

func (k *Keyring) cached(server string, keyID id.KeyID) (ServerKey, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if e := k.servers[server]; e != nil {
		sk, ok := e.keys[keyID]
		return sk, ok
	}
	return ServerKey{}, false
}

// has reports whether what we hold of server satisfies pred.
func (k *Keyring) has(server string, pred func(*keyEntry) bool) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	e := k.servers[server]
	return e != nil && pred(e)
}

// entry returns server's entry, creating it; k.mu must be held.
func (k *Keyring) entry(server string) *keyEntry {
	if e := k.servers[server]; e != nil {
		return e
	}
	if len(k.servers) >= maxKeyEntries {
		for name, e := range k.servers {
			if len(e.keys) == 0 && k.inflight[name] == nil {
				delete(k.servers, name)
			}
		}
	}
	e := &keyEntry{keys: map[id.KeyID]ServerKey{}}
	k.servers[server] = e
	return e
}

// Document returns server's newest key document for the notary endpoint,
// refreshing it first when it is missing, valid for less than minValid,
// past half its lifetime (the spec asks notaries not to serve stale
// answers), or lacks one of keyIDs. When the server cannot be reached the
// last document is returned even if stale, so old events still verify; nil
// when we never had one.
func (k *Keyring) Document(ctx context.Context, server string, keyIDs []id.KeyID, minValid time.Time) json.RawMessage {
	now := k.now()
	fresh := func(e *keyEntry) bool {
		if e.raw == nil || e.rawValidUntil.Before(minValid) ||
			now.After(e.rawFetchedAt.Add(e.rawValidUntil.Sub(e.rawFetchedAt)/2)) {
			return false
		}
		for _, kid := range keyIDs {
			if _, ok := e.keys[kid]; !ok {
				return false
			}
		}
		return true
	}
	if !k.has(server, fresh) {
		if err := k.refresh(ctx, server, minValid, fresh); err != nil {
			k.log.Debug("notary refresh failed", "server", server, "error", err)
		}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if e := k.servers[server]; e != nil {
		return e.raw
	}
	return nil
}
