package runners

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
)

// workArea is the directory that holds this server's run directories, one per run attempt. It
// is locked while the server runs, so that a server starting on the same work directory removes
// only what servers that are gone (stopped, crashed, killed) left behind.
type workArea struct {
	dir  string
	lock *os.File
}

// openWorkArea removes what servers no longer running left under root and makes this server's
// own directory there.
func openWorkArea(root string, logger *slog.Logger) (*workArea, error) {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("create the work directory: %w", err)
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("read the work directory: %w", err)
	}
	for _, e := range entries {
		path := filepath.Join(root, e.Name())
		lock, err := tryLock(path)
		if err != nil {
			// Locked, another server's, running; or removed already by another starting.
			if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, fs.ErrNotExist) {
				logger.Warn("could not remove a stale work directory", "path", path, "err", err)
			}
			continue
		}
		err = os.RemoveAll(path)
		lock.Close()
		if err != nil {
			logger.Warn("could not remove a stale work directory", "path", path, "err", err)
			continue
		}
		logger.Info("removed a stale work directory", "path", path)
	}
	// A server starting at the same time may remove the new directory before it is locked:
	// then make another.
	for range 3 {
		dir, err := os.MkdirTemp(root, "server-")
		if err != nil {
			return nil, fmt.Errorf("create the work directory: %w", err)
		}
		lock, err := tryLock(dir)
		if err != nil {
			continue
		}
		if stillAt(lock, dir) {
			return &workArea{dir: dir, lock: lock}, nil
		}
		lock.Close()
	}
	return nil, fmt.Errorf("could not make and lock a work directory under %s", root)
}

// stillAt reports whether the open file f is the one at path.
func stillAt(f *os.File, path string) bool {
	open, err := f.Stat()
	if err != nil {
		return false
	}
	there, err := os.Stat(path)
	return err == nil && os.SameFile(open, there)
}

// tryLock takes the lock of the file or directory at path, without waiting.
func tryLock(path string) (*os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// newRun makes a fresh directory for one run attempt of a job. A job handed out again, while an
// earlier attempt may still be running (or, without a sandbox, its orphaned processes), gets a
// directory of its own.
func (w *workArea) newRun(jobID string) (string, error) {
	return os.MkdirTemp(w.dir, jobID+"-")
}

// close removes the server's directory and releases it.
func (w *workArea) close() error {
	err := os.RemoveAll(w.dir)
	w.lock.Close()
	return err
}
