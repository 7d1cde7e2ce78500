package artifacts

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/internal/credentials"
	"github.com/sluicehq/sluice/internal/objects"
)

const (
	defaultAccount = "111111111111"
	otherAccount   = "222222222222"
)

// TestLocalBucketsBelongToAnAccount checks that each account's Local creates its buckets as
// its own and reaches no other account's, the buckets from before owners included.
func TestLocalBucketsBelongToAnAccount(t *testing.T) {
	ctx := context.Background()
	objs, err := objects.Open(ctx, filepath.Join(t.TempDir(), "objects"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { objs.Close() })
	issuer := credentials.NewIssuer([]byte("k"))
	mine := NewLocal(objs, issuer, "http://sluice.test", defaultAccount, defaultAccount)
	theirs := NewLocal(objs, issuer, "http://sluice.test", otherAccount, defaultAccount)
	if err := objs.CreateBucket(ctx, "legacy", ""); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		l      *Local
		bucket string
	}{{mine, "mine"}, {mine, "legacy"}, {theirs, "theirs"}} {
		if err := c.l.EnsureBucket(ctx, c.bucket); err != nil {
			t.Fatalf("EnsureBucket(%s) for %s: %v", c.bucket, c.l.account, err)
		}
		if err := c.l.EnsureBucket(ctx, c.bucket); err != nil {
			t.Fatalf("EnsureBucket(%s) again for %s: %v", c.bucket, c.l.account, err)
		}
		if _, err := c.l.Put(ctx, c.bucket, "k", strings.NewReader(c.bucket), 0, Metadata{}); err != nil {
			t.Fatal(err)
		}
		rc, _, err := c.l.Get(ctx, c.bucket, "k", "")
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(rc)
		rc.Close()
		if string(got) != c.bucket {
			t.Fatalf("read back %q from %s", got, c.bucket)
		}
	}
	if b, err := objs.Bucket(ctx, "theirs"); err != nil || b.Owner != otherAccount {
		t.Fatalf("the bucket the other account ensured: %+v %v", b, err)
	}
	for _, c := range []struct {
		l      *Local
		bucket string
	}{{theirs, "mine"}, {theirs, "legacy"}, {mine, "theirs"}} {
		refused := map[string]error{"EnsureBucket": c.l.EnsureBucket(ctx, c.bucket)}
		_, refused["Put"] = c.l.Put(ctx, c.bucket, "k", strings.NewReader("overwritten"), 0, Metadata{})
		_, _, refused["Get"] = c.l.Get(ctx, c.bucket, "k", "")
		_, refused["Head"] = c.l.Head(ctx, c.bucket, "k", "")
		for op, err := range refused {
			if !errors.Is(err, ErrBucketOfAnotherAccount) || err.Error() != `the artifact bucket "`+c.bucket+`" belongs to another account` {
				t.Errorf("%s of %s for %s: %v, want ErrBucketOfAnotherAccount", op, c.bucket, c.l.account, err)
			}
		}
	}
	if _, _, err := mine.Get(ctx, "missing", "k", ""); !errors.Is(err, ErrNoSuchBucket) {
		t.Fatalf("a missing bucket: %v", err)
	}
	if _, err := mine.Head(ctx, "mine", "k", ""); err != nil {
		t.Fatalf("mine after the other account's attempts: %v", err)
	}
}
