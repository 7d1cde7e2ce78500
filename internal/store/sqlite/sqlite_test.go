package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"io/fs"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/store"
	"github.com/sluicehq/sluice/internal/store/storetest"
)

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) func() store.Store {
		path := filepath.Join(t.TempDir(), "sluice.db")
		return func() store.Store {
			s, err := Open(context.Background(), path)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
	})
}

func TestUpgrade(t *testing.T) {
	storetest.RunUpgrade(t, func(t *testing.T, version int, statements []string) func() store.Store {
		ctx := context.Background()
		path := filepath.Join(t.TempDir(), "sluice.db")
		sub, err := fs.Sub(migrations, "migrations")
		if err != nil {
			t.Fatal(err)
		}
		schema, err := storetest.MigrationsUpTo(sub, version)
		if err != nil {
			t.Fatal(err)
		}
		s, err := open(ctx, path, schema)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		db, err := sql.Open("sqlite", "file:"+path)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		storetest.Seed(t, db, version, statements)
		return func() store.Store {
			s, err := Open(ctx, path)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
	})
}

// TestReadyFailsWhileAnotherWriterHoldsTheDatabase holds SQLite's write lock from a connection of
// another client: the store cannot write, so it is not ready until the lock goes.
func TestReadyFailsWhileAnotherWriterHoldsTheDatabase(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sluice.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Ready(ctx); err != nil {
		t.Fatalf("a fresh store: %v", err)
	}

	other, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	conn, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	waiting, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if err := s.Ready(waiting); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Ready while another writer holds the database: %v", err)
	}
	if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	if err := s.Ready(ctx); err != nil {
		t.Fatalf("once the lock is released: %v", err)
	}
}

// TestConcurrentOpensOfANewFile opens one new file from several goroutines at once: the
// migrations' transactions take the database's write lock, so each is applied once and no open
// fails. (The server opens a file from one process only; this holds all the same.)
func TestConcurrentOpensOfANewFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sluice.db")
	const handles = 4
	start := make(chan struct{})
	stores := make([]store.Store, handles)
	errs := make([]error, handles)
	var wg sync.WaitGroup
	for i := range handles {
		wg.Go(func() {
			<-start
			stores[i], errs[i] = Open(ctx, path)
		})
	}
	close(start)
	wg.Wait()
	for i, s := range stores {
		if errs[i] != nil {
			t.Errorf("handle %d: %v", i, errs[i])
			continue
		}
		defer s.Close()
	}
	if t.Failed() {
		return
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var rows int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&rows); err != nil || rows != len(names) {
		t.Fatalf("schema_migrations holds %d rows (%v), want the %d migrations once each", rows, err, len(names))
	}
}
