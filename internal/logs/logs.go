// Package logs keeps the logs of the action executions that Sluice's own runners perform and
// serves them over HTTP, whole or followed while the action runs.
//
// Where the logs are kept is a Backend: files under the data directory (Files, for a server on
// its embedded store), or a PostgreSQL schema that every replica of a server shares (Postgres),
// so that a log written on one replica is read and followed on any other as it is produced, and
// outlives the replica that wrote it. A Store is the part both have in common: it checks the
// ids, and answers the HTTP requests the same way whatever the backend.
package logs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"time"
)

// Backend keeps logs. The ids it is given are valid ones (Store checks them); the logs it keeps
// are append-only byte streams, each ended (complete) or not.
type Backend interface {
	// Create starts the log of id, or continues it (appending after what it holds) if it exists,
	// as it does for a run taken up again after a restart: the log is no longer complete until
	// the returned writer is closed.
	Create(id string) (io.WriteCloser, error)
	// Complete reports whether the log of id has ended, or ErrNotFound if there is no such log.
	// What was written before the log ended is readable once Complete reports it ended.
	Complete(ctx context.Context, id string) (bool, error)
	// Copy writes to w what the log of id holds from the byte offset on, and returns how many
	// bytes it wrote. An offset past the end writes nothing.
	Copy(ctx context.Context, w io.Writer, id string, offset int64) (int64, error)
	// Close releases the backend.
	Close() error
}

// Store keeps logs in a Backend and serves them. It is an http.Handler for
// GET /_sluice/logs/{id}.
type Store struct {
	b Backend
	// Follow, if set, hears that the log of id may have grown, for as long as one request
	// follows it (stop ends the hearing): a notifier told of every flush (see
	// PostgresOptions.Flushed) wakes followers on any replica at once. Without it, or when
	// nothing is heard, a followed log is read again every poll interval. Set it before the
	// store is used.
	Follow func(id string) (wake <-chan string, stop func())
	// poll is how often a followed log is read again when nothing woke its follower: 200 ms, or
	// ten times that when Follow wakes them.
	poll time.Duration
}

// validID matches action execution ids, which name the files.
var validID = regexp.MustCompile(`^[0-9a-fA-F-]{1,64}$`)

// ErrNotFound is returned for a log this server does not have.
var ErrNotFound = errors.New("no such log")

// New returns the store of the logs in b.
func New(b Backend) *Store {
	return &Store{b: b, poll: 200 * time.Millisecond}
}

// Open returns the store of the logs kept as files in dir, creating it.
func Open(dir string) (*Store, error) {
	b, err := NewFiles(dir)
	if err != nil {
		return nil, err
	}
	return New(b), nil
}

// Create starts (or, for a run taken up again after a restart, continues) the log of an action
// execution. Closing the writer ends the log: followers stop once they have read it all.
func (s *Store) Create(id string) (io.WriteCloser, error) {
	if !validID.MatchString(id) {
		return nil, fmt.Errorf("log of %q: %w", id, ErrNotFound)
	}
	return s.b.Create(id)
}

// Close releases the store's backend.
func (s *Store) Close() error { return s.b.Close() }

// wait blocks until the followed log may have grown: wake said so, or the poll interval passed;
// or until ctx ends.
func (s *Store) wait(ctx context.Context, wake <-chan string) error {
	poll := s.poll
	if wake != nil {
		poll *= 10
	}
	t := time.NewTimer(poll)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-wake:
		return nil
	case <-t.C:
		return nil
	}
}

// ServeHTTP answers GET /_sluice/logs/{id}: the log as plain text from the byte offset
// ?offset=N, and with ?follow=true, kept open and streamed until the action's log ends.
func (s *Store) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("id")
	done, err := false, ErrNotFound
	if validID.MatchString(id) {
		done, err = s.b.Complete(ctx, id)
	}
	if errors.Is(err, ErrNotFound) {
		http.Error(w, fmt.Sprintf("This server has no log of action execution %q: only runs of Sluice's built-in providers have logs, kept by the server that ran them", id), http.StatusNotFound)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	var offset int64
	if v := r.URL.Query().Get("offset"); v != "" {
		offset, err = strconv.ParseInt(v, 10, 64)
		if err != nil || offset < 0 {
			http.Error(w, "offset must be a byte offset: a whole number, 0 or more", http.StatusBadRequest)
			return
		}
	}
	follow, _ := strconv.ParseBool(r.URL.Query().Get("follow"))
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	out := &responseWriter{w: w}
	if !follow {
		w.Header().Set("X-Sluice-Log-Complete", strconv.FormatBool(done))
		n, err := s.b.Copy(ctx, out, id, offset)
		if err != nil && n == 0 && out.err == nil {
			// Nothing was sent yet: say the log could not be read rather than send it empty.
			w.Header().Del("X-Sluice-Log-Complete")
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
		return
	}
	flusher, _ := w.(http.Flusher)
	var wake <-chan string
	if s.Follow != nil {
		var stop func()
		wake, stop = s.Follow(id)
		defer stop()
	}
	for first := true; ; first = false {
		// Whether the log ended is read before copying, so nothing written before the end is missed.
		if !first {
			if done, err = s.b.Complete(ctx, id); err != nil {
				done = false
			}
		}
		n, err := s.b.Copy(ctx, out, id, offset)
		offset += n
		if out.err != nil {
			return // the client is gone
		}
		if flusher != nil {
			flusher.Flush()
		}
		// A log that could not be read (the database is unreachable a moment) is read again.
		if done && err == nil {
			return
		}
		if s.wait(ctx, wake) != nil {
			return
		}
	}
}

// responseWriter remembers whether writing the response failed, to tell a client gone from a
// backend that could not read.
type responseWriter struct {
	w   io.Writer
	err error
}

func (w *responseWriter) Write(p []byte) (int, error) {
	n, err := w.w.Write(p)
	if err != nil && w.err == nil {
		w.err = err
	}
	return n, err
}
