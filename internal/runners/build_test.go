package runners

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestStateIsReadThroughTheWorkDirectory checks what Sluice reads of the files a build script
// records, which the build could replace: a link out of the work directory is not followed, a
// FIFO does not block, and a file too large is refused.
func TestStateIsReadThroughTheWorkDirectory(t *testing.T) {
	outside := filepath.Join(t.TempDir(), "sluice.db")
	if err := os.WriteFile(outside, []byte("SECRET=key\x00"), 0o600); err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	state := filepath.Join(work, stateDir)
	if err := os.Mkdir(state, 0o755); err != nil {
		t.Fatal(err)
	}
	root, err := os.OpenRoot(work)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()

	if err := os.Symlink(outside, filepath.Join(state, "exported")); err != nil {
		t.Fatal(err)
	}
	if vars, err := readExported(root); err == nil {
		t.Fatalf("exported variables read through a link out of the work directory: %v", vars)
	}
	if err := syscall.Mkfifo(filepath.Join(state, "failed"), 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan bool)
	go func() {
		_, ok := commandFailure(root, "")
		done <- ok
	}()
	select {
	case ok := <-done:
		if ok {
			t.Fatal("a FIFO was read as the failing command")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("reading the failing command blocks on a FIFO")
	}
	os.Remove(filepath.Join(state, "exported"))
	big, err := os.Create(filepath.Join(state, "exported"))
	if err != nil {
		t.Fatal(err)
	}
	big.Truncate(maxStateFile + 1)
	big.Close()
	if _, err := readExported(root); err == nil {
		t.Fatal("exported variables larger than the limit were read")
	}
}
