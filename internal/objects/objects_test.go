package objects

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var ctx = context.Background()

func open(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func names(t *testing.T, s *Store, owners ...string) []string {
	t.Helper()
	buckets, err := s.Buckets(ctx, owners...)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, b := range buckets {
		out = append(out, b.Name+"@"+b.Owner)
	}
	return out
}

// TestBucketOwners checks that buckets record the account that owns them and are listed by
// owner.
func TestBucketOwners(t *testing.T) {
	s := open(t, t.TempDir())
	for name, owner := range map[string]string{"a": "111111111111", "b": "222222222222", "c": "", "d": "111111111111"} {
		if err := s.CreateBucket(ctx, name, owner); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateBucket(ctx, "a", "222222222222"); !errors.Is(err, ErrBucketExists) {
		t.Fatalf("creating another account's bucket again: %v, want ErrBucketExists", err)
	}
	if b, err := s.Bucket(ctx, "a"); err != nil || b.Owner != "111111111111" {
		t.Fatalf("bucket a: %+v %v, still owned by 111111111111", b, err)
	}
	for _, c := range []struct {
		owners []string
		want   string
	}{
		{nil, "a@111111111111 b@222222222222 c@ d@111111111111"},
		{[]string{"111111111111"}, "a@111111111111 d@111111111111"},
		{[]string{"111111111111", ""}, "a@111111111111 c@ d@111111111111"},
		{[]string{"222222222222"}, "b@222222222222"},
		{[]string{"333333333333"}, ""},
	} {
		if got := strings.Join(names(t, s, c.owners...), " "); got != c.want {
			t.Errorf("buckets of %q: %s, want %s", c.owners, got, c.want)
		}
	}
}

// firstSchema is the index as the first versions of Sluice laid it out, before buckets had
// owners.
const firstSchema = `
CREATE TABLE buckets (name TEXT PRIMARY KEY, created INTEGER NOT NULL, versioning TEXT NOT NULL DEFAULT '');
CREATE TABLE objects (bucket TEXT NOT NULL, key TEXT NOT NULL, seq INTEGER NOT NULL, version TEXT NOT NULL,
	latest INTEGER NOT NULL, deleted INTEGER NOT NULL, size INTEGER NOT NULL, md5 BLOB, metadata TEXT NOT NULL,
	modified INTEGER NOT NULL, file TEXT NOT NULL, PRIMARY KEY (bucket, key, seq));
CREATE UNIQUE INDEX objects_version ON objects (bucket, key, version);
CREATE INDEX objects_latest ON objects (bucket, latest, key);
INSERT INTO buckets (name, created, versioning) VALUES ('old', 1700000000000, 'Enabled');
`

// TestOpensEarlierIndexes checks that an index laid out before buckets had owners opens, its
// buckets owned by no one (the default account), and that an index newer than this program is
// refused.
func TestOpensEarlierIndexes(t *testing.T) {
	dir := t.TempDir()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, firstSchema); err != nil {
		t.Fatal(err)
	}
	db.Close()
	for range 2 { // and again, once migrated
		s, err := Open(ctx, dir)
		if err != nil {
			t.Fatal(err)
		}
		if b, err := s.Bucket(ctx, "old"); err != nil || b.Owner != "" || b.Versioning != VersioningEnabled {
			t.Fatalf("the bucket of the earlier index: %+v %v", b, err)
		}
		if _, err := s.Put(ctx, "old", "k", nil, strings.NewReader("v")); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateBucket(ctx, "new", "111111111111"); err != nil && !errors.Is(err, ErrBucketExists) {
			t.Fatal(err)
		}
		if got := names(t, s, "111111111111", ""); !slices.Equal(got, []string{"new@111111111111", "old@"}) {
			t.Fatalf("buckets after the migration: %v", got)
		}
		s.Close()
	}
	db, err = sql.Open("sqlite", "file:"+filepath.Join(dir, "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `PRAGMA user_version = 99`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if s, err := Open(ctx, dir); err == nil {
		s.Close()
		t.Fatal("an index newer than this program opened")
	}
}
