// Package shared keeps the git repositories Sluice hosts where every replica of the server finds
// them: their objects as pack files in an S3-compatible object store, and their refs in
// PostgreSQL, whose advisory locks let one push at a time into a repository, from whichever
// replica. Each replica serves and reads its own copy of a repository (its cache, in its hosted
// directory), brought up to date from the two before every read and every push.
//
// A repository is a row of the table git_repositories: its refs (a JSON object of full ref name
// to object id), the pack files that hold its objects (a JSON array of names, pack-<sha1>), the
// moves of branches and tags that pushes stored and that may not have been reported yet (a JSON
// array of gitrepo.Move: see below), and a version that every publication increments. The packs
// are immutable objects under <prefix><name>.git/objects/pack/ in the bucket: a push uploads its
// pack, then updates the row (with the version it started from), and only then is it answered.
// A pack uploaded by a push that failed before its row was updated is garbage that no replica
// reads, removed when the repository is next compacted into one pack. A repository exists once
// a push has stored its row.
//
// A push stores the moves it made (its pending moves) in the same update as its refs, and clears
// them once it has reported them (to start pipelines): a replica that dies between the two
// leaves them in the row, and whoever next takes the repository's lock reports them before
// anything else. A push stored but not reported is thus reported by the next push, or by the
// client's retry of it, which finds the refs moved already and would otherwise acknowledge it
// unreported.
package shared

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver

	"github.com/sluicehq/sluice/internal/gitrepo"
)

// Config says where the repositories are kept.
type Config struct {
	// DatabaseURL is the PostgreSQL database (postgres://…) that keeps the refs, in the table
	// git_repositories of the schema its search_path names (created if missing).
	DatabaseURL string
	// Client reaches the S3-compatible service, whose bucket Bucket keeps the pack files under
	// Prefix (say "git/<account>/"; "" for the bucket's root).
	Client *s3.Client
	Bucket string
	Prefix string
	// CompactAt is how many pack files a repository may be kept in before a push stores it as
	// one; 0 means 32.
	CompactAt int
	// KeepReplaced is how long a replica's copy keeps the packs a compaction replaced, for
	// the reads that may still be opening them; 0 means 10 minutes.
	KeepReplaced time.Duration
	// Logger hears of what fails after a push was stored (tidying the bucket, the local copy).
	Logger *slog.Logger
}

// Store keeps hosted repositories in PostgreSQL and an S3-compatible object store. It
// implements gitrepo.Shared.
type Store struct {
	db        *sql.DB
	client    *s3.Client
	bucket    string
	prefix    string
	compactAt int
	keep      time.Duration
	logger    *slog.Logger

	mu sync.Mutex
	// copies are this replica's copies of the repositories, by path.
	copies map[string]*copyState
}

var _ gitrepo.Shared = (*Store)(nil)

// copyState is what this replica knows of its copy of a repository. Its lock serialises the
// changes to the copy.
type copyState struct {
	sync.Mutex
	// version is the repository's version the copy holds; 0 for none.
	version int64
	// replaced are the packs of the copy that the repository no longer has, and since when.
	replaced map[string]time.Time
}

// lockSpace is the first key of the advisory locks of repositories (the second being a hash of
// the schema and the repository's name): PostgreSQL keeps two-key locks apart from the
// one-key locks the store takes.
const lockSpace = 0x51_17_1c_e1

// schemaSQL creates the table of repositories.
const schemaSQL = `CREATE TABLE IF NOT EXISTS git_repositories (
	name       text PRIMARY KEY,
	version    bigint NOT NULL,
	refs       jsonb NOT NULL,
	packs      jsonb NOT NULL,
	pending    jsonb NOT NULL DEFAULT '[]',
	updated_at timestamptz NOT NULL DEFAULT now()
)`

// pendingSQL adds the column of pending moves to a table that an earlier version created.
const pendingSQL = `ALTER TABLE git_repositories ADD COLUMN IF NOT EXISTS pending jsonb NOT NULL DEFAULT '[]'`

// Open connects to the database and creates the table of repositories if it is missing. The
// bucket must exist.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Client == nil || cfg.Bucket == "" {
		return nil, errors.New("shared git repositories need an S3 client and a bucket")
	}
	if cfg.Prefix != "" && !strings.HasSuffix(cfg.Prefix, "/") {
		cfg.Prefix += "/"
	}
	if cfg.CompactAt <= 0 {
		cfg.CompactAt = 32
	}
	if cfg.KeepReplaced <= 0 {
		cfg.KeepReplaced = 10 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	db, err := sql.Open("pgx", cfg.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	db.SetMaxIdleConns(4)
	if err := createSchema(ctx, db); err != nil {
		db.Close()
		return nil, err
	}
	return &Store{db: db, client: cfg.Client, bucket: cfg.Bucket, prefix: cfg.Prefix, compactAt: cfg.CompactAt,
		keep: cfg.KeepReplaced, logger: cfg.Logger, copies: map[string]*copyState{}}, nil
}

// createSchema creates the table, one replica at a time: concurrent CREATE TABLE IF NOT EXISTS
// may collide.
func createSchema(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("connect to postgres: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("SELECT pg_advisory_xact_lock(%d, 0)", lockSpace)); err != nil {
		return fmt.Errorf("lock the schema of git repositories: %w", err)
	}
	if _, err := tx.ExecContext(ctx, schemaSQL); err != nil {
		return fmt.Errorf("create the table of git repositories: %w", err)
	}
	// ALTER TABLE locks the table even when the column exists: only when it does not.
	var has bool
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name = 'git_repositories' AND column_name = 'pending')`).Scan(&has); err != nil {
		return fmt.Errorf("read the table of git repositories: %w", err)
	}
	if !has {
		if _, err := tx.ExecContext(ctx, pendingSQL); err != nil {
			return fmt.Errorf("add pending moves to the table of git repositories: %w", err)
		}
	}
	return tx.Commit()
}

// Close closes the connections to the database.
func (s *Store) Close() error {
	return s.db.Close()
}

// state is a repository as the database has it.
type state struct {
	version int64
	refs    map[string]string
	packs   []string
	pending []gitrepo.Move
}

// querier runs queries: the pool, or the connection of a push.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// read reads the repository name; if its version is known, only the version (refs nil).
func (s *Store) read(ctx context.Context, q querier, name string, known int64) (state, error) {
	var st state
	var refs, packs, pending sql.NullString
	err := q.QueryRowContext(ctx, `SELECT version,
		CASE WHEN version = $2 THEN NULL ELSE refs::text END,
		CASE WHEN version = $2 THEN NULL ELSE packs::text END,
		CASE WHEN version = $2 THEN NULL ELSE pending::text END
		FROM git_repositories WHERE name = $1`, name, known).Scan(&st.version, &refs, &packs, &pending)
	if errors.Is(err, sql.ErrNoRows) {
		return state{}, gitrepo.ErrNoRepository
	}
	if err != nil {
		return state{}, fmt.Errorf("read the repository %s: %w", name, err)
	}
	if !refs.Valid {
		return st, nil
	}
	if err := json.Unmarshal([]byte(refs.String), &st.refs); err != nil {
		return state{}, fmt.Errorf("the refs of the repository %s: %w", name, err)
	}
	if err := json.Unmarshal([]byte(packs.String), &st.packs); err != nil {
		return state{}, fmt.Errorf("the packs of the repository %s: %w", name, err)
	}
	if err := json.Unmarshal([]byte(pending.String), &st.pending); err != nil {
		return state{}, fmt.Errorf("the pending moves of the repository %s: %w", name, err)
	}
	if st.refs == nil {
		st.refs = map[string]string{}
	}
	for ref, id := range st.refs {
		if !validRef(ref) || !objectID.MatchString(id) {
			return state{}, fmt.Errorf("the repository %s has a malformed ref %q: %q", name, ref, id)
		}
	}
	for _, p := range st.packs {
		if !packName.MatchString(p) {
			return state{}, fmt.Errorf("the repository %s has a malformed pack name %q", name, p)
		}
	}
	for _, m := range st.pending {
		if err := validMove(m); err != nil {
			return state{}, fmt.Errorf("the repository %s has a malformed pending move: %w", name, err)
		}
	}
	return st, nil
}

// validMove checks that m is a move a push could have made.
func validMove(m gitrepo.Move) error {
	switch {
	case m.ID == "" || len(m.ID) > 128 || strings.ContainsFunc(m.ID, func(r rune) bool { return r < ' ' || r == 0x7f }):
		return fmt.Errorf("id %q", m.ID)
	case (m.Branch == "") == (m.Tag == ""):
		return fmt.Errorf("%+v moves neither one branch nor one tag", m)
	case !objectID.MatchString(m.Commit) || m.Before != "" && !objectID.MatchString(m.Before):
		return fmt.Errorf("%+v names a malformed commit", m)
	}
	return nil
}

var (
	objectID = regexp.MustCompile(`^[0-9a-f]{40}$`)
	packName = regexp.MustCompile(`^pack-[0-9a-f]{40}$`)
)

// validRef reports whether ref can be a line of packed-refs.
func validRef(ref string) bool {
	return strings.HasPrefix(ref, "refs/") && !strings.ContainsAny(ref, " \t\r\n\x00") && !strings.Contains(ref, "..")
}

// copyOf returns what this replica knows of its copy at path.
func (s *Store) copyOf(path string) *copyState {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.copies[path]
	if c == nil {
		c = &copyState{}
		s.copies[path] = c
	}
	return c
}

// Sync brings the copy at path of the repository name up to date: it downloads the packs it
// lacks and writes the refs. It asks the database for the repository's version only, when the
// copy has it already.
func (s *Store) Sync(ctx context.Context, name, path string) error {
	c := s.copyOf(path)
	c.Lock()
	defer c.Unlock()
	_, err := s.sync(ctx, s.db, c, name, path, false)
	return err
}

// sync brings the copy at path up to date, c locked; with full, it returns the repository's
// whole state even if the copy has it.
func (s *Store) sync(ctx context.Context, q querier, c *copyState, name, path string, full bool) (state, error) {
	known := c.version
	if full || !intact(path) {
		known = -1
	}
	for attempt := 1; ; attempt++ {
		st, err := s.read(ctx, q, name, known)
		if err != nil || st.refs == nil {
			return st, err
		}
		if st.version == c.version && intact(path) {
			return st, nil
		}
		err = s.apply(ctx, c, name, path, st)
		var missing *types.NoSuchKey
		if errors.As(err, &missing) && attempt < 3 {
			// A push compacted the repository since it was read: read it again.
			known = -1
			continue
		}
		if err != nil {
			return state{}, err
		}
		c.version = st.version
		return st, nil
	}
}

// intact reports whether the copy at path looks like one sync wrote.
func intact(path string) bool {
	_, err := os.Stat(filepath.Join(path, "packed-refs"))
	return err == nil
}

// apply makes the copy at path hold the repository st, c locked: it creates the copy if need
// be, downloads the packs it lacks, writes the refs, and removes the packs st no longer has
// once they have been replaced for a while.
func (s *Store) apply(ctx context.Context, c *copyState, name, path string, st state) error {
	if err := initCopy(path); err != nil {
		return fmt.Errorf("create the copy of the repository %s: %w", name, err)
	}
	packDir := filepath.Join(path, "objects", "pack")
	// Downloads that a killed replica left half done: c is locked, so none is under way.
	if temps, err := filepath.Glob(filepath.Join(packDir, ".tmp-sluice-*")); err == nil {
		for _, t := range temps {
			os.Remove(t)
		}
	}
	for _, p := range st.packs {
		if _, err := os.Stat(filepath.Join(packDir, p+".idx")); err == nil {
			continue
		}
		if err := s.download(ctx, name, packDir, p); err != nil {
			return err
		}
	}
	if err := writeRefs(path, st.refs); err != nil {
		return fmt.Errorf("write the refs of the copy of the repository %s: %w", name, err)
	}
	if err := s.prune(c, packDir, st.packs); err != nil {
		return fmt.Errorf("remove the replaced packs of the copy of the repository %s: %w", name, err)
	}
	return nil
}

// initCopy creates the bare repository at path if it does not exist, or completes it.
func initCopy(path string) error {
	for _, dir := range []string{"objects/pack", "objects/info", "refs/heads", "refs/tags"} {
		if err := os.MkdirAll(filepath.Join(path, filepath.FromSlash(dir)), 0o755); err != nil {
			return err
		}
	}
	for file, body := range map[string]string{
		"config": "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = true\n[gc]\n\tauto = 0\n",
		"HEAD":   "ref: refs/heads/main\n",
	} {
		if _, err := os.Stat(filepath.Join(path, file)); err == nil {
			continue
		}
		if err := writeFile(filepath.Join(path, file), []byte(body)); err != nil {
			return err
		}
	}
	return nil
}

// writeFile writes a file whole or not at all: readers see the old one or the new one.
func writeFile(path string, body []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-sluice-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(body); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// writeRefs makes refs the refs of the copy at path: a packed-refs file replaced whole, so
// that git and go-git read the old refs or the new, and no loose refs, which would override it.
func writeRefs(path string, refs map[string]string) error {
	var b strings.Builder
	b.WriteString("# pack-refs with: sorted \n")
	for _, ref := range slices.Sorted(maps.Keys(refs)) {
		fmt.Fprintf(&b, "%s %s\n", refs[ref], ref)
	}
	if err := writeFile(filepath.Join(path, "packed-refs"), []byte(b.String())); err != nil {
		return err
	}
	return filepath.WalkDir(filepath.Join(path, "refs"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		return os.Remove(p)
	})
}

// prune removes, c locked, the pack files in dir that are not among keep (packs a compaction
// replaced) once they have been so for s.keep: a read on this replica that listed them before
// may still open them. They hold nothing the packs that replaced them lack. The index goes
// first, so that git never finds an index without its pack.
func (s *Store) prune(c *copyState, dir string, keep []string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var stale []string
	now := time.Now()
	replaced := map[string]time.Time{}
	for _, e := range entries {
		base, ok := strings.CutSuffix(e.Name(), ".idx")
		if !ok || !packName.MatchString(base) || slices.Contains(keep, base) {
			continue
		}
		since, seen := c.replaced[base]
		if !seen {
			since = now
		}
		if now.Sub(since) >= s.keep {
			stale = append(stale, base)
		} else {
			replaced[base] = since
		}
	}
	c.replaced = replaced
	for _, base := range stale {
		for _, ext := range []string{".idx", ".pack", ".rev", ".bitmap", ".keep", ".promisor", ".mtimes"} {
			if err := os.Remove(filepath.Join(dir, base+ext)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
	}
	return nil
}

// key is where the pack file file (pack-<sha>.pack or .idx) of the repository name is kept.
func (s *Store) key(name, file string) string {
	return s.prefix + name + ".git/objects/pack/" + file
}

// download fetches the pack p of the repository name into dir: the pack, then its index, each
// under a temporary name until both are whole and agree, so that git never sees half of one.
func (s *Store) download(ctx context.Context, name, dir, p string) error {
	var temps []string
	defer func() {
		for _, t := range temps {
			os.Remove(t)
		}
	}()
	for _, ext := range []string{".pack", ".idx"} {
		f, err := os.CreateTemp(dir, ".tmp-sluice-")
		if err != nil {
			return err
		}
		temps = append(temps, f.Name())
		err = s.get(ctx, s.key(name, p+ext), f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("download %s of the repository %s: %w", p+ext, name, err)
		}
	}
	if err := matching(temps[0], temps[1]); err != nil {
		return fmt.Errorf("download %s of the repository %s: %w", p, name, err)
	}
	for i, ext := range []string{".pack", ".idx"} {
		if err := os.Rename(temps[i], filepath.Join(dir, p+ext)); err != nil {
			return err
		}
	}
	return nil
}

// get writes the object key to w.
func (s *Store) get(ctx context.Context, key string, w io.Writer) error {
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	if err != nil {
		return err
	}
	defer out.Body.Close()
	_, err = io.Copy(w, out.Body)
	return err
}

// matching checks that the index idx is that of the pack pack: a pack ends with its SHA-1
// checksum, which its (version 2) index repeats before its own.
func matching(pack, idx string) error {
	tail := func(path string, from int64) ([]byte, error) {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		b := make([]byte, 20)
		if _, err := f.Seek(-from, io.SeekEnd); err != nil {
			return nil, fmt.Errorf("%s is too short: %w", filepath.Base(path), err)
		}
		_, err = io.ReadFull(f, b)
		return b, err
	}
	p, err := tail(pack, 20)
	if err != nil {
		return err
	}
	i, err := tail(idx, 40)
	if err != nil {
		return err
	}
	if !bytes.Equal(p, i) {
		return errors.New("the pack and its index do not match")
	}
	return nil
}

// Pending reports whether the repository name has pending moves: moves a push stored and did
// not clear (see Update.Pending).
func (s *Store) Pending(ctx context.Context, name string) (bool, error) {
	var pending bool
	err := s.db.QueryRowContext(ctx, `SELECT jsonb_array_length(pending) > 0 FROM git_repositories WHERE name = $1`, name).Scan(&pending)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read the pending moves of the repository %s: %w", name, err)
	}
	return pending, nil
}

// Lock waits for the repository's advisory lock, on a connection of its own that holds it until
// the push's Close (or until the connection ends, with the process that held it), then brings
// the copy at path up to date.
func (s *Store) Lock(ctx context.Context, name, path string) (gitrepo.Update, error) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect to postgres: %w", err)
	}
	if _, err := conn.ExecContext(ctx, fmt.Sprintf("SELECT pg_advisory_lock(%d, hashtext(current_schema() || '/' || $1))", lockSpace), name); err != nil {
		// The lock may have been granted as the wait was cancelled: end the session.
		discard(conn)
		return nil, fmt.Errorf("lock the repository %s: %w", name, err)
	}
	u := &update{s: s, conn: conn, name: name, path: path, copy: s.copyOf(path)}
	u.copy.Lock()
	st, err := s.sync(ctx, conn, u.copy, name, path, true)
	u.copy.Unlock()
	if err != nil && !errors.Is(err, gitrepo.ErrNoRepository) {
		u.Close()
		return nil, err
	}
	u.st = st
	return u, nil
}

// discard closes conn's session instead of returning it to the pool, which ends whatever the
// session held: its locks.
func discard(conn *sql.Conn) {
	_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	conn.Close()
}

// update is a push into a repository, holding its lock.
type update struct {
	s          *Store
	conn       *sql.Conn
	name, path string
	copy       *copyState
	// st is the repository as last published; version 0 if it does not exist.
	st state
}

func (u *update) Refs() map[string]string { return maps.Clone(u.st.refs) }

func (u *update) Compact() bool { return len(u.st.packs) >= u.s.compactAt }

func (u *update) Pending() []gitrepo.Move { return slices.Clone(u.st.pending) }

// Publish uploads the packs the repository lacks, then moves the repository's row to the new
// refs, packs and pending moves, if it is still at the version the push started from.
func (u *update) Publish(ctx context.Context, packs []string, refs map[string]string, replace bool, pending []gitrepo.Move) error {
	var names []string
	for _, p := range packs {
		base, ok := strings.CutSuffix(filepath.Base(p), ".pack")
		if !ok || !packName.MatchString(base) {
			return fmt.Errorf("%s is not a pack file", p)
		}
		names = append(names, base)
	}
	for ref, id := range refs {
		if !validRef(ref) || !objectID.MatchString(id) {
			return fmt.Errorf("malformed ref %q: %q", ref, id)
		}
	}
	for _, m := range pending {
		if err := validMove(m); err != nil {
			return fmt.Errorf("malformed move: %w", err)
		}
	}
	for i, p := range packs {
		if slices.Contains(u.st.packs, names[i]) {
			continue
		}
		// The pack first: a replica that finds the index finds its pack.
		for _, file := range []string{p, strings.TrimSuffix(p, ".pack") + ".idx"} {
			if err := u.s.put(ctx, u.s.key(u.name, filepath.Base(file)), file); err != nil {
				return fmt.Errorf("upload %s of the repository %s: %w", filepath.Base(file), u.name, err)
			}
		}
	}
	next := state{version: u.st.version + 1, refs: maps.Clone(refs), packs: slices.Clone(u.st.packs), pending: slices.Clone(pending)}
	if next.refs == nil {
		next.refs = map[string]string{}
	}
	if replace {
		next.packs = nil
	}
	for _, n := range names {
		if !slices.Contains(next.packs, n) {
			next.packs = append(next.packs, n)
		}
	}
	refsJSON, err := json.Marshal(next.refs)
	if err != nil {
		return err
	}
	packsJSON, err := json.Marshal(next.packs)
	if err != nil {
		return err
	}
	pendingJSON, err := json.Marshal(next.pending)
	if err != nil {
		return err
	}
	if next.pending == nil {
		pendingJSON = []byte("[]")
	}
	var res sql.Result
	if u.st.version == 0 {
		res, err = u.conn.ExecContext(ctx, `INSERT INTO git_repositories (name, version, refs, packs, pending) VALUES ($1, 1, $2, $3, $4)
			ON CONFLICT (name) DO NOTHING`, u.name, string(refsJSON), string(packsJSON), string(pendingJSON))
	} else {
		res, err = u.conn.ExecContext(ctx, `UPDATE git_repositories SET version = version + 1, refs = $2, packs = $3, pending = $4, updated_at = now()
			WHERE name = $1 AND version = $5`, u.name, string(refsJSON), string(packsJSON), string(pendingJSON), u.st.version)
	}
	if err != nil {
		return fmt.Errorf("store the refs of the repository %s: %w", u.name, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("store the refs of the repository %s: another push changed it (%v)", u.name, err)
	}
	old := u.st
	u.st = next
	u.install(ctx, packs, next)
	if replace {
		u.s.removePacks(ctx, u.name, next.packs, old.packs)
	}
	return nil
}

// ClearPending empties the repository's pending moves, if it is still at the version the push
// found or published: publications alone store moves, each with a new version.
func (u *update) ClearPending(ctx context.Context) error {
	if len(u.st.pending) == 0 {
		return nil
	}
	res, err := u.conn.ExecContext(ctx, `UPDATE git_repositories SET pending = '[]' WHERE name = $1 AND version = $2`, u.name, u.st.version)
	if err != nil {
		return fmt.Errorf("clear the pending moves of the repository %s: %w", u.name, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("clear the pending moves of the repository %s: another push changed it (%v)", u.name, err)
	}
	u.st.pending = nil
	return nil
}

// install makes the local copy hold what was just published: the pushed packs are linked (or
// copied) into it rather than downloaded again. What fails here is only logged: the push is
// stored, and the next sync downloads what the copy lacks.
func (u *update) install(ctx context.Context, packs []string, st state) {
	u.copy.Lock()
	defer u.copy.Unlock()
	if u.copy.version >= st.version {
		return
	}
	packDir := filepath.Join(u.path, "objects", "pack")
	err := initCopy(u.path)
	for _, p := range packs {
		if err != nil {
			break
		}
		base := strings.TrimSuffix(p, ".pack")
		if _, serr := os.Stat(filepath.Join(packDir, filepath.Base(base)+".idx")); serr == nil {
			continue
		}
		for _, ext := range []string{".pack", ".idx"} {
			if err = linkOrCopy(base+ext, filepath.Join(packDir, filepath.Base(base)+ext)); err != nil {
				break
			}
		}
	}
	if err == nil {
		err = u.s.apply(ctx, u.copy, u.name, u.path, st)
	}
	if err != nil {
		u.copy.version = 0
		u.s.logger.Warn("update this replica's copy of a pushed repository; the next read downloads it", "repository", u.name, "err", err)
		return
	}
	u.copy.version = st.version
}

// linkOrCopy puts the file src at dst, by a hard link where it can.
func linkOrCopy(src, dst string) error {
	tmp := filepath.Join(filepath.Dir(dst), ".tmp-sluice-link-"+filepath.Base(dst))
	os.Remove(tmp)
	if err := os.Link(src, tmp); err != nil {
		in, err := os.Open(src)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.Create(tmp)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			os.Remove(tmp)
			return err
		}
		if err := out.Close(); err != nil {
			os.Remove(tmp)
			return err
		}
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// put uploads the file at path as the object key, in parts if it is large.
func (s *Store) put(ctx context.Context, key, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = transfermanager.New(s.client).UploadObject(ctx, &transfermanager.UploadObjectInput{
		Bucket: aws.String(s.bucket), Key: aws.String(key), Body: f})
	return err
}

// removePacks deletes, after a compaction, the pack files of the repository name that are not
// among keep: those it replaced, and those of pushes that failed after their upload. It holds
// the repository's lock, so no push is uploading one. A replica downloading a replaced pack
// finds it gone, reads the repository again and downloads the one that replaced it.
func (s *Store) removePacks(ctx context.Context, name string, keep, replaced []string) {
	ctx = context.WithoutCancel(ctx)
	prefix := s.key(name, "")
	stale := map[string]bool{}
	for _, p := range replaced {
		if !slices.Contains(keep, p) {
			stale[prefix+p+".pack"], stale[prefix+p+".idx"] = true, true
		}
	}
	pages := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: aws.String(s.bucket), Prefix: aws.String(prefix)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			s.logger.Warn("list the packs of a compacted repository", "repository", name, "err", err)
			break
		}
		for _, o := range page.Contents {
			file := strings.TrimPrefix(aws.ToString(o.Key), prefix)
			base := strings.TrimSuffix(strings.TrimSuffix(file, ".pack"), ".idx")
			if base != file && packName.MatchString(base) && !slices.Contains(keep, base) {
				stale[aws.ToString(o.Key)] = true
			}
		}
	}
	// Indexes first, as on disk.
	keys := slices.SortedFunc(maps.Keys(stale), func(a, b string) int {
		if ai, bi := strings.HasSuffix(a, ".idx"), strings.HasSuffix(b, ".idx"); ai != bi {
			if ai {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
	for _, key := range keys {
		if _, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)}); err != nil {
			s.logger.Warn("delete a replaced pack of a compacted repository", "repository", name, "key", key, "err", err)
		}
	}
}

// Close releases the repository's lock and returns the connection; if the lock cannot be
// released, the connection's session ends, which releases it.
func (u *update) Close() {
	_, err := u.conn.ExecContext(context.Background(), fmt.Sprintf("SELECT pg_advisory_unlock(%d, hashtext(current_schema() || '/' || $1))", lockSpace), u.name)
	if err != nil {
		discard(u.conn)
		return
	}
	u.conn.Close()
}
