package runners

import (
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
)

// TestWorkAreaRemovesOnlyWhatStoppedServersLeft starts a work area where a crashed server left
// its runs (unlocked) and a running one holds its own (locked): the first are removed, the
// second kept; each run attempt gets a directory of its own.
func TestWorkAreaRemovesOnlyWhatStoppedServersLeft(t *testing.T) {
	root := t.TempDir()
	for _, p := range []string{"server-crashed/job-1-1/build/src", "job-from-an-older-version/src", "server-running/job-2-1/build"} {
		if err := os.MkdirAll(filepath.Join(root, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	running, err := tryLock(filepath.Join(root, "server-running"))
	if err != nil {
		t.Fatal(err)
	}
	defer running.Close()

	w, err := openWorkArea(root, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	for _, gone := range []string{"server-crashed", "job-from-an-older-version"} {
		if _, err := os.Stat(filepath.Join(root, gone)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s was not removed: %v", gone, err)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "server-running", "job-2-1", "build")); err != nil {
		t.Errorf("a running server's run was removed: %v", err)
	}
	// This server's own area is locked against the next server's start.
	if _, err := tryLock(w.dir); err == nil {
		t.Error("the work area is not locked")
	}
	first, err := w.newRun("job-3")
	if err != nil {
		t.Fatal(err)
	}
	again, err := w.newRun("job-3")
	if err != nil {
		t.Fatal(err)
	}
	if first == again || filepath.Dir(first) != w.dir {
		t.Errorf("two attempts of a job got %s and %s", first, again)
	}
	if err := w.close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(w.dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the closed work area is still there: %v", err)
	}
}
