package artifacts

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/sluicehq/sluice/internal/credentials"
	"github.com/sluicehq/sluice/internal/objects"
)

// ErrBucketOfAnotherAccount refuses a bucket of the local store that another account owns: the
// buckets of the local store, like S3's, share one namespace across accounts.
var ErrBucketOfAnotherAccount = errors.New("belongs to another account")

// Local keeps one account's artifacts in the local object store, which all accounts share.
// Buckets are created, owned by the account, when first needed; those of other accounts are
// out of reach. Jobs receive credentials minted for them, which the built-in S3 endpoint
// honours.
type Local struct {
	objects  *objects.Store
	issuer   *credentials.Issuer
	endpoint string
	// account is the account whose artifacts these are; defaultAccount the server's, which owns
	// the buckets created before owners were recorded.
	account, defaultAccount string
}

// NewLocal returns the store of account's artifacts over objs; endpoint is the URL of the
// built-in S3 endpoint, and defaultAccount the server's default account, which owns the
// buckets that record no owner.
func NewLocal(objs *objects.Store, issuer *credentials.Issuer, endpoint, account, defaultAccount string) *Local {
	return &Local{objects: objs, issuer: issuer, endpoint: endpoint, account: account, defaultAccount: defaultAccount}
}

// EnsureBucket reads before it writes: it runs for every job with outputs, and creating a
// bucket is a synchronous commit, needed only the first time. A bucket another account owns
// fails with ErrBucketOfAnotherAccount.
func (l *Local) EnsureBucket(ctx context.Context, bucket string) error {
	b, err := l.objects.Bucket(ctx, bucket)
	if err == nil {
		return l.check(b)
	}
	if !errors.Is(err, objects.ErrNoSuchBucket) {
		return fmt.Errorf("read the artifact bucket %q: %w", bucket, err)
	}
	err = l.objects.CreateBucket(ctx, bucket, l.account)
	if errors.Is(err, objects.ErrBucketExists) {
		// Created meanwhile, by this account or another.
		return l.owned(ctx, bucket)
	}
	if err != nil {
		return fmt.Errorf("create the artifact bucket %q: %w", bucket, err)
	}
	return nil
}

// owned refuses a bucket another account owns; a bucket that does not exist is left for the
// operation on it to report.
func (l *Local) owned(ctx context.Context, bucket string) error {
	b, err := l.objects.Bucket(ctx, bucket)
	switch {
	case errors.Is(err, objects.ErrNoSuchBucket):
		return nil
	case err != nil:
		return fmt.Errorf("read the artifact bucket %q: %w", bucket, err)
	}
	return l.check(b)
}

func (l *Local) check(b objects.Bucket) error {
	owner := b.Owner
	if owner == "" {
		owner = l.defaultAccount
	}
	if owner != l.account {
		return fmt.Errorf("the artifact bucket %q %w", b.Name, ErrBucketOfAnotherAccount)
	}
	return nil
}

func (l *Local) Put(ctx context.Context, bucket, key string, r io.Reader, _ int64, meta Metadata) (Info, error) {
	if err := l.owned(ctx, bucket); err != nil {
		return Info{}, err
	}
	var headers map[string]string
	for name, v := range map[string]string{"Content-Type": meta.ContentType, "Cache-Control": meta.CacheControl} {
		if v != "" {
			if headers == nil {
				headers = map[string]string{}
			}
			headers[name] = v
		}
	}
	o, err := l.objects.Put(ctx, bucket, key, headers, r)
	if err != nil {
		return Info{}, localError(err, bucket, key, "")
	}
	return info(o), nil
}

func (l *Local) Get(ctx context.Context, bucket, key, version string) (io.ReadCloser, Info, error) {
	if err := l.owned(ctx, bucket); err != nil {
		return nil, Info{}, err
	}
	o, f, err := l.objects.Open(ctx, bucket, key, version)
	if err != nil {
		return nil, Info{}, localError(err, bucket, key, version)
	}
	return f, info(o), nil
}

func (l *Local) Head(ctx context.Context, bucket, key, version string) (Info, error) {
	if err := l.owned(ctx, bucket); err != nil {
		return Info{}, err
	}
	o, err := l.objects.Head(ctx, bucket, key, version)
	if err != nil {
		return Info{}, localError(err, bucket, key, version)
	}
	return info(o), nil
}

func (l *Local) JobCredentials(jobID string) Credentials {
	c := l.issuer.ForJob(jobID)
	return Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken}
}

func (l *Local) Endpoint() string { return "the built-in S3 endpoint " + l.endpoint }

func info(o objects.Object) Info {
	return Info{Version: o.VersionID(), ETag: `"` + hex.EncodeToString(o.MD5) + `"`, Size: o.Size, Modified: o.Modified}
}

func localError(err error, bucket, key, version string) error {
	switch {
	case errors.Is(err, objects.ErrNoSuchBucket):
		return fmt.Errorf("%w: %s", ErrNoSuchBucket, bucket)
	case errors.Is(err, objects.ErrNoSuchKey):
		return fmt.Errorf("%w: s3://%s/%s", ErrNoSuchKey, bucket, key)
	case errors.Is(err, objects.ErrNoSuchVersion), errors.Is(err, objects.ErrInvalidVersion):
		return fmt.Errorf("%w: s3://%s/%s version %s", ErrNoSuchVersion, bucket, key, version)
	}
	return err
}
