// Package sqlstore implements store.Store on database/sql. The SQL is common to SQLite and
// PostgreSQL; what differs between them (placeholders, locking, error codes, the schema's
// migrations) comes from a Dialect supplied by store/sqlite or store/postgres.
package sqlstore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sluicehq/sluice/internal/store"
)

// Dialect is what a database brings to the shared implementation.
type Dialect struct {
	Name string
	// NumberedPlaceholders: write $1, $2 … instead of ?.
	NumberedPlaceholders bool
	// LockRows is appended to a SELECT whose rows the transaction must hold until it ends;
	// SkipLockedRows to one that must pass over rows other transactions hold. Empty where the
	// transaction already holds the whole database.
	LockRows, SkipLockedRows string
	// SerializeCreates, run first in a transaction, serializes transactions that count a kind of
	// record before adding one, so that quotas hold under concurrency.
	SerializeCreates string
	// LockMigrations, run on a connection of its own before anything else Open does, waits for
	// and takes a lock of the session that serializes the migration of the store's schema among
	// all the processes that open it at once: the first applies the migrations, the others wait
	// and find them applied. UnlockMigrations, run on the same connection, releases it. Empty
	// where a migration's transaction holds the whole database anyway (SQLite).
	LockMigrations, UnlockMigrations string
	// NowMS is an SQL expression of the database's clock, in milliseconds since the Unix epoch:
	// leases run by it, so that replicas whose clocks differ agree on when one expires.
	NowMS string
	// IsUniqueViolation reports whether err is a primary key or unique constraint violation.
	IsUniqueViolation func(error) bool
	// IsContention reports whether err means the transaction lost to concurrent ones (a lock
	// wait that timed out, a deadlock, a serialization failure); it becomes store.ErrConflict.
	IsContention func(error) bool
	// DriverPreparesStatements: the driver prepares and caches statements per connection by
	// itself (pgx does), so SQL goes as text.
	DriverPreparesStatements bool
	// SingleWriter: the database lets one transaction write at a time, so writes are queued
	// onto one connection and committed in batches.
	SingleWriter bool
	// Migrations holds files named NNNN_description.sql, applied in order, each once.
	Migrations fs.FS
}

// DB is a store.Store on a database/sql handle.
type DB struct {
	db      *sql.DB
	dialect Dialect
	// stmts holds the prepared statements, by query text.
	stmts sync.Map
	// writes, when the dialect has one writer, carries out every write transaction; latest then
	// caches pipelines' latest versions, which only those writes change.
	writes *committer
	latest *latestCache
}

var _ store.Store = (*DB)(nil)

// Open runs the pending migrations on db and returns the store. It owns db from then on.
func Open(ctx context.Context, db *sql.DB, dialect Dialect) (*DB, error) {
	s := &DB{db: db, dialect: dialect}
	if err := s.migrate(ctx); err != nil {
		return nil, fmt.Errorf("migrate %s schema: %w", dialect.Name, err)
	}
	if dialect.SingleWriter {
		conn, err := db.Conn(ctx)
		if err != nil {
			return nil, fmt.Errorf("open %s write connection: %w", dialect.Name, err)
		}
		s.writes = newCommitter(s, conn)
		s.latest = newLatestCache()
	}
	return s, nil
}

func (s *DB) Close() error {
	if s.writes != nil {
		s.writes.close()
	}
	s.stmts.Range(func(_, st any) bool {
		st.(*sql.Stmt).Close()
		return true
	})
	return s.db.Close()
}

// q returns query in the dialect's placeholder form.
func (s *DB) q(query string) string {
	if !s.dialect.NumberedPlaceholders {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// migrate applies the pending migrations, each in a transaction of its own, on a connection that
// holds the dialect's migration lock throughout: replicas that open a store at the same moment
// take turns, and the check that a migration is pending and its application happen under the
// lock, the creation of schema_migrations included.
func (s *DB) migrate(ctx context.Context) (err error) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if s.dialect.LockMigrations != "" {
		if _, err := conn.ExecContext(ctx, s.dialect.LockMigrations); err != nil {
			discard(conn)
			return fmt.Errorf("lock the schema for migration: %w", err)
		}
		defer func() {
			if err != nil {
				// The lock goes with the session: a connection left in an unknown state does not
				// go back to the pool holding it.
				discard(conn)
				return
			}
			// The migrations are done whatever ctx does now: the lock is released regardless.
			unlockCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			if _, uerr := conn.ExecContext(unlockCtx, s.dialect.UnlockMigrations); uerr != nil {
				discard(conn)
			}
		}()
	}
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_ms BIGINT NOT NULL)`); err != nil {
		return err
	}
	names, err := fs.Glob(s.dialect.Migrations, "*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, name := range names {
		version, err := strconv.Atoi(strings.SplitN(name, "_", 2)[0])
		if err != nil {
			return fmt.Errorf("migration %s: name must start with its number", name)
		}
		script, err := fs.ReadFile(s.dialect.Migrations, name)
		if err != nil {
			return err
		}
		// The check is in the migration's transaction too: where there is no migration lock
		// (SQLite), the transaction takes the database's write lock as it begins. SerializeCreates
		// keeps out the migrations of replicas of earlier versions, which take no migration lock,
		// during a rolling upgrade.
		err = s.runTxOn(ctx, conn, func(tx txn) error {
			if err := s.serializeCreates(tx); err != nil {
				return err
			}
			var applied int
			if err := tx.queryRow(`SELECT count(*) FROM schema_migrations WHERE version = ?`, version).Scan(&applied); err != nil {
				return err
			}
			if applied > 0 {
				return nil
			}
			for _, stmt := range strings.Split(string(script), ";\n") {
				if strings.TrimSpace(stmt) == "" {
					continue
				}
				if _, err := tx.exec(stmt); err != nil {
					return fmt.Errorf("%s: %w", name, err)
				}
			}
			_, err := tx.exec(`INSERT INTO schema_migrations (version, applied_ms) VALUES (?, ?)`, version, time.Now().UnixMilli())
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// discard closes conn's session instead of returning it to the pool, which ends whatever the
// session held: its locks, a transaction left open.
func discard(conn *sql.Conn) {
	_ = conn.Raw(func(any) error { return driver.ErrBadConn })
}

// tx runs fn in a write transaction and commits it if fn returns nil.
func (s *DB) tx(ctx context.Context, fn func(txn) error) error {
	var err error
	if s.writes != nil {
		err = s.writes.do(ctx, fn)
	} else {
		err = s.runTx(ctx, fn)
	}
	if err != nil && s.dialect.IsContention(err) {
		return fmt.Errorf("%w: %v", store.ErrConflict, err)
	}
	return err
}

// runTx runs fn in a transaction of its own.
func (s *DB) runTx(ctx context.Context, fn func(txn) error) error {
	return s.runTxOn(ctx, s.db, fn)
}

// beginner begins transactions: the pool (*sql.DB), or one of its connections (*sql.Conn).
type beginner interface {
	BeginTx(context.Context, *sql.TxOptions) (*sql.Tx, error)
}

// runTxOn runs fn in a transaction of its own on db.
func (s *DB) runTxOn(ctx context.Context, db beginner, fn func(txn) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := protect(fn, txn{s: s, ctx: ctx, on: tx}); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

func (s *DB) serializeCreates(tx txn) error {
	if s.dialect.SerializeCreates == "" {
		return nil
	}
	_, err := tx.exec(s.dialect.SerializeCreates)
	return err
}

func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

func nullMS(t *time.Time) sql.NullInt64 {
	if t == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMilli(), Valid: true}
}

func timePtr(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := fromMS(v.Int64)
	return &t
}

func limit(p store.Page) int {
	if p.Limit <= 0 {
		return 100
	}
	return p.Limit
}

// Pipelines.

func (s *DB) CreatePipeline(ctx context.Context, p store.Pipeline, resourceARN string, tags []store.Tag, maxPipelines int, first store.StepFunc) error {
	return s.tx(ctx, func(tx txn) error {
		if err := s.serializeCreates(tx); err != nil {
			return err
		}
		var exists, count int
		if err := tx.queryRow(`SELECT count(*) FROM pipelines WHERE name = ?`, p.Name).Scan(&exists); err != nil {
			return err
		}
		if exists > 0 {
			return store.ErrExists
		}
		if err := tx.queryRow(`SELECT count(*) FROM pipelines`).Scan(&count); err != nil {
			return err
		}
		if maxPipelines > 0 && count >= maxPipelines {
			return store.ErrLimitExceeded
		}
		tx.changedPipeline(p.Name)
		_, err := tx.exec(`INSERT INTO pipelines (name, version, generation, pipeline_type, execution_mode, declaration, created_ms, updated_ms, polling_disabled_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			p.Name, p.Version, p.Generation, p.PipelineType, p.ExecutionMode, string(p.Declaration), ms(p.Created), ms(p.Updated), nullMS(p.PollingDisabledAt))
		if s.dialect.IsUniqueViolation(err) {
			return store.ErrExists
		}
		if err != nil {
			return err
		}
		if err := s.insertVersion(tx, p); err != nil {
			return err
		}
		if err := s.putTags(tx, resourceARN, tags, 0); err != nil {
			return err
		}
		if first == nil {
			return nil
		}
		return s.step(tx, p.Name, first)
	})
}

func (s *DB) insertVersion(tx txn, p store.Pipeline) error {
	_, err := tx.exec(`INSERT INTO pipeline_versions (name, version, generation, pipeline_type, execution_mode, declaration, created_ms, updated_ms, polling_disabled_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		p.Name, p.Version, p.Generation, p.PipelineType, p.ExecutionMode, string(p.Declaration), ms(p.Created), ms(p.Updated), nullMS(p.PollingDisabledAt))
	return err
}

const pipelineColumns = `name, version, generation, pipeline_type, execution_mode, declaration, created_ms, updated_ms, polling_disabled_ms`

func scanPipeline(row scanner) (store.Pipeline, error) {
	var p store.Pipeline
	var decl string
	var created, updated int64
	var polling sql.NullInt64
	if err := row.Scan(&p.Name, &p.Version, &p.Generation, &p.PipelineType, &p.ExecutionMode, &decl, &created, &updated, &polling); err != nil {
		return p, err
	}
	p.Declaration = []byte(decl)
	p.Created, p.Updated, p.PollingDisabledAt = fromMS(created), fromMS(updated), timePtr(polling)
	return p, nil
}

func (s *DB) GetPipeline(ctx context.Context, name string, version int) (store.Pipeline, error) {
	if version == 0 {
		var epoch uint64
		if s.latest != nil {
			var cached store.Pipeline
			var ok bool
			if cached, ok, epoch = s.latest.get(name); ok {
				return cached, nil
			}
		}
		p, err := scanPipeline(s.queryRow(ctx, `SELECT `+pipelineColumns+` FROM pipelines WHERE name = ?`, name))
		if errors.Is(err, sql.ErrNoRows) {
			return p, store.ErrNotFound
		}
		if err == nil && s.latest != nil {
			s.latest.put(p, epoch)
		}
		return p, err
	}
	p, err := scanPipeline(s.queryRow(ctx, `SELECT `+pipelineColumns+` FROM pipeline_versions WHERE name = ? AND version = ?`, name, version))
	if errors.Is(err, sql.ErrNoRows) {
		if _, err := s.GetPipeline(ctx, name, 0); err != nil {
			return p, err
		}
		return p, store.ErrVersionNotFound
	}
	return p, err
}

func (s *DB) UpdatePipeline(ctx context.Context, p store.Pipeline) error {
	return s.tx(ctx, func(tx txn) error {
		tx.changedPipeline(p.Name)
		res, err := tx.exec(`UPDATE pipelines SET version = ?, pipeline_type = ?, execution_mode = ?, declaration = ?, updated_ms = ?, polling_disabled_ms = ? WHERE name = ? AND version = ?`,
			p.Version, p.PipelineType, p.ExecutionMode, string(p.Declaration), ms(p.Updated), nullMS(p.PollingDisabledAt), p.Name, p.Version-1)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			var exists int
			if err := tx.queryRow(`SELECT count(*) FROM pipelines WHERE name = ?`, p.Name).Scan(&exists); err != nil {
				return err
			}
			if exists == 0 {
				return store.ErrNotFound
			}
			return store.ErrConflict
		}
		return s.insertVersion(tx, p)
	})
}

func (s *DB) DeletePipeline(ctx context.Context, name, resourceARN string) error {
	return s.tx(ctx, func(tx txn) error {
		tx.changedPipeline(name)
		for _, stmt := range []string{
			`DELETE FROM pipelines WHERE name = ?`, `DELETE FROM pipeline_versions WHERE name = ?`,
			`DELETE FROM pipeline_runtime WHERE name = ?`, `DELETE FROM execution_states WHERE pipeline = ?`,
			`DELETE FROM executions WHERE pipeline = ?`,
			`DELETE FROM action_executions WHERE pipeline = ?`, `DELETE FROM rule_executions WHERE pipeline = ?`,
			`DELETE FROM jobs WHERE pipeline = ?`, `DELETE FROM events WHERE pipeline = ?`,
		} {
			if _, err := tx.exec(stmt, name); err != nil {
				return err
			}
		}
		_, err := tx.exec(`DELETE FROM tags WHERE resource_arn = ?`, resourceARN)
		return err
	})
}

func (s *DB) ListPipelines(ctx context.Context, page store.Page) ([]store.Pipeline, error) {
	return scanAll(scanPipelineSummary)(s.query(ctx, `SELECT name, version, generation, pipeline_type, execution_mode, created_ms, updated_ms FROM pipelines WHERE name > ? ORDER BY name LIMIT ?`, page.After, limit(page)))
}

func scanPipelineSummary(row scanner) (store.Pipeline, error) {
	var p store.Pipeline
	var created, updated int64
	err := row.Scan(&p.Name, &p.Version, &p.Generation, &p.PipelineType, &p.ExecutionMode, &created, &updated)
	p.Created, p.Updated = fromMS(created), fromMS(updated)
	return p, err
}

// Custom action types.

func (s *DB) CreateActionType(ctx context.Context, t store.ActionType, resourceARN string, tags []store.Tag, maxTypes int) error {
	return s.tx(ctx, func(tx txn) error {
		if err := s.serializeCreates(tx); err != nil {
			return err
		}
		var live int
		if err := tx.queryRow(`SELECT count(*) FROM action_types WHERE deleted = 0`).Scan(&live); err != nil {
			return err
		}
		if maxTypes > 0 && live >= maxTypes {
			return store.ErrLimitExceeded
		}
		var previous string
		var deleted int
		err := tx.queryRow(`SELECT declaration, deleted FROM action_types WHERE id = ?`, t.ID).Scan(&previous, &deleted)
		switch {
		case err == nil && deleted == 1 && previous == string(t.Declaration):
			_, err = tx.exec(`UPDATE action_types SET deleted = 0 WHERE id = ?`, t.ID)
		case err == nil:
			return store.ErrExists
		case errors.Is(err, sql.ErrNoRows):
			_, err = tx.exec(`INSERT INTO action_types (id, owner, declaration, created_ms, deleted) VALUES (?, ?, ?, ?, 0)`,
				t.ID, t.Owner, string(t.Declaration), ms(t.Created))
			if s.dialect.IsUniqueViolation(err) {
				return store.ErrExists
			}
		}
		if err != nil {
			return err
		}
		return s.putTags(tx, resourceARN, tags, 0)
	})
}

func scanActionType(row scanner) (store.ActionType, error) {
	var t store.ActionType
	var decl string
	var created int64
	err := row.Scan(&t.ID, &t.Owner, &decl, &created)
	t.Declaration, t.Created = []byte(decl), fromMS(created)
	return t, err
}

func (s *DB) GetActionType(ctx context.Context, id string) (store.ActionType, error) {
	t, err := scanActionType(s.queryRow(ctx, `SELECT id, owner, declaration, created_ms FROM action_types WHERE id = ? AND deleted = 0`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return t, store.ErrNotFound
	}
	return t, err
}

func (s *DB) UpdateActionType(ctx context.Context, t store.ActionType) error {
	return s.execOne(ctx, `UPDATE action_types SET declaration = ? WHERE id = ? AND deleted = 0`, string(t.Declaration), t.ID)
}

// execOne runs a statement that must change one row, and reports store.ErrNotFound if none was.
func (s *DB) execOne(ctx context.Context, query string, args ...any) error {
	return s.tx(ctx, func(tx txn) error {
		res, err := tx.exec(query, args...)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return store.ErrNotFound
		}
		return nil
	})
}

func (s *DB) DeleteActionType(ctx context.Context, id, resourceARN string) error {
	return s.tx(ctx, func(tx txn) error {
		if _, err := tx.exec(`UPDATE action_types SET deleted = 1 WHERE id = ?`, id); err != nil {
			return err
		}
		_, err := tx.exec(`DELETE FROM tags WHERE resource_arn = ?`, resourceARN)
		return err
	})
}

func (s *DB) ListActionTypes(ctx context.Context, owner string, page store.Page) ([]store.ActionType, error) {
	return scanAll(scanActionType)(s.query(ctx, `SELECT id, owner, declaration, created_ms FROM action_types WHERE deleted = 0 AND id > ? AND (? = '' OR owner = ?) ORDER BY id LIMIT ?`,
		page.After, owner, owner, limit(page)))
}

// Webhooks.

func (s *DB) PutWebhook(ctx context.Context, w store.Webhook, resourceARN string, tags []store.Tag, maxWebhooks, maxTags int) error {
	return s.tx(ctx, func(tx txn) error {
		if err := s.serializeCreates(tx); err != nil {
			return err
		}
		var exists, count int
		if err := tx.queryRow(`SELECT count(*) FROM webhooks WHERE name = ?`, w.Name).Scan(&exists); err != nil {
			return err
		}
		if exists == 0 {
			if err := tx.queryRow(`SELECT count(*) FROM webhooks`).Scan(&count); err != nil {
				return err
			}
			if maxWebhooks > 0 && count >= maxWebhooks {
				return store.ErrLimitExceeded
			}
			if _, err := tx.exec(`INSERT INTO webhooks (name, definition, url, registered) VALUES (?, ?, ?, 0)`, w.Name, string(w.Definition), w.URL); err != nil {
				return err
			}
		} else if _, err := tx.exec(`UPDATE webhooks SET definition = ?, url = ? WHERE name = ?`, string(w.Definition), w.URL, w.Name); err != nil {
			return err
		}
		return s.putTags(tx, resourceARN, tags, maxTags)
	})
}

const webhookColumns = `name, definition, url, registered, last_triggered_ms, error_message, error_code`

func scanWebhook(row scanner) (store.Webhook, error) {
	var w store.Webhook
	var def string
	var registered int
	var last sql.NullInt64
	var msg, code sql.NullString
	if err := row.Scan(&w.Name, &def, &w.URL, &registered, &last, &msg, &code); err != nil {
		return w, err
	}
	w.Definition, w.Registered, w.LastTriggered = []byte(def), registered != 0, timePtr(last)
	w.ErrorMessage, w.ErrorCode = msg.String, code.String
	return w, nil
}

func (s *DB) GetWebhook(ctx context.Context, name string) (store.Webhook, error) {
	w, err := scanWebhook(s.queryRow(ctx, `SELECT `+webhookColumns+` FROM webhooks WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return w, store.ErrNotFound
	}
	return w, err
}

func (s *DB) SetWebhookRegistered(ctx context.Context, name string, registered bool) error {
	flag := 0
	if registered {
		flag = 1
	}
	return s.execOne(ctx, `UPDATE webhooks SET registered = ? WHERE name = ?`, flag, name)
}

func (s *DB) SetWebhookTriggered(ctx context.Context, name string, at time.Time) error {
	return s.execOne(ctx, `UPDATE webhooks SET last_triggered_ms = ? WHERE name = ?`, ms(at), name)
}

func (s *DB) DeleteWebhook(ctx context.Context, name, resourceARN string) error {
	return s.tx(ctx, func(tx txn) error {
		if _, err := tx.exec(`DELETE FROM webhooks WHERE name = ?`, name); err != nil {
			return err
		}
		_, err := tx.exec(`DELETE FROM tags WHERE resource_arn = ?`, resourceARN)
		return err
	})
}

func (s *DB) ListWebhooks(ctx context.Context, page store.Page) ([]store.Webhook, error) {
	return scanAll(scanWebhook)(s.query(ctx, `SELECT `+webhookColumns+` FROM webhooks WHERE name > ? ORDER BY name LIMIT ?`, page.After, limit(page)))
}

// Tags.

func (s *DB) ListTags(ctx context.Context, resourceARN string, page store.Page) ([]store.Tag, error) {
	return scanAll(func(row scanner) (store.Tag, error) {
		var t store.Tag
		err := row.Scan(&t.Key, &t.Value)
		return t, err
	})(s.query(ctx, `SELECT tag_key, tag_value FROM tags WHERE resource_arn = ? AND tag_key > ? ORDER BY tag_key LIMIT ?`, resourceARN, page.After, limit(page)))
}

func (s *DB) TagResource(ctx context.Context, resourceARN string, tags []store.Tag, maxTags int) error {
	return s.tx(ctx, func(tx txn) error {
		return s.putTags(tx, resourceARN, tags, maxTags)
	})
}

// putTags adds or replaces tags on a resource; with maxTags > 0 it fails with ErrTooManyTags when
// the resource would end up with more.
func (s *DB) putTags(tx txn, resourceARN string, tags []store.Tag, maxTags int) error {
	for _, t := range tags {
		if _, err := tx.exec(`INSERT INTO tags (resource_arn, tag_key, tag_value) VALUES (?, ?, ?) ON CONFLICT (resource_arn, tag_key) DO UPDATE SET tag_value = excluded.tag_value`,
			resourceARN, t.Key, t.Value); err != nil {
			return err
		}
	}
	if maxTags <= 0 || len(tags) == 0 {
		return nil
	}
	var n int
	if err := tx.queryRow(`SELECT count(*) FROM tags WHERE resource_arn = ?`, resourceARN).Scan(&n); err != nil {
		return err
	}
	if n > maxTags {
		return store.ErrTooManyTags
	}
	return nil
}

func (s *DB) UntagResource(ctx context.Context, resourceARN string, keys []string) error {
	return s.tx(ctx, func(tx txn) error {
		for _, k := range keys {
			if _, err := tx.exec(`DELETE FROM tags WHERE resource_arn = ? AND tag_key = ?`, resourceARN, k); err != nil {
				return err
			}
		}
		return nil
	})
}

// Readiness.

func (s *DB) Ready(ctx context.Context) error {
	probe := make([]byte, 8)
	if _, err := rand.Read(probe); err != nil {
		return err
	}
	// A row added and removed in one transaction: the commit writes and syncs pages as any other
	// does, and leaves the table as it was.
	name := "readiness-probe-" + hex.EncodeToString(probe)
	done := make(chan error, 1)
	// A write queued for a single writer runs to its end even if ctx ends first (see committer):
	// Ready does not wait for it then.
	go func() {
		done <- s.tx(ctx, func(tx txn) error {
			if _, err := tx.exec(`INSERT INTO secrets (name, value) VALUES (?, '')`, name); err != nil {
				return err
			}
			_, err := tx.exec(`DELETE FROM secrets WHERE name = ?`, name)
			return err
		})
	}()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("write to the %s store: %w", s.dialect.Name, err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("a write to the %s store did not commit in time: %w", s.dialect.Name, context.Cause(ctx))
	}
}

// Secrets.

func (s *DB) Claim(ctx context.Context, account string) error {
	var owner string
	err := s.tx(ctx, func(tx txn) error {
		if _, err := tx.exec(`INSERT INTO store_account (singleton, id) VALUES (1, ?) ON CONFLICT (singleton) DO NOTHING`, account); err != nil {
			return err
		}
		return tx.queryRow(`SELECT id FROM store_account WHERE singleton = 1`).Scan(&owner)
	})
	if err != nil {
		return fmt.Errorf("claim the store for account %s: %w", account, err)
	}
	if owner != account {
		return fmt.Errorf("%w: it holds the records of account %s, not %s", store.ErrOtherAccount, owner, account)
	}
	return nil
}

func (s *DB) Secret(ctx context.Context, name string) ([]byte, error) {
	fresh := make([]byte, 32)
	if _, err := rand.Read(fresh); err != nil {
		return nil, err
	}
	var value string
	err := s.tx(ctx, func(tx txn) error {
		if _, err := tx.exec(`INSERT INTO secrets (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`, name, hex.EncodeToString(fresh)); err != nil {
			return err
		}
		return tx.queryRow(`SELECT value FROM secrets WHERE name = ?`, name).Scan(&value)
	})
	if err != nil {
		return nil, err
	}
	return hex.DecodeString(value)
}
