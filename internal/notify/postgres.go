package notify

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
)

// PostgresOptions tunes a Postgres notifier; the zero value is fine.
type PostgresOptions struct {
	// DB sends notifications (SELECT pg_notify): a pool on the same database, such as the
	// store's. If nil, the notifier opens a small one of its own, closed by Close.
	DB *sql.DB
	// Buffer is how many messages a listener's channel holds (DefaultBuffer if 0).
	Buffer int
	// Logger logs the listening connection's losses and recoveries (none if nil).
	Logger *slog.Logger
	// PingInterval is how long the listening connection may stay silent before it is checked
	// (15s if 0): a connection lost without a word from the network is found that soon.
	PingInterval time.Duration
	// Timeout bounds connecting, LISTEN and UNLISTEN, and pings (10s if 0).
	Timeout time.Duration
	// MinBackoff and MaxBackoff bound the wait between attempts to connect again (100ms and
	// 10s if 0): it doubles from MinBackoff at each failed attempt, with jitter.
	MinBackoff, MaxBackoff time.Duration
}

// Postgres is a Notifier between every process on a PostgreSQL database, over LISTEN/NOTIFY.
// It holds one connection of its own, listening on the channels of the topics that have
// listeners; when that connection is lost it connects again, with backoff, and then sends
// Resync to every listener. One Postgres serves all of a server's tenants: give each its own
// Scoped view, since channels are shared by the whole database, whatever the schema.
//
// A topic's channel is the topic itself when that is a valid channel name of at most 63 bytes,
// else "#" and a hash of the topic.
type Postgres struct {
	cfg    *pgx.ConnConfig
	db     *sql.DB
	ownDB  bool
	opts   PostgresOptions
	logger *slog.Logger

	// hub.mu guards the hub (whose keys are channel names) and the fields below.
	hub hub
	// dirty is set when a topic gained its first listener or lost its last, for the listening
	// loop to LISTEN or UNLISTEN; waitCancel interrupts its wait for notifications.
	dirty      bool
	waitCancel context.CancelFunc
	// listening holds the channels the listening connection LISTENs on; pid is its backend
	// process id (0 when not connected); pings counts the checks of a silent connection.
	listening map[string]bool
	pid       uint32
	pings     int

	cancel context.CancelFunc
	done   chan struct{}
	close  sync.Once
}

var _ Notifier = (*Postgres)(nil)

// NewPostgres connects to the database at url and starts listening; ctx bounds the first
// connection, which fails fast on a wrong URL. Close stops it.
func NewPostgres(ctx context.Context, url string, opts PostgresOptions) (*Postgres, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("notify: database URL: %w", err)
	}
	opts.Buffer = cmpOr(opts.Buffer, DefaultBuffer)
	opts.PingInterval = cmpOr(opts.PingInterval, 15*time.Second)
	opts.Timeout = cmpOr(opts.Timeout, 10*time.Second)
	opts.MinBackoff = cmpOr(opts.MinBackoff, 100*time.Millisecond)
	opts.MaxBackoff = max(cmpOr(opts.MaxBackoff, 10*time.Second), opts.MinBackoff)
	p := &Postgres{cfg: cfg, db: opts.DB, opts: opts, logger: opts.Logger, hub: hub{buffer: opts.Buffer}, done: make(chan struct{})}
	if p.logger == nil {
		p.logger = slog.New(slog.DiscardHandler)
	}
	conn, err := p.connect(ctx)
	if err != nil {
		return nil, err
	}
	if p.db == nil {
		db, err := sql.Open("pgx", url)
		if err != nil {
			conn.Close(context.Background())
			return nil, fmt.Errorf("notify: open postgres: %w", err)
		}
		db.SetMaxOpenConns(4)
		db.SetMaxIdleConns(2)
		p.db, p.ownDB = db, true
	}
	runCtx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	go p.run(runCtx, conn)
	return p, nil
}

func cmpOr[T comparable](v, fallback T) T {
	var zero T
	if v == zero {
		return fallback
	}
	return v
}

// Notify sends payload to the listeners of topic in every process on the database, itself
// included, through a notification of its own, committed at once.
func (p *Postgres) Notify(ctx context.Context, topic, payload string) error {
	if err := checkPayload(topic, payload); err != nil {
		return err
	}
	p.hub.mu.Lock()
	closed := p.hub.closed
	p.hub.mu.Unlock()
	if closed {
		return ErrClosed
	}
	if _, err := p.db.ExecContext(ctx, "SELECT pg_notify($1, $2)", channelName(topic), payload); err != nil {
		return fmt.Errorf("notify %q: %w", topic, err)
	}
	return nil
}

// Listen listens to topic. Its first message, Resync, comes once the listening connection
// LISTENs on the topic's channel: at once if the topic already had listeners.
func (p *Postgres) Listen(topic string) (<-chan string, func()) {
	channel := channelName(topic)
	p.hub.mu.Lock()
	defer p.hub.mu.Unlock()
	l, isNew := p.hub.add(channel)
	if isNew {
		p.changed()
	}
	var once sync.Once
	return l.ch, func() {
		once.Do(func() {
			p.hub.mu.Lock()
			defer p.hub.mu.Unlock()
			if p.hub.remove(channel, l) {
				p.changed()
			}
		})
	}
}

// changed tells the listening loop to LISTEN or UNLISTEN; p.hub.mu is held.
func (p *Postgres) changed() {
	p.dirty = true
	if p.waitCancel != nil {
		p.waitCancel()
	}
}

// Close stops listening and waits until the listening loop has ended; listeners receive nothing
// more, and Notify fails with ErrClosed.
func (p *Postgres) Close() error {
	p.close.Do(func() {
		p.hub.mu.Lock()
		p.hub.close()
		p.hub.mu.Unlock()
		p.cancel()
		<-p.done
		if p.ownDB {
			p.db.Close()
		}
	})
	return nil
}

// connect opens the listening connection.
func (p *Postgres) connect(ctx context.Context) (*pgx.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, p.opts.Timeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, p.cfg)
	if err != nil {
		return nil, fmt.Errorf("notify: connect to postgres: %w", err)
	}
	return conn, nil
}

// run keeps a listening connection until ctx ends, starting with conn.
func (p *Postgres) run(ctx context.Context, conn *pgx.Conn) {
	defer close(p.done)
	// failures counts the attempts to connect that failed since the last healthy connection.
	failures := 0
	for {
		if conn == nil {
			c, err := p.connect(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				wait := p.backoff(failures)
				failures++
				p.logger.Warn("notify: cannot connect to listen; will try again", "err", err, "failures", failures, "in", wait)
				if !sleep(ctx, wait) {
					return
				}
				continue
			}
			conn = c
			p.logger.Info("notify: connected again to listen")
		}
		healthy, err := p.session(ctx, conn)
		conn = nil
		p.hub.mu.Lock()
		p.pid, p.listening = 0, nil
		for _, t := range p.hub.topics {
			t.live = false
		}
		p.hub.mu.Unlock()
		if ctx.Err() != nil {
			return
		}
		if healthy {
			failures = 0
		}
		wait := p.backoff(failures)
		failures++
		p.logger.Warn("notify: lost the listening connection; listeners resync once it is back", "err", err, "in", wait)
		if !sleep(ctx, wait) {
			return
		}
	}
}

// session listens on conn until it fails or ctx ends, and closes it. It reports whether it got
// as far as listening on every channel it had to.
func (p *Postgres) session(ctx context.Context, conn *pgx.Conn) (healthy bool, err error) {
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		conn.Close(closeCtx)
	}()
	p.hub.mu.Lock()
	p.pid = conn.PgConn().PID()
	p.listening = map[string]bool{}
	p.hub.mu.Unlock()
	for {
		if err := p.reconcile(ctx, conn); err != nil {
			return healthy, err
		}
		waitCtx, cancel := context.WithTimeout(ctx, p.opts.PingInterval)
		p.hub.mu.Lock()
		if p.dirty {
			p.hub.mu.Unlock()
			cancel()
			continue
		}
		healthy = true
		p.waitCancel = cancel
		p.hub.mu.Unlock()

		n, err := conn.WaitForNotification(waitCtx)

		p.hub.mu.Lock()
		p.waitCancel = nil
		if n != nil {
			p.hub.deliver(n.Channel, n.Payload)
		}
		p.hub.mu.Unlock()
		waitErr := waitCtx.Err()
		cancel()
		switch {
		case err == nil:
		case ctx.Err() != nil:
			return healthy, ctx.Err()
		case conn.IsClosed() || waitErr == nil:
			return healthy, err
		case errors.Is(waitErr, context.DeadlineExceeded):
			// Silent for a while: check the connection is still there.
			pingCtx, cancel := context.WithTimeout(ctx, p.opts.Timeout)
			err := conn.Ping(pingCtx)
			cancel()
			if err != nil {
				return healthy, fmt.Errorf("ping: %w", err)
			}
			p.hub.mu.Lock()
			p.pings++
			p.hub.mu.Unlock()
		default:
			// Interrupted by changed: LISTEN or UNLISTEN before waiting again.
		}
	}
}

// reconcile LISTENs on the channels with listeners not yet listened to on conn, and UNLISTENs
// those that have none left. Listeners of a channel newly listened on receive Resync.
func (p *Postgres) reconcile(ctx context.Context, conn *pgx.Conn) error {
	p.hub.mu.Lock()
	p.dirty = false
	var stmts, listen, unlisten []string
	for channel := range p.listening {
		if p.hub.topics[channel] == nil {
			stmts = append(stmts, "UNLISTEN "+pgx.Identifier{channel}.Sanitize())
			unlisten = append(unlisten, channel)
		}
	}
	for channel, t := range p.hub.topics {
		if !t.live {
			// Even if conn listens on it already (its topic was left and taken again):
			// LISTEN costs nothing then.
			stmts = append(stmts, "LISTEN "+pgx.Identifier{channel}.Sanitize())
			listen = append(listen, channel)
		}
	}
	p.hub.mu.Unlock()
	if len(stmts) == 0 {
		return nil
	}
	execCtx, cancel := context.WithTimeout(ctx, p.opts.Timeout)
	defer cancel()
	// One round trip: without arguments, Exec runs the statements as one simple query.
	if _, err := conn.Exec(execCtx, strings.Join(stmts, "; ")); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	p.hub.mu.Lock()
	defer p.hub.mu.Unlock()
	for _, channel := range unlisten {
		delete(p.listening, channel)
	}
	for _, channel := range listen {
		p.listening[channel] = true
		// A topic that lost its listeners since is UNLISTENed on the next round, dirty
		// being set; one that got new ones (a new topic) is listened to now.
		if t := p.hub.topics[channel]; t != nil {
			p.hub.setLive(t)
		}
	}
	return nil
}

// backoff is how long to wait before connection attempt number attempt (from 0): doubling from
// MinBackoff up to MaxBackoff, with its upper half random so that replicas spread out.
func (p *Postgres) backoff(attempt int) time.Duration {
	d := p.opts.MaxBackoff
	if attempt < 30 {
		d = min(p.opts.MinBackoff<<attempt, p.opts.MaxBackoff)
	}
	return d/2 + rand.N(d/2+1)
}

// sleep waits for d or until ctx ends, and reports whether ctx is still alive.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// maxChannel is the length limit of a PostgreSQL identifier, and so of a channel name.
const maxChannel = 63

// channelName is the PostgreSQL channel of topic: the topic itself if it can be, else "#" and a
// hash of it, then the end of the topic (its most telling part, once scoped) for whoever reads
// pg_listening_channels. No topic is named like a hashed one, since those start with "#".
func channelName(topic string) string {
	if topic != "" && len(topic) <= maxChannel && topic[0] != '#' && utf8.ValidString(topic) && !strings.ContainsRune(topic, 0) {
		return topic
	}
	sum := sha256.Sum256([]byte(topic))
	name := "#" + hex.EncodeToString(sum[:16]) + ":"
	var tail []byte
	for i := len(topic) - 1; i >= 0 && len(name)+len(tail) < maxChannel; i-- {
		c := topic[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '/' || c == '-' || c == '.') {
			c = '_'
		}
		tail = append(tail, c)
	}
	for i, j := 0, len(tail)-1; i < j; i, j = i+1, j-1 {
		tail[i], tail[j] = tail[j], tail[i]
	}
	return name + string(tail)
}
