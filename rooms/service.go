// Package rooms builds, signs and authorises room events on the leader and
// proposes them through the cluster (invariant 5: sends to one room
// pipeline, each built on the previous one before it commits).
package rooms

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"maunium.net/go/mautrix/id"

	"github.com/ganglion/ganglion/cluster"
	"github.com/ganglion/ganglion/fsm"
)

// Service builds room events.
type Service struct {
	node           *cluster.Node
	store          *fsm.Store
	serverName     string
	defaultVersion id.RoomVersion
	log            hclog.Logger

	keyMu sync.RWMutex
	keyID id.KeyID
	key   ed25519.PrivateKey

	headsMu sync.Mutex
	heads   map[string]*roomHead

	createMu     sync.Mutex
	lastCreateTS int64

	inflight inflight
	inviter  RemoteInviter // invites of other servers' users; nil without federation
}

// New returns the room service for node. Start must run before use.
func New(node *cluster.Node, serverName string, defaultVersion string, log hclog.Logger) *Service {
	if defaultVersion == "" {
		defaultVersion = "12"
	}
	return &Service{node: node, store: node.Store(), serverName: serverName,
		defaultVersion: id.RoomVersion(defaultVersion), log: log, heads: map[string]*roomHead{},
		inflight: inflight{calls: map[fsm.TxnKey]*inflightCall{}}}
}

// ServerName is the homeserver's name.
func (s *Service) ServerName() string { return s.serverName }

// DefaultVersion is the room version used when a client names none.
func (s *Service) DefaultVersion() id.RoomVersion { return s.defaultVersion }

// Start loads the cluster's signing key, generating and committing one if
// the cluster has none yet.
func (s *Service) Start(ctx context.Context) error {
	for {
		if s.node.IsLeader() {
			// Apply everything the log already committed before building.
			if err := s.node.Barrier(30 * time.Second); err != nil {
				s.log.Warn("barrier", "error", err)
			}
		}
		if s.loadKey() {
			return nil
		}
		if s.node.IsLeader() {
			seed := make([]byte, ed25519.SeedSize)
			if _, err := rand.Read(seed); err != nil {
				return err
			}
			kid := make([]byte, 4)
			_, _ = rand.Read(kid)
			k := fsm.SigningKey{KeyID: "ed25519:" + hex.EncodeToString(kid), Seed: seed} // key IDs are [a-zA-Z0-9_]
			if _, _, err := s.node.Propose(ctx, fsm.OpSigningKeySet, k); err != nil {
				s.log.Warn("could not commit signing key yet", "error", err)
			}
			continue
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for signing key: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (s *Service) loadKey() bool {
	var k *fsm.SigningKey
	var ok bool
	_ = s.store.View(func(r *fsm.ReadTx) error {
		k, ok = r.SigningKey()
		return nil
	})
	if !ok {
		return false
	}
	s.keyMu.Lock()
	s.keyID = id.KeyID(k.KeyID)
	s.key = ed25519.NewKeyFromSeed(k.Seed)
	s.keyMu.Unlock()
	return true
}

// PublicKey is the signing key's ID and public half (for the key server).
func (s *Service) PublicKey() (id.KeyID, ed25519.PublicKey) {
	s.keyMu.RLock()
	defer s.keyMu.RUnlock()
	if s.key == nil {
		return "", nil
	}
	return s.keyID, s.key.Public().(ed25519.PublicKey)
}

func (s *Service) signer() (id.KeyID, ed25519.PrivateKey) {
	s.keyMu.RLock()
	defer s.keyMu.RUnlock()
	return s.keyID, s.key
}

// ResetHeads forgets every cached room head, e.g. after leadership changes.
func (s *Service) ResetHeads() {
	s.headsMu.Lock()
	s.heads = map[string]*roomHead{}
	s.headsMu.Unlock()
}
