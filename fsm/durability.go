package fsm

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
)

// The store is written without fsync: the Raft log, which is synced before
// an entry commits, is the durable record, and a process crash keeps every
// bbolt write in the page cache. Only a machine crash (power loss, kernel
// panic) can lose or tear store pages. So the store remembers the boot it
// was written under; opened under another boot, it is not trusted: it is
// set aside and rebuilt from the newest snapshot plus the log (invariant 6's
// verify-and-rebuild path). Where the boot cannot be told, the store syncs
// every commit instead.

const bootIDPath = "/proc/sys/kernel/random/boot_id"

func currentBootID() []byte {
	b, err := os.ReadFile(bootIDPath)
	if err != nil {
		return nil
	}
	return bytes.TrimSpace(b)
}

// prepareStoreFile decides whether the file at path can be trusted, sets it
// aside if not, and reports whether commits may skip fsync.
func prepareStoreFile(path string) (noSync, discarded bool, err error) {
	boot := currentBootID()
	if len(boot) == 0 {
		return false, false, nil
	}
	marker := path + ".boot"
	prev, _ := os.ReadFile(marker)
	if _, statErr := os.Stat(path); statErr == nil && !bytes.Equal(bytes.TrimSpace(prev), boot) {
		aside := path + ".untrusted"
		_ = os.Remove(aside)
		if err := os.Rename(path, aside); err != nil {
			return false, false, fmt.Errorf("set aside store written under another boot: %w", err)
		}
		discarded = true
	}
	if err := writeSynced(marker, append(boot, '\n')); err != nil {
		return false, discarded, err
	}
	return true, discarded, nil
}

// writeSynced writes a small file and syncs it and its directory.
func writeSynced(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
