package logs

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/store/storetest"
)

// A backend prepares an empty place for the logs of one test and returns a function that opens
// a handle on it: two handles on one place are two replicas sharing their logs.
type backend struct {
	name     string
	location func(t *testing.T) (open func(t *testing.T) *Store)
}

var backends = []backend{
	{"files", func(t *testing.T) func(t *testing.T) *Store {
		dir := t.TempDir()
		return func(t *testing.T) *Store {
			s, err := Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
	}},
	{"postgres", func(t *testing.T) func(t *testing.T) *Store {
		url := storetest.PostgresURL(t)
		return func(t *testing.T) *Store {
			s, err := OpenPostgres(context.Background(), url, PostgresOptions{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}
	}},
}

// eachBackend runs test on every backend, with a function that opens handles on one place.
func eachBackend(t *testing.T, test func(t *testing.T, open func(t *testing.T) *Store)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { test(t, b.location(t)) })
	}
}

// serve serves s and returns the URL its logs are under.
func serve(t *testing.T, s *Store) string {
	t.Helper()
	s.poll = 10 * time.Millisecond
	mux := http.NewServeMux()
	mux.Handle("GET /_sluice/logs/{id}", s)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL + "/_sluice/logs/"
}

func get(t *testing.T, url string) (int, string, http.Header) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Error(err)
		return 0, "", nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Header
}

func create(t *testing.T, s *Store, id string) io.WriteCloser {
	t.Helper()
	w, err := s.Create(id)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func write(t *testing.T, w io.Writer, s string) {
	t.Helper()
	if _, err := io.WriteString(w, s); err != nil {
		t.Fatal(err)
	}
}

// eventually waits until the log at url reads want.
func eventually(t *testing.T, url, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, body, _ := get(t, url)
		if body == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s reads %q, not %q", url, body, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// follower reads a followed log as it comes.
type follower struct {
	mu   sync.Mutex
	got  bytes.Buffer
	code int
	done chan struct{}
}

func follow(t *testing.T, url string) *follower {
	t.Helper()
	f := &follower{done: make(chan struct{})}
	go func() {
		defer close(f.done)
		resp, err := http.Get(url)
		if err != nil {
			t.Error(err)
			return
		}
		defer resp.Body.Close()
		f.mu.Lock()
		f.code = resp.StatusCode
		f.mu.Unlock()
		buf := make([]byte, 32<<10)
		for {
			n, err := resp.Body.Read(buf)
			f.mu.Lock()
			f.got.Write(buf[:n])
			f.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return f
}

func (f *follower) body() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.got.String()
}

// waitFor waits until the follower has read want.
func (f *follower) waitFor(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for f.body() != want {
		if time.Now().After(deadline) {
			t.Fatalf("followed %q, not %q", f.body(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// end waits for the followed log to end and returns what was read.
func (f *follower) end(t *testing.T) string {
	t.Helper()
	select {
	case <-f.done:
		return f.body()
	case <-time.After(10 * time.Second):
		t.Fatalf("following did not end: read %d bytes", len(f.body()))
		return ""
	}
}

func (f *follower) ended() bool {
	select {
	case <-f.done:
		return true
	default:
		return false
	}
}

func TestFollowStreamsUntilTheLogEnds(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func(t *testing.T) *Store) {
		s := open(t)
		base := serve(t, s)
		w := create(t, s, "0a1b")
		write(t, w, "first\n")
		got := make(chan string)
		go func() { _, body, _ := get(t, base+"0a1b?follow=true"); got <- body }()
		time.Sleep(50 * time.Millisecond)
		write(t, w, "second\n")
		w.Close()
		select {
		case body := <-got:
			if body != "first\nsecond\n" {
				t.Fatalf("followed %q", body)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("following a closed log did not end")
		}
		code, body, h := get(t, base+"0a1b?offset=6")
		if code != 200 || body != "second\n" || h.Get("X-Sluice-Log-Complete") != "true" {
			t.Fatalf("from offset 6: %d %q %v", code, body, h)
		}
	})
}

func TestUnknownAndInvalidIDs(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func(t *testing.T) *Store) {
		s := open(t)
		base := serve(t, s)
		for _, id := range []string{"abc", "..%2F..%2Fetc%2Fpasswd", "x", strings.Repeat("a", 65)} {
			for _, q := range []string{"", "?follow=true", "?offset=x"} {
				if code, body, _ := get(t, base+id+q); code != 404 || !strings.Contains(body, "no log") {
					t.Fatalf("%s%s: %d %q", id, q, code, body)
				}
			}
		}
		for _, id := range []string{"../escape", "", "x", strings.Repeat("a", 65)} {
			if _, err := s.Create(id); err == nil {
				t.Fatalf("created a log named %q", id)
			}
		}
	})
}

// TestAnswers checks the answers byte for byte: headers, offsets past the end, bad offsets.
func TestAnswers(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func(t *testing.T) *Store) {
		s := open(t)
		base := serve(t, s)
		w := create(t, s, "c0ffee")
		code, body, h := get(t, base+"c0ffee")
		if code != 200 || body != "" || h.Get("X-Sluice-Log-Complete") != "false" ||
			h.Get("Content-Type") != "text/plain; charset=utf-8" || h.Get("X-Content-Type-Options") != "nosniff" {
			t.Fatalf("empty log: %d %q %v", code, body, h)
		}
		write(t, w, "hello\n")
		eventually(t, base+"c0ffee", "hello\n")
		for _, q := range []string{"?offset=-1", "?offset=x", "?offset=1.5", "?offset=x&follow=true"} {
			code, body, _ := get(t, base+"c0ffee"+q)
			if code != 400 || body != "offset must be a byte offset: a whole number, 0 or more\n" {
				t.Fatalf("%s: %d %q", q, code, body)
			}
		}
		if code, body, h := get(t, base+"c0ffee?offset=100"); code != 200 || body != "" || h.Get("X-Sluice-Log-Complete") != "false" {
			t.Fatalf("past the end: %d %q %v", code, body, h)
		}
		// Following from past the end gets what the log holds past that offset once it gets there.
		f := follow(t, base+"c0ffee?offset=8&follow=true")
		write(t, w, "world\n")
		w.Close()
		if got := f.end(t); got != "rld\n" {
			t.Fatalf("followed from offset 8: %q", got)
		}
		if code, body, h := get(t, base+"c0ffee?follow=false"); code != 200 || body != "hello\nworld\n" || h.Get("X-Sluice-Log-Complete") != "true" {
			t.Fatalf("whole: %d %q %v", code, body, h)
		}
		if code, body, h := get(t, base+"c0ffee?offset=12&follow=true"); code != 200 || body != "" || h.Get("X-Sluice-Log-Complete") != "" {
			t.Fatalf("followed from the end of a complete log: %d %q %v", code, body, h)
		}
	})
}

// TestCreateContinues: creating a log again (a run taken up again) appends to it, and it is no
// longer complete until it is closed again.
func TestCreateContinues(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func(t *testing.T) *Store) {
		s := open(t)
		base := serve(t, s)
		w := create(t, s, "1234")
		write(t, w, "one\n")
		w.Close()
		w = create(t, s, "1234")
		if _, _, h := get(t, base+"1234"); h.Get("X-Sluice-Log-Complete") != "false" {
			t.Fatalf("a log created again is complete: %v", h)
		}
		f := follow(t, base+"1234?follow=true")
		f.waitFor(t, "one\n")
		write(t, w, "two\n")
		f.waitFor(t, "one\ntwo\n")
		if f.ended() {
			t.Fatal("following a log created again ended before it was closed")
		}
		w.Close()
		if got := f.end(t); got != "one\ntwo\n" {
			t.Fatalf("followed %q", got)
		}
		if _, err := w.Write([]byte("late")); err == nil {
			t.Fatal("wrote to a closed log")
		}
	})
}

// TestFollowAcrossHandles: a log written through one handle (replica) is followed through
// another while it is written, every byte in order, and the following ends when it is closed.
func TestFollowAcrossHandles(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func(t *testing.T) *Store) {
		a, b := open(t), open(t)
		base := serve(t, b)
		w := create(t, a, "abcdef-0123")
		f := follow(t, base+"abcdef-0123?follow=true")
		var want strings.Builder
		for i := range 20 {
			line := fmt.Sprintf("line %d %s\n", i, strings.Repeat("x", i*37))
			write(t, w, line)
			want.WriteString(line)
			// Each line arrives while the log is still being written, without a further write.
			f.waitFor(t, want.String())
		}
		if f.ended() {
			t.Fatal("following ended before the log was closed")
		}
		w.Close()
		if got := f.end(t); got != want.String() {
			t.Fatalf("followed %d bytes, not the %d written", len(got), want.Len())
		}
		if f.code != 200 {
			t.Fatalf("followed with status %d", f.code)
		}
	})
}

// TestCrashThenContinue: a writer that never closes (its replica died) leaves the log
// incomplete; created again through another handle, it continues after what was written.
func TestCrashThenContinue(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func(t *testing.T) *Store) {
		a, b := open(t), open(t)
		base := serve(t, b)
		w := create(t, a, "dead-beef")
		write(t, w, "before the crash\n")
		eventually(t, base+"dead-beef", "before the crash\n")
		a.Close() // the replica dies: w is never closed
		_, _, h := get(t, base+"dead-beef")
		if h.Get("X-Sluice-Log-Complete") != "false" {
			t.Fatalf("the log of a crashed writer is complete: %v", h)
		}
		f := follow(t, base+"dead-beef?follow=true")
		f.waitFor(t, "before the crash\n")
		w2 := create(t, b, "dead-beef")
		write(t, w2, "taken up again\n")
		w2.Close()
		want := "before the crash\ntaken up again\n"
		if got := f.end(t); got != want {
			t.Fatalf("followed %q", got)
		}
		code, body, h := get(t, base+"dead-beef")
		if code != 200 || body != want || h.Get("X-Sluice-Log-Complete") != "true" {
			t.Fatalf("%d %q %v", code, body, h)
		}
	})
}

// TestConcurrentWriters writes logs of different ids at once, through two handles.
func TestConcurrentWriters(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func(t *testing.T) *Store) {
		handles := []*Store{open(t), open(t)}
		base := serve(t, handles[0])
		const logs = 8
		want := make([]string, logs)
		var wg sync.WaitGroup
		for i := range logs {
			wg.Go(func() {
				r := rand.New(rand.NewPCG(uint64(i), 1))
				w, err := handles[i%2].Create(fmt.Sprintf("%04x", i))
				if err != nil {
					t.Error(err)
					return
				}
				var b strings.Builder
				for j := range 200 {
					line := fmt.Sprintf("log %d line %d %s\n", i, j, strings.Repeat("y", r.IntN(2000)))
					b.WriteString(line)
					if _, err := io.WriteString(w, line); err != nil {
						t.Error(err)
					}
					if r.IntN(20) == 0 {
						time.Sleep(time.Millisecond)
					}
				}
				if err := w.Close(); err != nil {
					t.Error(err)
				}
				want[i] = b.String()
			})
		}
		wg.Wait()
		for i := range logs {
			code, body, h := get(t, base+fmt.Sprintf("%04x", i))
			if code != 200 || body != want[i] || h.Get("X-Sluice-Log-Complete") != "true" {
				t.Fatalf("log %d: %d, %d bytes rather than %d, %v", i, code, len(body), len(want[i]), h)
			}
		}
	})
}

// TestLargeLog writes a few MB, in writes small and large, and reads them back exactly, whole,
// from offsets, and followed.
func TestLargeLog(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func(t *testing.T) *Store) {
		a, b := open(t), open(t)
		base := serve(t, b)
		r := rand.New(rand.NewPCG(7, 7))
		data := make([]byte, 5<<20)
		for i := range data {
			data[i] = byte(r.IntN(256))
		}
		w := create(t, a, "0000-1111")
		f := follow(t, base+"0000-1111?follow=true")
		for rest := data; len(rest) > 0; {
			n := min(len(rest), 1+r.IntN(8<<10))
			if r.IntN(50) == 0 {
				n = min(len(rest), 1500<<10) // one large write
			}
			if _, err := w.Write(rest[:n]); err != nil {
				t.Fatal(err)
			}
			rest = rest[n:]
		}
		w.Close()
		if got := f.end(t); got != string(data) {
			t.Fatalf("followed %d bytes, not the %d written", len(got), len(data))
		}
		for _, offset := range []int{0, 1, 64 << 10, 3_000_001, len(data) - 1, len(data)} {
			code, body, _ := get(t, fmt.Sprintf("%s0000-1111?offset=%d", base, offset))
			if code != 200 || body != string(data[offset:]) {
				t.Fatalf("from offset %d: %d, %d bytes rather than %d", offset, code, len(body), len(data)-offset)
			}
		}
	})
}
