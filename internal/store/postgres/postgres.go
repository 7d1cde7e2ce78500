// Package postgres opens the store on a PostgreSQL database shared by any number of Sluice
// replicas, through pgx. Quotas that count records are kept under concurrency with a
// transaction-scoped advisory lock.
package postgres

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver

	"github.com/sluicehq/sluice/internal/store/sqlstore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// advisoryLockKey identifies Sluice's lock among the database's advisory locks.
const advisoryLockKey = 0x51_17_1c_e0

// Open connects to the database at url (postgres://…) and migrates its schema.
func Open(ctx context.Context, url string) (*sqlstore.DB, error) {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, err
	}
	return open(ctx, url, sub)
}

// open connects to the database at url and migrates its schema with the migrations in schema.
func open(ctx context.Context, url string, schema fs.FS) (*sqlstore.DB, error) {
	db, err := sql.Open("pgx", url)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	db.SetMaxOpenConns(32)
	db.SetMaxIdleConns(32)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to postgres: %w", err)
	}
	s, err := sqlstore.Open(ctx, db, sqlstore.Dialect{
		Name:                 "postgres",
		NumberedPlaceholders: true,
		// pgx's default mode: statements are prepared and cached per connection.
		DriverPreparesStatements: true,
		LockRows:                 " FOR UPDATE",
		SkipLockedRows:           " FOR UPDATE SKIP LOCKED",
		SerializeCreates:         fmt.Sprintf("SELECT pg_advisory_xact_lock(%d)", advisoryLockKey),
		IsUniqueViolation:        isUniqueViolation,
		IsContention:             isContention,
		Migrations:               schema,
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

func isUniqueViolation(err error) bool {
	var e *pgconn.PgError
	return errors.As(err, &e) && e.Code == "23505"
}

// isContention reports a serialization failure, a deadlock or a lock wait that timed out.
func isContention(err error) bool {
	var e *pgconn.PgError
	return errors.As(err, &e) && (e.Code == "40001" || e.Code == "40P01" || e.Code == "55P03")
}

// CreateSchema creates the schema named name in the database at url, if it does not exist: the
// store of an account other than the server's own lives in a schema of its own.
func CreateSchema(ctx context.Context, url, name string) error {
	db, err := sql.Open("pgx", url)
	if err != nil {
		return fmt.Errorf("open postgres: %w", err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("create schema %s: %w", name, err)
	}
	return nil
}
