package sqlstore

import (
	"context"
	"database/sql"
)

// Statements are prepared once per connection and kept, unless the driver does so itself:
// parsing SQL costs more than running most of these statements. Caches are keyed by the query's
// text, of which the code has a fixed set.

// prepared returns query prepared on the pool, for reads.
func (s *DB) prepared(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := s.stmts.Load(query); ok {
		return st.(*sql.Stmt), nil
	}
	st, err := s.db.PrepareContext(ctx, s.q(query))
	if err != nil {
		return nil, err
	}
	if prev, loaded := s.stmts.LoadOrStore(query, st); loaded {
		st.Close()
		return prev.(*sql.Stmt), nil
	}
	return st, nil
}

// txn is a transaction in progress: where its statements run, and the context they run in.
type txn struct {
	s   *DB
	ctx context.Context
	on  interface {
		ExecContext(context.Context, string, ...any) (sql.Result, error)
		QueryContext(context.Context, string, ...any) (*sql.Rows, error)
		QueryRowContext(context.Context, string, ...any) *sql.Row
	}
	// prepared, if set, gives statements prepared once on the transaction's connection; without
	// it statements go as text.
	prepared func(ctx context.Context, query string) (*sql.Stmt, error)
	// committed, if set, collects what to do once the transaction is committed.
	committed *[]func()
}

// changedPipeline records that the transaction changes a pipeline, whose cached latest version
// must go once it is committed.
func (t txn) changedPipeline(name string) {
	if t.s.latest != nil && t.committed != nil {
		*t.committed = append(*t.committed, func() { t.s.latest.drop(name) })
	}
}

func (t txn) exec(query string, args ...any) (sql.Result, error) {
	if t.prepared == nil {
		return t.on.ExecContext(t.ctx, t.s.q(query), args...)
	}
	st, err := t.prepared(t.ctx, query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(t.ctx, args...)
}

func (t txn) query(query string, args ...any) (*sql.Rows, error) {
	if t.prepared == nil {
		return t.on.QueryContext(t.ctx, t.s.q(query), args...)
	}
	st, err := t.prepared(t.ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(t.ctx, args...)
}

func (t txn) queryRow(query string, args ...any) scanner {
	if t.prepared == nil {
		return t.on.QueryRowContext(t.ctx, t.s.q(query), args...)
	}
	st, err := t.prepared(t.ctx, query)
	if err != nil {
		return errRow{err}
	}
	return st.QueryRowContext(t.ctx, args...)
}

// query runs a read on the pool.
func (s *DB) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if s.dialect.DriverPreparesStatements {
		return s.db.QueryContext(ctx, s.q(query), args...)
	}
	st, err := s.prepared(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// queryRow runs a read of one row on the pool.
func (s *DB) queryRow(ctx context.Context, query string, args ...any) scanner {
	if s.dialect.DriverPreparesStatements {
		return s.db.QueryRowContext(ctx, s.q(query), args...)
	}
	st, err := s.prepared(ctx, query)
	if err != nil {
		return errRow{err}
	}
	return st.QueryRowContext(ctx, args...)
}

// scanner is a row to read: *sql.Row, *sql.Rows, or a statement that failed to prepare.
type scanner interface{ Scan(...any) error }

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// scanAll returns a function that reads every row a query returns with scan, as in
// scanAll(scanJob)(s.query(ctx, …)).
func scanAll[T any](scan func(scanner) (T, error)) func(*sql.Rows, error) ([]T, error) {
	return func(rows *sql.Rows, err error) ([]T, error) {
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		var out []T
		for rows.Next() {
			v, err := scan(rows)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, rows.Err()
	}
}
