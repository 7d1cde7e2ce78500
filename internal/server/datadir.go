package server

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/sluicehq/sluice/internal/store"
)

// lockDataDir makes sure that one server at a time runs on the embedded store in dir: the store
// caches what it writes, and two servers would also run every job and sweep twice. The lock is
// the kernel's, on a file in dir, so it goes with the process however the process ends.
func lockDataDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, "sluice.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open the data directory's lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			pid := strings.TrimSpace(string(holder))
			return nil, fmt.Errorf("another sluice server (pid %s) runs on the data directory %s: stop it, or give this one another --data", pid, dir)
		}
		return nil, fmt.Errorf("lock the data directory %s: %w", dir, err)
	}
	// The pid is for the message above: who holds the lock.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}

// lockedStore is a store that holds its data directory's lock until it is closed.
type lockedStore struct {
	store.Store
	lock *os.File
}

func (s lockedStore) Close() error {
	err := s.Store.Close()
	s.lock.Close()
	return err
}
