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

// Local keeps artifacts in the local object store. Buckets are created when first needed, and
// jobs receive credentials minted for them, which the built-in S3 endpoint honours.
type Local struct {
	objects  *objects.Store
	issuer   *credentials.Issuer
	endpoint string
}

// NewLocal returns a Local store over objs; endpoint is the URL of the built-in S3 endpoint.
func NewLocal(objs *objects.Store, issuer *credentials.Issuer, endpoint string) *Local {
	return &Local{objects: objs, issuer: issuer, endpoint: endpoint}
}

// EnsureBucket reads before it writes: it runs for every job with outputs, and creating a
// bucket is a synchronous commit, needed only the first time.
func (l *Local) EnsureBucket(ctx context.Context, bucket string) error {
	_, err := l.objects.Bucket(ctx, bucket)
	if !errors.Is(err, objects.ErrNoSuchBucket) {
		return err
	}
	err = l.objects.CreateBucket(ctx, bucket)
	if err != nil && !errors.Is(err, objects.ErrBucketExists) {
		return err
	}
	return nil
}

func (l *Local) Put(ctx context.Context, bucket, key string, r io.Reader, _ int64, meta Metadata) (Info, error) {
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
	o, f, err := l.objects.Open(ctx, bucket, key, version)
	if err != nil {
		return nil, Info{}, localError(err, bucket, key, version)
	}
	return f, info(o), nil
}

func (l *Local) Head(ctx context.Context, bucket, key, version string) (Info, error) {
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
