// Package logs keeps the logs of the action executions that Sluice's own runners perform, one
// file per action execution under the data directory, and serves them over HTTP, whole or
// followed while the action runs.
package logs

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"time"
)

// Store keeps logs in a directory.
type Store struct {
	dir string
	// poll is how often a followed log is checked for more.
	poll time.Duration
}

// validID matches action execution ids, which name the files.
var validID = regexp.MustCompile(`^[0-9a-fA-F-]{1,64}$`)

// ErrNotFound is returned for a log this server does not have.
var ErrNotFound = errors.New("no such log")

// Open returns the store in dir, creating it.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create the log directory: %w", err)
	}
	return &Store{dir: dir, poll: 200 * time.Millisecond}, nil
}

func (s *Store) path(id, ext string) (string, error) {
	if !validID.MatchString(id) {
		return "", ErrNotFound
	}
	return filepath.Join(s.dir, id+ext), nil
}

// Writer appends to the log of one action execution.
type Writer struct {
	f        *os.File
	donePath string
}

// Create starts (or, for a run taken up again after a restart, continues) the log of an action
// execution.
func (s *Store) Create(id string) (*Writer, error) {
	p, err := s.path(id, ".log")
	if err != nil {
		return nil, fmt.Errorf("log of %q: %w", id, err)
	}
	done, _ := s.path(id, ".done")
	_ = os.Remove(done)
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create the log of %s: %w", id, err)
	}
	return &Writer{f: f, donePath: done}, nil
}

func (w *Writer) Write(p []byte) (int, error) { return w.f.Write(p) }

// Close ends the log: followers stop once they have read it all.
func (w *Writer) Close() error {
	err := w.f.Close()
	if f, cerr := os.Create(w.donePath); cerr == nil {
		f.Close()
	} else if err == nil {
		err = cerr
	}
	return err
}

// complete reports whether the log of id has ended.
func (s *Store) complete(id string) bool {
	p, err := s.path(id, ".done")
	if err != nil {
		return true
	}
	_, err = os.Stat(p)
	return err == nil
}

// ServeHTTP answers GET /_sluice/logs/{id}: the log as plain text from the byte offset
// ?offset=N, and with ?follow=true, kept open and streamed until the action's log ends.
func (s *Store) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	p, err := s.path(id, ".log")
	f, ferr := os.Open(p)
	if err != nil || ferr != nil {
		http.Error(w, fmt.Sprintf("This server has no log of action execution %q: only runs of Sluice's built-in providers have logs, kept by the server that ran them", id), http.StatusNotFound)
		return
	}
	defer f.Close()
	if v := r.URL.Query().Get("offset"); v != "" {
		offset, err := strconv.ParseInt(v, 10, 64)
		if err != nil || offset < 0 {
			http.Error(w, "offset must be a byte offset: a whole number, 0 or more", http.StatusBadRequest)
			return
		}
		if _, err := f.Seek(offset, io.SeekStart); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
	}
	follow, _ := strconv.ParseBool(r.URL.Query().Get("follow"))
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if !follow {
		w.Header().Set("X-Sluice-Log-Complete", strconv.FormatBool(s.complete(id)))
		_, _ = io.Copy(w, f)
		return
	}
	flusher, _ := w.(http.Flusher)
	ticker := time.NewTicker(s.poll)
	defer ticker.Stop()
	for {
		// Whether the log ended is read before copying, so nothing written before the end is missed.
		done := s.complete(id)
		if _, err := io.Copy(w, f); err != nil {
			return
		}
		if flusher != nil {
			flusher.Flush()
		}
		if done {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-ticker.C:
		}
	}
}
