package logs

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/store/storetest"
)

// TestPostgresReplicasStartTogether: replicas that start at once on a fresh schema all create
// (or find) the tables.
func TestPostgresReplicasStartTogether(t *testing.T) {
	url := storetest.PostgresURL(t)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			s, err := OpenPostgres(context.Background(), url, PostgresOptions{})
			if err != nil {
				t.Error(err)
				return
			}
			s.Close()
		})
	}
	wg.Wait()
}

// TestPostgresWritersOfOneLog: two writers of one log (a run taken up again while the replica
// that ran it still writes) both append to it, losing nothing.
func TestPostgresWritersOfOneLog(t *testing.T) {
	url := storetest.PostgresURL(t)
	open := func() *Store {
		s, err := OpenPostgres(context.Background(), url, PostgresOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	a, b := open(), open()
	wa, wb := create(t, a, "abab"), create(t, b, "abab")
	var want []string
	var wg sync.WaitGroup
	for _, w := range []struct {
		name string
		w    io.WriteCloser
	}{{"a", wa}, {"b", wb}} {
		for i := range 100 {
			want = append(want, fmt.Sprintf("%s %d", w.name, i))
		}
		wg.Go(func() {
			for i := range 100 {
				write(t, w.w, fmt.Sprintf("%s %d\n", w.name, i))
				time.Sleep(3 * time.Millisecond)
			}
		})
	}
	wg.Wait()
	wa.Close()
	wb.Close()
	code, body, _ := get(t, serve(t, a)+"abab")
	got := strings.Split(strings.TrimSuffix(body, "\n"), "\n")
	sort.Strings(got)
	sort.Strings(want)
	if code != 200 || strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("%d: read %q", code, body)
	}
}

// TestPostgresNotifier: a backend on a connection pool of the caller's, whose flushes wake the
// followers through Store.Follow instead of the poll timer.
func TestPostgresNotifier(t *testing.T) {
	db, err := sql.Open("pgx", storetest.PostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var mu sync.Mutex
	following := map[string][]chan string{}
	pg, err := NewPostgres(context.Background(), db, PostgresOptions{FlushInterval: 20 * time.Millisecond,
		Flushed: func(id string) {
			mu.Lock()
			defer mu.Unlock()
			for _, c := range following[id] {
				select {
				case c <- "":
				default:
				}
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	s := New(pg)
	base := serve(t, s)
	s.poll = time.Hour // Store's own timer would never wake a follower in time
	s.Follow = func(id string) (<-chan string, func()) {
		c := make(chan string, 1)
		mu.Lock()
		following[id] = append(following[id], c)
		mu.Unlock()
		return c, func() {
			mu.Lock()
			defer mu.Unlock()
			following[id] = slices.DeleteFunc(following[id], func(x chan string) bool { return x == c })
		}
	}
	w := create(t, s, "feed")
	f := follow(t, base+"feed?follow=true")
	write(t, w, "one\n")
	f.waitFor(t, "one\n")
	write(t, w, "two\n")
	w.Close()
	if got := f.end(t); got != "one\ntwo\n" {
		t.Fatalf("followed %q", got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Ping(); err != nil {
		t.Fatalf("closing the backend closed the caller's pool: %v", err)
	}
}
