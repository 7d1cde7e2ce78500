package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime/debug"
)

// maxBatch bounds how many write transactions share one commit.
const maxBatch = 256

// committer runs the write transactions of a database that allows one writer at a time (SQLite)
// on a single connection, and commits those that arrive together as one transaction: each runs
// inside a savepoint of its own, so that one failing undoes only its own work, and none is
// answered before the commit that holds it is durable. One sync to disk then serves a whole
// batch, where each transaction would otherwise pay its own, and writers queue in Go instead of
// polling the database's lock.
type committer struct {
	s        *DB
	conn     *sql.Conn
	requests chan *writeRequest
	// closing stops the loop, which closes stopped on its way out.
	closing, stopped chan struct{}
	// stmts are the statements prepared on conn, by query text; only loop uses them.
	stmts map[string]*sql.Stmt
}

type writeRequest struct {
	ctx  context.Context
	fn   func(txn) error
	done chan error
}

func newCommitter(s *DB, conn *sql.Conn) *committer {
	c := &committer{s: s, conn: conn, requests: make(chan *writeRequest), closing: make(chan struct{}), stopped: make(chan struct{}), stmts: map[string]*sql.Stmt{}}
	go c.loop()
	return c
}

// do runs fn in the next batch and returns fn's error, or the batch's if it failed to commit.
func (c *committer) do(ctx context.Context, fn func(txn) error) error {
	r := &writeRequest{ctx: ctx, fn: fn, done: make(chan error, 1)}
	select {
	case c.requests <- r:
	case <-ctx.Done():
		return ctx.Err()
	case <-c.closing:
		return errors.New("store closed")
	}
	// Once queued, the outcome is waited for whatever ctx does: a request whose ctx ended before
	// its turn is skipped, and one under way runs to its end, since interrupting a statement
	// would undo the whole batch.
	return <-r.done
}

func (c *committer) close() {
	close(c.closing)
	<-c.stopped
	for _, st := range c.stmts {
		st.Close()
	}
	c.conn.Close()
}

func (c *committer) prepared(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := c.stmts[query]; ok {
		return st, nil
	}
	st, err := c.conn.PrepareContext(ctx, c.s.q(query))
	if err != nil {
		return nil, err
	}
	c.stmts[query] = st
	return st, nil
}

func (c *committer) loop() {
	defer close(c.stopped)
	for {
		var batch []*writeRequest
		select {
		case first := <-c.requests:
			batch = append(batch, first)
		case <-c.closing:
			return
		}
	gather:
		for len(batch) < maxBatch {
			select {
			case r := <-c.requests:
				batch = append(batch, r)
			default:
				break gather
			}
		}
		c.commit(batch)
	}
}

// commit runs a batch in one transaction and answers each request.
func (c *committer) commit(batch []*writeRequest) {
	results := make([]error, len(batch))
	err := c.run(batch, results)
	for i, r := range batch {
		if err != nil && results[i] == nil {
			results[i] = err
		}
		r.done <- results[i]
	}
}

// run fills results with each request's own error and returns the error that failed the
// whole batch, if any. The transaction is the connection's own (BEGIN … COMMIT), not a
// database/sql one, so that statements prepared on the connection serve every batch.
func (c *committer) run(batch []*writeRequest, results []error) error {
	ctx := context.Background()
	if _, err := c.conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return err
	}
	// after holds what the batch's transactions asked to do once committed.
	var after []func()
	abort := func(err error) error {
		// After some errors SQLite has rolled back already, and ROLLBACK fails: no matter.
		_, _ = c.conn.ExecContext(ctx, "ROLLBACK")
		return err
	}
	for i, r := range batch {
		if err := r.ctx.Err(); err != nil {
			results[i] = err
			continue
		}
		if _, err := c.conn.ExecContext(ctx, "SAVEPOINT w"); err != nil {
			return abort(err)
		}
		var committed []func()
		tx := txn{s: c.s, ctx: context.WithoutCancel(r.ctx), on: c.conn, prepared: c.prepared, committed: &committed}
		if results[i] = protect(r.fn, tx); results[i] != nil {
			if _, err := c.conn.ExecContext(ctx, "ROLLBACK TO w"); err != nil {
				// SQLite rolled the whole transaction back itself (an I/O error, say).
				return abort(fmt.Errorf("%w (after %v)", err, results[i]))
			}
		}
		if _, err := c.conn.ExecContext(ctx, "RELEASE w"); err != nil {
			return abort(err)
		}
		if results[i] == nil {
			after = append(after, committed...)
		}
	}
	if _, err := c.conn.ExecContext(ctx, "COMMIT"); err != nil {
		return abort(err)
	}
	for _, fn := range after {
		fn()
	}
	return nil
}

// protect runs fn, turning a panic into its error, so that the transaction is rolled back and,
// on the committer that serves every writer, one request's bug fails that request alone.
func protect(fn func(txn) error, tx txn) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("write transaction panicked: %v\n%s", p, debug.Stack())
		}
	}()
	return fn(tx)
}
