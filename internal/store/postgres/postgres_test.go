package postgres

import (
	"context"
	"database/sql"
	"io/fs"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/store"
	"github.com/sluicehq/sluice/internal/store/sqlstore"
	"github.com/sluicehq/sluice/internal/store/storetest"
)

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) func() store.Store {
		dsn := storetest.PostgresURL(t)
		return func() store.Store {
			s, err := Open(context.Background(), dsn)
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
		dsn := storetest.PostgresURL(t)
		sub, err := fs.Sub(migrations, "migrations")
		if err != nil {
			t.Fatal(err)
		}
		schema, err := storetest.MigrationsUpTo(sub, version)
		if err != nil {
			t.Fatal(err)
		}
		s, err := open(ctx, dsn, schema)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		storetest.Seed(t, db, version, statements)
		return func() store.Store {
			s, err := Open(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
	})
}

// TestReadyFailsWhileTheStoreCannotWrite locks the table Ready writes to from another session:
// the store cannot write, so it is not ready until the lock goes.
func TestReadyFailsWhileTheStoreCannotWrite(t *testing.T) {
	ctx := context.Background()
	dsn := storetest.PostgresURL(t)
	s, err := Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Ready(ctx); err != nil {
		t.Fatalf("a fresh store: %v", err)
	}

	other, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	tx, err := other.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "LOCK TABLE secrets IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	waiting, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if err := s.Ready(waiting); err == nil {
		t.Fatal("Ready succeeded while another session locks the table")
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := s.Ready(ctx); err != nil {
		t.Fatalf("once the lock is released: %v", err)
	}
}

// TestConcurrentOpensOfAFreshSchema starts replicas at the same moment on an empty database:
// each creates the schema, if need be, and migrates it, and none may fail for racing the others.
func TestConcurrentOpensOfAFreshSchema(t *testing.T) {
	ctx := context.Background()
	dsn := storetest.PostgresURL(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	// A schema no one created yet: the account schemas of the server whose schema PostgresURL
	// made are dropped with it.
	fresh := q.Get("search_path") + "_account_000000000001"
	q.Set("search_path", fresh)
	u.RawQuery = q.Encode()
	for _, c := range []struct {
		name, url, create string
	}{
		{"existing schema", dsn, ""},
		{"schema created by each", u.String(), fresh},
	} {
		t.Run(c.name, func(t *testing.T) {
			const replicas = 4
			start := make(chan struct{})
			stores := make([]*sqlstore.DB, replicas)
			errs := make([]error, replicas)
			var wg sync.WaitGroup
			for i := range replicas {
				wg.Go(func() {
					<-start
					if c.create != "" {
						if errs[i] = CreateSchema(ctx, dsn, c.create); errs[i] != nil {
							return
						}
					}
					stores[i], errs[i] = Open(ctx, c.url)
				})
			}
			close(start)
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Errorf("replica %d: %v", i, err)
				}
			}
			t.Cleanup(func() {
				for _, s := range stores {
					if s != nil {
						s.Close()
					}
				}
			})
			if t.Failed() {
				return
			}
			names, err := fs.Glob(migrations, "migrations/*.sql")
			if err != nil {
				t.Fatal(err)
			}
			db, err := sql.Open("pgx", c.url)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var applied, rows int
			if err := db.QueryRowContext(ctx, `SELECT count(DISTINCT version), count(*) FROM schema_migrations`).Scan(&applied, &rows); err != nil {
				t.Fatal(err)
			}
			if applied != len(names) || rows != len(names) {
				t.Fatalf("schema_migrations holds %d rows of %d versions, want the %d migrations once each", rows, applied, len(names))
			}
			for i, s := range stores {
				if err := s.Ready(ctx); err != nil {
					t.Errorf("replica %d: %v", i, err)
				}
			}
		})
	}
}
