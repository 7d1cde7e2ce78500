// Package sqlite opens the embedded store: one SQLite file in the data directory, in WAL mode
// with synchronous commits, so that every acknowledged write survives a crash of the process or
// the machine. Writes queue onto one connection and commit in batches (see sqlstore's committer);
// the file belongs to one server process, which caches what only it writes.
//
// The driver is modernc.org/sqlite, SQLite translated to Go: no cgo, so Sluice stays one static
// binary that cross-compiles anywhere, at a modest cost in speed against the C library.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"path/filepath"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/sluicehq/sluice/internal/store/sqlstore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// connections bounds the connections to the database: concurrent reads beyond it wait their turn.
const connections = 16

// Open opens (creating if need be) the store in the file at path.
func Open(ctx context.Context, path string) (*sqlstore.DB, error) {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, err
	}
	return open(ctx, path, sub)
}

// open opens the store in the file at path, migrating its schema with the migrations in schema.
func open(ctx context.Context, path string, schema fs.FS) (*sqlstore.DB, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	params := url.Values{}
	// temp_store: the journals of the savepoints batched writes run in stay in memory.
	for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(FULL)", "temp_store(MEMORY)"} {
		params.Add("_pragma", p)
	}
	// Write transactions take the write lock when they begin, so that two of them never
	// deadlock upgrading read locks; busy_timeout makes the second one wait.
	params.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+abs+"?"+params.Encode())
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", abs, err)
	}
	// Connections are kept open, not closed after each burst of reads, since each one opens the
	// file anew and prepares its statements again; one of them is the writer's.
	db.SetMaxOpenConns(connections)
	db.SetMaxIdleConns(connections)
	s, err := sqlstore.Open(ctx, db, sqlstore.Dialect{
		Name:              "sqlite",
		IsUniqueViolation: isUniqueViolation,
		IsContention:      isBusy,
		SingleWriter:      true,
		Migrations:        schema,
		// The clock of the machine, which the file and whoever opens it share.
		NowMS: "CAST(unixepoch('subsec') * 1000 AS INTEGER)",
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", abs, err)
	}
	return s, nil
}

func isUniqueViolation(err error) bool {
	var e *sqlite.Error
	if !errors.As(err, &e) {
		return false
	}
	return e.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY || e.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE
}

// isBusy reports a lock that busy_timeout gave up waiting for.
func isBusy(err error) bool {
	var e *sqlite.Error
	return errors.As(err, &e) && (e.Code()&0xff == sqlite3.SQLITE_BUSY || e.Code()&0xff == sqlite3.SQLITE_LOCKED)
}
