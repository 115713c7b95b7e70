package fsm

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash"

	bolt "go.etcd.io/bbolt"
)

// StateHash is a digest of every bucket's keys and values (the applied
// index included). Nodes that applied the same log have the same hash; the
// cluster tests compare them.
func (s *Store) StateHash() (string, error) {
	h := sha256.New()
	err := s.View(func(r *ReadTx) error {
		return r.tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			writeLen(h, name)
			return b.ForEach(func(k, v []byte) error {
				writeLen(h, k)
				writeLen(h, v)
				return nil
			})
		})
	})
	return hex.EncodeToString(h.Sum(nil)), err
}

func writeLen(h hash.Hash, b []byte) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(b)))
	h.Write(n[:])
	h.Write(b)
}
