package logs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
)

// Postgres keeps logs in the PostgreSQL schema of its connections (their search_path), which
// every replica of a server shares. A writer sends what it is given in chunks, one row each, as
// it is produced: at the latest FlushInterval after it was written, at once when FlushSize bytes
// wait, and on Close, which marks the log complete. A row per log (action_logs) says whether it
// is complete; its chunks (action_log_chunks) are ordered by (id, pos), pos being the byte
// offset of the chunk's first byte in the log, so a log is read from any offset by an index
// range scan, and a chunk that overlaps another one is refused by the primary key.
type Postgres struct {
	db    *sql.DB
	owned bool
	opts  PostgresOptions
}

// PostgresOptions tunes a Postgres backend; the zero value is the default.
type PostgresOptions struct {
	// FlushInterval is how long at most written bytes wait in a writer before they are sent to
	// the database: 200 ms if zero.
	FlushInterval time.Duration
	// FlushSize is how many waiting bytes make a writer send them at once: 64 KiB if zero.
	FlushSize int
	// Flushed, if set, is called once a writer's flush is committed and once its log is complete:
	// the hook of a notifier that wakes followers (see Store.Wait). It runs in the writer, which
	// waits for it: it must not block.
	Flushed func(id string)
}

const (
	// maxChunk bounds the size of a chunk: a larger flush (one large Write) makes several.
	maxChunk = 256 << 10
	// maxPending is how much a writer keeps while the database refuses its flushes before its
	// writes fail.
	maxPending = 16 << 20
	// readBatch is how many chunks a reader reads at a time, keeping no connection while it
	// writes them out.
	readBatch = 16
	// dbTimeout bounds each statement of a writer, which has no context of its own.
	dbTimeout = 15 * time.Second
	// schemaLockKey identifies, among the database's advisory locks, the one that serializes the
	// creation of the log tables by replicas that start together.
	schemaLockKey = 0x51_17_1c_e1
)

// schema creates the log tables if they do not exist.
const schema = `
CREATE TABLE IF NOT EXISTS action_logs (
	id         text PRIMARY KEY,
	complete   boolean NOT NULL DEFAULT false,
	updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS action_log_chunks (
	id   text NOT NULL,
	pos  bigint NOT NULL,
	data bytea NOT NULL,
	PRIMARY KEY (id, pos)
);`

// OpenPostgres returns the store of the logs kept in the PostgreSQL database at url
// (postgres://…), in the schema its search_path names, creating the tables it needs. Closing
// the store closes its connections.
func OpenPostgres(ctx context.Context, url string, opts PostgresOptions) (*Store, error) {
	db, err := sql.Open("pgx", url)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	// Writers hold a connection for a statement at a time, and readers for a query at a time.
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(2)
	db.SetConnMaxIdleTime(time.Minute)
	b, err := NewPostgres(ctx, db, opts)
	if err != nil {
		db.Close()
		return nil, err
	}
	b.owned = true
	return New(b), nil
}

// NewPostgres returns the backend of the logs kept in db's schema, creating the tables it needs.
// Its Close leaves db open.
func NewPostgres(ctx context.Context, db *sql.DB, opts PostgresOptions) (*Postgres, error) {
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = 200 * time.Millisecond
	}
	if opts.FlushSize <= 0 {
		opts.FlushSize = 64 << 10
	}
	if err := createTables(ctx, db); err != nil {
		return nil, err
	}
	return &Postgres{db: db, opts: opts}, nil
}

// createTables creates the log tables, one replica at a time: CREATE TABLE IF NOT EXISTS run by
// two at once may fail on the catalog's unique index.
func createTables(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("create the log tables: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", int64(schemaLockKey)); err != nil {
		return fmt.Errorf("create the log tables: %w", err)
	}
	if _, err := tx.ExecContext(ctx, schema); err != nil {
		return fmt.Errorf("create the log tables: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("create the log tables: %w", err)
	}
	return nil
}

// Close closes the connections if the backend opened them.
func (b *Postgres) Close() error {
	if b.owned {
		return b.db.Close()
	}
	return nil
}

// Create starts the log of id, or continues it after its last chunk, and marks it incomplete.
func (b *Postgres) Create(id string) (io.WriteCloser, error) {
	ctx, cancel := context.WithTimeout(context.Background(), dbTimeout)
	defer cancel()
	if _, err := b.db.ExecContext(ctx, `INSERT INTO action_logs (id) VALUES ($1)
		ON CONFLICT (id) DO UPDATE SET complete = false, updated_at = now()`, id); err != nil {
		return nil, fmt.Errorf("create the log of %s: %w", id, err)
	}
	pos, err := b.length(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("create the log of %s: %w", id, err)
	}
	return &pgWriter{b: b, id: id, pos: pos}, nil
}

// length returns how many bytes the log of id holds.
func (b *Postgres) length(ctx context.Context, id string) (int64, error) {
	var n int64
	err := b.db.QueryRowContext(ctx, `SELECT pos + octet_length(data) FROM action_log_chunks
		WHERE id = $1 ORDER BY pos DESC LIMIT 1`, id).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return n, err
}

// Complete reports whether the log of id has ended.
func (b *Postgres) Complete(ctx context.Context, id string) (bool, error) {
	var complete bool
	err := b.db.QueryRowContext(ctx, "SELECT complete FROM action_logs WHERE id = $1", id).Scan(&complete)
	if errors.Is(err, sql.ErrNoRows) {
		return false, ErrNotFound
	}
	if err != nil {
		return false, fmt.Errorf("read the log of %s: %w", id, err)
	}
	return complete, nil
}

// readChunks selects the chunks of a log from a byte offset on: the one the offset falls in (the
// last one that starts at or before it, if it ends after it), and those after it.
const readChunks = `SELECT pos, data FROM action_log_chunks
	WHERE id = $1
		AND pos >= (SELECT coalesce(max(pos), 0) FROM action_log_chunks WHERE id = $1 AND pos <= $2)
		AND pos + octet_length(data) > $2
	ORDER BY pos LIMIT $3`

type chunk struct {
	pos  int64
	data []byte
}

// Copy writes the log of id from offset to w, a batch of chunks at a time.
func (b *Postgres) Copy(ctx context.Context, w io.Writer, id string, offset int64) (int64, error) {
	var written int64
	for {
		chunks, err := b.chunks(ctx, id, offset)
		if err != nil {
			return written, fmt.Errorf("read the log of %s: %w", id, err)
		}
		for _, c := range chunks {
			n, err := w.Write(c.data[max(offset-c.pos, 0):])
			written += int64(n)
			offset += int64(n)
			if err != nil {
				return written, err
			}
		}
		if len(chunks) < readBatch {
			return written, nil
		}
	}
}

func (b *Postgres) chunks(ctx context.Context, id string, offset int64) ([]chunk, error) {
	rows, err := b.db.QueryContext(ctx, readChunks, id, offset, readBatch)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var chunks []chunk
	for rows.Next() {
		var c chunk
		if err := rows.Scan(&c.pos, &c.data); err != nil {
			return nil, err
		}
		chunks = append(chunks, c)
	}
	return chunks, rows.Err()
}

// pgWriter appends to the log of one action execution, buffering what it is given. A flush
// holds the writer: writes wait for the database when it is slow, which slows the run's output
// rather than keep it all in memory.
type pgWriter struct {
	b  *Postgres
	id string

	mu sync.Mutex
	// buf waits to be flushed; pos is where it goes: how long the log is in the database.
	buf []byte
	pos int64
	// timer flushes buf FlushInterval after it stopped being empty.
	timer  *time.Timer
	closed bool
	// After a failed flush, the next waits until retryAt, later after each failure.
	err      error
	failures int
	retryAt  time.Time
}

func (w *pgWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return 0, os.ErrClosed
	}
	if len(w.buf) > 0 && len(w.buf)+len(p) > maxPending {
		// The database has refused the flushes for a while: fail unless it takes them now.
		if err := w.flush(false); err != nil {
			return 0, err
		}
	}
	w.buf = append(w.buf, p...)
	if len(w.buf) >= w.b.opts.FlushSize {
		// A failed flush keeps buf, which the timer flushes again.
		_ = w.flush(false)
	}
	w.arm()
	return len(p), nil
}

// arm starts the timer if bytes wait and it is not running.
func (w *pgWriter) arm() {
	if w.timer != nil || len(w.buf) == 0 || w.closed {
		return
	}
	wait := w.b.opts.FlushInterval
	if until := time.Until(w.retryAt); until > wait {
		wait = until
	}
	w.timer = time.AfterFunc(wait, w.tick)
}

func (w *pgWriter) tick() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.timer = nil
	if w.closed {
		return
	}
	_ = w.flush(false)
	w.arm()
}

// flush sends buf to the database, in chunks of maxChunk at most; what could not be sent stays
// in buf. Unless forced, it does not try again before retryAt after a failure.
func (w *pgWriter) flush(force bool) error {
	if len(w.buf) == 0 {
		return nil
	}
	if !force && w.err != nil && time.Now().Before(w.retryAt) {
		return w.err
	}
	ctx, cancel := context.WithTimeout(context.Background(), dbTimeout)
	defer cancel()
	rest := w.buf
	var err error
	for len(rest) > 0 {
		n := min(len(rest), maxChunk)
		if err = w.insert(ctx, rest[:n]); err != nil {
			break
		}
		rest = rest[n:]
	}
	sent := len(rest) < len(w.buf)
	if len(rest) == 0 && cap(w.buf) > 4*w.b.opts.FlushSize {
		w.buf = nil // a large write: do not keep its buffer
	} else {
		w.buf = append(w.buf[:0], rest...)
	}
	w.err = err
	if err != nil {
		w.failures++
		w.retryAt = time.Now().Add(min(w.b.opts.FlushInterval<<min(w.failures, 5), 5*time.Second))
	} else {
		w.failures = 0
	}
	if sent && w.b.opts.Flushed != nil {
		w.b.opts.Flushed(w.id)
	}
	return err
}

// insert appends a chunk to the log. If another writer appended to it meanwhile (a run taken up
// again on another replica while this one still wrote), the chunk goes after what it wrote.
func (w *pgWriter) insert(ctx context.Context, data []byte) error {
	for attempt := 0; ; attempt++ {
		_, err := w.b.db.ExecContext(ctx, "INSERT INTO action_log_chunks (id, pos, data) VALUES ($1, $2, $3)", w.id, w.pos, data)
		if err == nil {
			w.pos += int64(len(data))
			return nil
		}
		if !isUniqueViolation(err) || attempt == 10 {
			return fmt.Errorf("write the log of %s: %w", w.id, err)
		}
		if w.pos, err = w.b.length(ctx, w.id); err != nil {
			return fmt.Errorf("write the log of %s: %w", w.id, err)
		}
	}
}

func isUniqueViolation(err error) bool {
	var e *pgconn.PgError
	return errors.As(err, &e) && e.Code == "23505"
}

// Close flushes what waits and marks the log complete.
// Flush writes out what the writer holds now, not at the next interval: for the lines that say
// how a run is going, which a crash of the server a moment later must not take with it.
func (w *pgWriter) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	return w.flush(true)
}

func (w *pgWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	if w.timer != nil {
		w.timer.Stop()
		w.timer = nil
	}
	err := w.flush(true)
	for attempt := 0; err != nil && attempt < 3; attempt++ {
		// The end of a log says how the run ended: worth waiting a little for the database.
		time.Sleep(time.Second)
		err = w.flush(true)
	}
	ctx, cancel := context.WithTimeout(context.Background(), dbTimeout)
	defer cancel()
	// The log ends even without what could not be written, lest its followers wait forever.
	if _, cerr := w.b.db.ExecContext(ctx, "UPDATE action_logs SET complete = true, updated_at = now() WHERE id = $1", w.id); cerr != nil {
		err = errors.Join(err, fmt.Errorf("end the log of %s: %w", w.id, cerr))
	} else if w.b.opts.Flushed != nil {
		w.b.opts.Flushed(w.id)
	}
	w.buf = nil
	return err
}
