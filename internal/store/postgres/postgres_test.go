package postgres

import (
	"context"
	"database/sql"
	"io/fs"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/store"
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
