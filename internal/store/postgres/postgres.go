// Package postgres opens the store on a PostgreSQL database shared by any number of Sluice
// replicas, through pgx. Quotas that count records are kept under concurrency with a
// transaction-scoped advisory lock; replicas that create or migrate a schema at once take turns
// under a session-scoped advisory lock of that schema's.
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

// advisoryLockKey identifies Sluice's locks among the database's advisory locks: alone, the
// lock of SerializeCreates, held by a transaction; paired with a hash of a schema's name (the
// two-key form, a key space apart from the one-key form), the lock of a schema's creation and
// migration, held by a session.
const advisoryLockKey = 0x51_17_1c_e0

// schemaLock is the argument list of pg_advisory_lock and pg_advisory_unlock that names the lock
// of the schema whose name the SQL expression schema gives. A lock per schema, rather than one
// for the database: replicas that open different accounts' schemas, or a replica opening a
// new account while another migrates its own, do not wait for each other. Two names that hash
// alike only share a lock, and no one takes two such locks at once, so a collision costs a
// wait, never a deadlock. hashtext is the server's own: every replica computes a key alike.
func schemaLock(schema string) string {
	return fmt.Sprintf("%d, hashtext(%s)", advisoryLockKey, schema)
}

// currentSchema is the schema a connection creates its tables in, the first of its search_path
// that exists.
const currentSchema = "coalesce(current_schema(), '')"

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
		// The unlock releases all the session's advisory locks, which are the one the lock took:
		// the connection goes back to the pool holding none, even if the current schema changed.
		LockMigrations:    "SELECT pg_advisory_lock(" + schemaLock(currentSchema) + ")",
		UnlockMigrations:  "SELECT pg_advisory_unlock_all()",
		NowMS:             "(extract(epoch FROM clock_timestamp()) * 1000)::bigint",
		IsUniqueViolation: isUniqueViolation,
		IsContention:      isContention,
		Migrations:        schema,
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
// store of an account other than the server's own lives in a schema of its own. Replicas may
// create the same schema at once: they take turns under the schema's lock (the one its migration
// takes), and one that loses a race all the same, to a process that takes no such lock, finds the
// schema there.
func CreateSchema(ctx context.Context, url, name string) error {
	db, err := sql.Open("pgx", url)
	if err != nil {
		return fmt.Errorf("open postgres: %w", err)
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("connect to postgres: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock("+schemaLock("$1")+")", name); err != nil {
		return fmt.Errorf("lock schema %s: %w", name, err)
	}
	_, err = conn.ExecContext(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{name}.Sanitize())
	if isUniqueViolation(err) {
		var exists bool
		if qerr := conn.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", name).Scan(&exists); qerr == nil && exists {
			err = nil
		}
	}
	if err != nil {
		return fmt.Errorf("create schema %s: %w", name, err)
	}
	// Closing the connection ends the session and the lock with it, should this fail.
	_, _ = conn.ExecContext(ctx, "SELECT pg_advisory_unlock("+schemaLock("$1")+")", name)
	return nil
}
