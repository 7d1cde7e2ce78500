// Package objects keeps S3-style buckets of versioned objects on the local disk: each object
// version's contents in a file of its own, and the index — buckets, keys, versions, metadata — in
// an SQLite database beside them. It is the embedded artifact store and what Sluice's built-in
// S3-compatible endpoint serves.
//
// Contents are written to a temporary file, synced and renamed into place before the index
// records them in a synchronous commit, so an object a caller was told is stored survives a crash.
package objects

import (
	"context"
	"crypto/md5"
	"crypto/rand"
	"database/sql"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // the database/sql driver "sqlite"
)

// Errors, matched with errors.Is.
var (
	ErrNoSuchBucket    = errors.New("no such bucket")
	ErrBucketExists    = errors.New("bucket already exists")
	ErrBucketNotEmpty  = errors.New("bucket not empty")
	ErrNoSuchKey       = errors.New("no such key")
	ErrNoSuchVersion   = errors.New("no such version")
	ErrInvalidVersion  = errors.New("invalid version id")
	errUnknownVersions = errors.New("unknown versioning status")
)

// Versioning states of a bucket, as S3 names them; a bucket that never had versioning has "".
const (
	VersioningEnabled   = "Enabled"
	VersioningSuspended = "Suspended"
)

// nullVersion is the version id of an object written while versioning was off or suspended.
const nullVersion = "null"

// Bucket describes a bucket.
type Bucket struct {
	Name       string
	Created    time.Time
	Versioning string
	// Owner is the 12-digit account the bucket belongs to; empty for a bucket created before
	// owners were recorded, which belongs to the server's default account.
	Owner string
}

// Object describes one version of an object.
type Object struct {
	Bucket   string
	Key      string
	Version  string
	Latest   bool
	Deleted  bool // a delete marker
	Size     int64
	MD5      []byte
	Metadata map[string]string
	Modified time.Time
	file     string
}

// VersionID is the version id S3 reports for o: none for the null version, written while the
// bucket's versioning was off or suspended.
func (o Object) VersionID() string {
	if o.Version == nullVersion {
		return ""
	}
	return o.Version
}

// Store is a directory of buckets.
type Store struct {
	dir string
	db  *sql.DB
}

// schema is the index as it was first laid out; migrations bring it up to date.
const schema = `
CREATE TABLE IF NOT EXISTS buckets (
	name TEXT PRIMARY KEY,
	created INTEGER NOT NULL,
	versioning TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS objects (
	bucket TEXT NOT NULL,
	key TEXT NOT NULL,
	seq INTEGER NOT NULL,
	version TEXT NOT NULL,
	latest INTEGER NOT NULL,
	deleted INTEGER NOT NULL,
	size INTEGER NOT NULL,
	md5 BLOB,
	metadata TEXT NOT NULL,
	modified INTEGER NOT NULL,
	file TEXT NOT NULL,
	PRIMARY KEY (bucket, key, seq)
);
CREATE UNIQUE INDEX IF NOT EXISTS objects_version ON objects (bucket, key, version);
CREATE INDEX IF NOT EXISTS objects_latest ON objects (bucket, latest, key);
`

// migrations change the index after schema, forward only: migrations[i] brings an index at
// version i (PRAGMA user_version) to version i+1. Append to it; never edit an entry.
var migrations = []string{
	// 1: buckets record the account that owns them; those from before have none.
	`ALTER TABLE buckets ADD COLUMN owner TEXT NOT NULL DEFAULT '';
	CREATE INDEX buckets_owner ON buckets (owner, name);`,
}

// Open opens (creating if need be) the store in dir.
func Open(ctx context.Context, dir string) (*Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	for _, sub := range []string{"blobs", "tmp"} {
		if err := os.MkdirAll(filepath.Join(abs, sub), 0o755); err != nil {
			return nil, fmt.Errorf("create object store directory: %w", err)
		}
	}
	params := url.Values{}
	for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(FULL)"} {
		params.Add("_pragma", p)
	}
	params.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+filepath.Join(abs, "index.db")+"?"+params.Encode())
	if err != nil {
		return nil, fmt.Errorf("open object index: %w", err)
	}
	s := &Store{dir: abs, db: db}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// migrate lays out the index and brings it up to date, in one transaction, so that stores
// opened at once by several processes each see it whole.
func (s *Store) migrate(ctx context.Context) error {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, schema); err != nil {
			return err
		}
		var version int
		if err := tx.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&version); err != nil {
			return err
		}
		if version > len(migrations) {
			return fmt.Errorf("the index is at version %d, newer than this Sluice knows (%d)", version, len(migrations))
		}
		for i := version; i < len(migrations); i++ {
			if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
				return fmt.Errorf("migrate to version %d: %w", i+1, err)
			}
		}
		// PRAGMA takes no parameters; len(migrations) is a constant of this program.
		_, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, len(migrations)))
		return err
	})
	if err != nil {
		return fmt.Errorf("create object index: %w", err)
	}
	return nil
}

// Close closes the index.
func (s *Store) Close() error { return s.db.Close() }

// CreateBucket creates a bucket owned by the account owner, or fails with ErrBucketExists
// whoever owns the one there is.
func (s *Store) CreateBucket(ctx context.Context, name, owner string) error {
	res, err := s.db.ExecContext(ctx, `INSERT INTO buckets (name, created, owner) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`,
		name, time.Now().UnixMilli(), owner)
	if err != nil {
		return fmt.Errorf("create bucket %s: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrBucketExists
	}
	return nil
}

// Bucket describes a bucket, or fails with ErrNoSuchBucket.
func (s *Store) Bucket(ctx context.Context, name string) (Bucket, error) {
	b := Bucket{Name: name}
	var created int64
	err := s.db.QueryRowContext(ctx, `SELECT created, versioning, owner FROM buckets WHERE name = ?`, name).Scan(&created, &b.Versioning, &b.Owner)
	if errors.Is(err, sql.ErrNoRows) {
		return b, ErrNoSuchBucket
	}
	if err != nil {
		return b, fmt.Errorf("read bucket %s: %w", name, err)
	}
	b.Created = time.UnixMilli(created).UTC()
	return b, nil
}

// Buckets lists by name the buckets that one of owners owns; "" among them names the buckets
// created before owners were recorded, which the default account's callers include. With no
// owner at all, it lists every bucket.
func (s *Store) Buckets(ctx context.Context, owners ...string) ([]Bucket, error) {
	q := `SELECT name, created, versioning, owner FROM buckets ORDER BY name`
	args := make([]any, len(owners))
	if len(owners) > 0 {
		for i, o := range owners {
			args[i] = o
		}
		q = `SELECT name, created, versioning, owner FROM buckets WHERE owner IN (?` + strings.Repeat(", ?", len(owners)-1) + `) ORDER BY name`
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list buckets: %w", err)
	}
	defer rows.Close()
	var out []Bucket
	for rows.Next() {
		var b Bucket
		var created int64
		if err := rows.Scan(&b.Name, &created, &b.Versioning, &b.Owner); err != nil {
			return nil, err
		}
		b.Created = time.UnixMilli(created).UTC()
		out = append(out, b)
	}
	return out, rows.Err()
}

// DeleteBucket deletes an empty bucket; with force, it deletes its objects first.
func (s *Store) DeleteBucket(ctx context.Context, name string, force bool) error {
	var files []string
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if err := bucketExists(ctx, tx, name); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT file FROM objects WHERE bucket = ?`, name)
		if err != nil {
			return err
		}
		for rows.Next() {
			var f string
			if err := rows.Scan(&f); err != nil {
				rows.Close()
				return err
			}
			files = append(files, f)
		}
		rows.Close()
		if len(files) > 0 && !force {
			return ErrBucketNotEmpty
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM objects WHERE bucket = ?`, name); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM buckets WHERE name = ?`, name)
		return err
	})
	if err != nil {
		return err
	}
	s.removeFiles(files)
	return nil
}

// SetVersioning sets a bucket's versioning to VersioningEnabled or VersioningSuspended.
func (s *Store) SetVersioning(ctx context.Context, bucket, status string) error {
	if status != VersioningEnabled && status != VersioningSuspended {
		return fmt.Errorf("%w: %q", errUnknownVersions, status)
	}
	res, err := s.db.ExecContext(ctx, `UPDATE buckets SET versioning = ? WHERE name = ?`, status, bucket)
	if err != nil {
		return fmt.Errorf("set versioning of %s: %w", bucket, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNoSuchBucket
	}
	return nil
}

// Put stores r's contents as the newest version of key: a new version when the bucket's
// versioning is enabled, otherwise in place of the key's null version.
func (s *Store) Put(ctx context.Context, bucket, key string, metadata map[string]string, r io.Reader) (Object, error) {
	tmp, err := os.CreateTemp(filepath.Join(s.dir, "tmp"), "put-")
	if err != nil {
		return Object{}, fmt.Errorf("store %s/%s: %w", bucket, key, err)
	}
	defer os.Remove(tmp.Name())
	hash := md5.New()
	size, err := io.Copy(io.MultiWriter(tmp, hash), r)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return Object{}, fmt.Errorf("store %s/%s: %w", bucket, key, err)
	}
	file := randomID()
	if err := os.Rename(tmp.Name(), s.blob(file)); err != nil {
		return Object{}, fmt.Errorf("store %s/%s: %w", bucket, key, err)
	}
	o := Object{Bucket: bucket, Key: key, Latest: true, Size: size, MD5: hash.Sum(nil), Metadata: metadata, Modified: time.Now().UTC(), file: file}
	replaced, err := s.insert(ctx, &o)
	if err != nil {
		os.Remove(s.blob(file))
		return Object{}, err
	}
	s.removeFiles(replaced)
	return o, nil
}

// Delete deletes key as S3 does without a version id: in a bucket with versioning enabled it
// adds a delete marker; otherwise it replaces the null version by one (suspended) or removes it.
func (s *Store) Delete(ctx context.Context, bucket, key string) (Object, error) {
	b, err := s.Bucket(ctx, bucket)
	if err != nil {
		return Object{}, err
	}
	if b.Versioning == "" {
		files, err := s.deleteWhere(ctx, bucket, key, nullVersion)
		if err != nil {
			return Object{}, err
		}
		s.removeFiles(files)
		return Object{Bucket: bucket, Key: key}, nil
	}
	o := Object{Bucket: bucket, Key: key, Latest: true, Deleted: true, Modified: time.Now().UTC()}
	replaced, err := s.insert(ctx, &o)
	if err != nil {
		return Object{}, err
	}
	s.removeFiles(replaced)
	return o, nil
}

// DeleteVersion removes one version of key for good; removing one that does not exist is not an
// error, as in S3.
func (s *Store) DeleteVersion(ctx context.Context, bucket, key, version string) (Object, error) {
	o, err := s.Head(ctx, bucket, key, version)
	if errors.Is(err, ErrNoSuchKey) || errors.Is(err, ErrNoSuchVersion) || errors.Is(err, ErrInvalidVersion) {
		return Object{Bucket: bucket, Key: key, Version: version}, nil
	}
	if err != nil {
		return Object{}, err
	}
	files, err := s.deleteWhere(ctx, bucket, key, o.Version)
	if err != nil {
		return Object{}, err
	}
	s.removeFiles(files)
	return o, nil
}

// Head describes a version of key ("" for the latest) without opening it. The latest version
// being a delete marker is ErrNoSuchKey.
func (s *Store) Head(ctx context.Context, bucket, key, version string) (Object, error) {
	if err := bucketExists(ctx, s.db, bucket); err != nil {
		return Object{}, err
	}
	q := `SELECT ` + objectColumns + ` FROM objects WHERE bucket = ? AND key = ? AND latest = 1`
	args := []any{bucket, key}
	if version != "" {
		q = `SELECT ` + objectColumns + ` FROM objects WHERE bucket = ? AND key = ? AND version = ?`
		args = append(args, version)
	}
	o, err := scanObject(s.db.QueryRowContext(ctx, q, args...))
	switch {
	case errors.Is(err, sql.ErrNoRows) && version != "":
		if !validVersion(version) {
			return Object{}, ErrInvalidVersion
		}
		return Object{}, ErrNoSuchVersion
	case errors.Is(err, sql.ErrNoRows):
		return Object{}, ErrNoSuchKey
	case err != nil:
		return Object{}, fmt.Errorf("read %s/%s: %w", bucket, key, err)
	case o.Deleted && version == "":
		return o, ErrNoSuchKey
	}
	return o, nil
}

// Open opens a version of key ("" for the latest) for reading.
func (s *Store) Open(ctx context.Context, bucket, key, version string) (Object, *os.File, error) {
	o, err := s.Head(ctx, bucket, key, version)
	if err != nil {
		return o, nil, err
	}
	if o.Deleted {
		return o, nil, ErrNoSuchKey
	}
	f, err := os.Open(s.blob(o.file))
	if err != nil {
		return o, nil, fmt.Errorf("open %s/%s: %w", bucket, key, err)
	}
	return o, f, nil
}

// List returns up to limit of the bucket's current objects whose keys begin with prefix and sort
// after after, in key order.
func (s *Store) List(ctx context.Context, bucket, prefix, after string, limit int) ([]Object, error) {
	if err := bucketExists(ctx, s.db, bucket); err != nil {
		return nil, err
	}
	start := max(prefix, after)
	rows, err := s.db.QueryContext(ctx, `SELECT `+objectColumns+` FROM objects
		WHERE bucket = ? AND latest = 1 AND deleted = 0 AND key >= ? AND key > ? ORDER BY key LIMIT ?`,
		bucket, start, after, limit)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", bucket, err)
	}
	return collect(rows, prefix)
}

// ListVersions returns up to limit versions (delete markers included) of the keys beginning with
// prefix, by key and newest first, starting after the version afterVersion of afterKey (or after
// all of afterKey's versions when afterVersion is "").
func (s *Store) ListVersions(ctx context.Context, bucket, prefix, afterKey, afterVersion string, limit int) ([]Object, error) {
	if err := bucketExists(ctx, s.db, bucket); err != nil {
		return nil, err
	}
	afterSeq := int64(-1)
	if afterVersion != "" {
		err := s.db.QueryRowContext(ctx, `SELECT seq FROM objects WHERE bucket = ? AND key = ? AND version = ?`, bucket, afterKey, afterVersion).Scan(&afterSeq)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("list versions of %s: %w", bucket, err)
		}
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+objectColumns+` FROM objects
		WHERE bucket = ? AND key >= ? AND (key > ? OR (key = ? AND seq < ?)) ORDER BY key, seq DESC LIMIT ?`,
		bucket, max(prefix, afterKey), afterKey, afterKey, afterSeq, limit)
	if err != nil {
		return nil, fmt.Errorf("list versions of %s: %w", bucket, err)
	}
	return collect(rows, prefix)
}

const objectColumns = `bucket, key, version, latest, deleted, size, md5, metadata, modified, file`

type scanner interface{ Scan(...any) error }

func scanObject(row scanner) (Object, error) {
	var o Object
	var meta string
	var modified int64
	if err := row.Scan(&o.Bucket, &o.Key, &o.Version, &o.Latest, &o.Deleted, &o.Size, &o.MD5, &meta, &modified, &o.file); err != nil {
		return o, err
	}
	if err := json.Unmarshal([]byte(meta), &o.Metadata); err != nil {
		return o, fmt.Errorf("decode metadata of %s/%s: %w", o.Bucket, o.Key, err)
	}
	o.Modified = time.UnixMilli(modified).UTC()
	return o, nil
}

// collect reads objects until the first key outside prefix.
func collect(rows *sql.Rows, prefix string) ([]Object, error) {
	defer rows.Close()
	var out []Object
	for rows.Next() {
		o, err := scanObject(rows)
		if err != nil {
			return nil, err
		}
		if !strings.HasPrefix(o.Key, prefix) {
			break
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// insert records o as the newest version of its key, choosing its version id by the bucket's
// versioning; it returns the files of the null version it replaced.
func (s *Store) insert(ctx context.Context, o *Object) ([]string, error) {
	var replaced []string
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var versioning string
		err := tx.QueryRowContext(ctx, `SELECT versioning FROM buckets WHERE name = ?`, o.Bucket).Scan(&versioning)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNoSuchBucket
		}
		if err != nil {
			return err
		}
		o.Version = nullVersion
		if versioning == VersioningEnabled {
			o.Version = randomID()
		} else {
			files, err := deleteVersion(ctx, tx, o.Bucket, o.Key, nullVersion)
			if err != nil {
				return err
			}
			replaced = files
		}
		var seq int64
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) + 1 FROM objects WHERE bucket = ? AND key = ?`, o.Bucket, o.Key).Scan(&seq); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE objects SET latest = 0 WHERE bucket = ? AND key = ? AND latest = 1`, o.Bucket, o.Key); err != nil {
			return err
		}
		meta, err := json.Marshal(o.Metadata)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO objects (bucket, key, seq, version, latest, deleted, size, md5, metadata, modified, file)
			VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?)`,
			o.Bucket, o.Key, seq, o.Version, o.Deleted, o.Size, o.MD5, string(meta), o.Modified.UnixMilli(), o.file)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store %s/%s: %w", o.Bucket, o.Key, err)
	}
	return replaced, nil
}

// deleteWhere removes one version of a key in its own transaction.
func (s *Store) deleteWhere(ctx context.Context, bucket, key, version string) ([]string, error) {
	var files []string
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if err := bucketExists(ctx, tx, bucket); err != nil {
			return err
		}
		var err error
		files, err = deleteVersion(ctx, tx, bucket, key, version)
		return err
	})
	return files, err
}

// deleteVersion removes a version of a key and, if it was the latest, makes the next newest
// the latest; it returns the files to remove once the transaction commits.
func deleteVersion(ctx context.Context, tx *sql.Tx, bucket, key, version string) ([]string, error) {
	var file string
	var latest bool
	err := tx.QueryRowContext(ctx, `DELETE FROM objects WHERE bucket = ? AND key = ? AND version = ? RETURNING file, latest`, bucket, key, version).Scan(&file, &latest)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if latest {
		_, err = tx.ExecContext(ctx, `UPDATE objects SET latest = 1 WHERE bucket = ? AND key = ? AND seq = (SELECT MAX(seq) FROM objects WHERE bucket = ? AND key = ?)`, bucket, key, bucket, key)
		if err != nil {
			return nil, err
		}
	}
	if file == "" {
		return nil, nil
	}
	return []string{file}, nil
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func bucketExists(ctx context.Context, q querier, bucket string) error {
	var one int
	err := q.QueryRowContext(ctx, `SELECT 1 FROM buckets WHERE name = ?`, bucket).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNoSuchBucket
	}
	return err
}

func (s *Store) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

func (s *Store) blob(file string) string { return filepath.Join(s.dir, "blobs", file) }

// removeFiles removes the contents of versions the index no longer holds. A crash before it
// leaves only unreferenced files behind, never a reference without its file.
func (s *Store) removeFiles(files []string) {
	for _, f := range files {
		if f != "" {
			os.Remove(s.blob(f))
		}
	}
}

var idEncoding = base32.NewEncoding("0123456789abcdefghijklmnopqrstuv").WithPadding(base32.NoPadding)

// randomID returns a fresh version id or file name: 160 random bits in 32 characters.
func randomID() string {
	b := make([]byte, 20)
	rand.Read(b)
	return idEncoding.EncodeToString(b)
}

func validVersion(v string) bool {
	if v == nullVersion {
		return true
	}
	b, err := idEncoding.DecodeString(v)
	return err == nil && len(b) == 20
}
