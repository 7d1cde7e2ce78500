package artifacts

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	tmtypes "github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// S3 keeps artifacts in an S3-compatible service. Its buckets must exist; jobs receive the
// credentials configured for them, since a generic S3 service has no way to mint narrower ones.
type S3 struct {
	client   *s3.Client
	endpoint string
	jobCreds Credentials
	// ready remembers the buckets found to exist, so a pipeline's bucket is checked once.
	ready sync.Map
}

// NewS3 returns an S3 store using client; endpoint is its URL, for messages, and jobCreds what
// jobs receive as their artifact credentials.
func NewS3(client *s3.Client, endpoint string, jobCreds Credentials) *S3 {
	return &S3{client: client, endpoint: endpoint, jobCreds: jobCreds}
}

func (s *S3) EnsureBucket(ctx context.Context, bucket string) error {
	if _, ok := s.ready.Load(bucket); ok {
		return nil
	}
	if _, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(bucket)}); err != nil {
		return s3Error(err, bucket, "", "")
	}
	s.ready.Store(bucket, true)
	return nil
}

// Put uploads through the SDK's transfer manager, which reads a stream in parts it can sign and
// retry, and switches to a multipart upload for large artifacts.
func (s *S3) Put(ctx context.Context, bucket, key string, r io.Reader, size int64, meta Metadata) (Info, error) {
	in := &transfermanager.UploadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: r}
	if meta.ContentType != "" {
		in.ContentType = aws.String(meta.ContentType)
	}
	if meta.CacheControl != "" {
		in.CacheControl = aws.String(meta.CacheControl)
	}
	if meta.ACL != "" {
		in.ACL = tmtypes.ObjectCannedACL(meta.ACL)
	}
	out, err := transfermanager.New(s.client).UploadObject(ctx, in)
	if err != nil {
		return Info{}, s3Error(err, bucket, key, "")
	}
	return Info{Version: aws.ToString(out.VersionID), ETag: aws.ToString(out.ETag), Size: size}, nil
}

func (s *S3) Get(ctx context.Context, bucket, key, version string) (io.ReadCloser, Info, error) {
	in := &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}
	if version != "" {
		in.VersionId = aws.String(version)
	}
	out, err := s.client.GetObject(ctx, in)
	if err != nil {
		return nil, Info{}, s3Error(err, bucket, key, version)
	}
	return out.Body, Info{Version: aws.ToString(out.VersionId), ETag: aws.ToString(out.ETag), Size: aws.ToInt64(out.ContentLength), Modified: aws.ToTime(out.LastModified)}, nil
}

func (s *S3) Head(ctx context.Context, bucket, key, version string) (Info, error) {
	in := &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}
	if version != "" {
		in.VersionId = aws.String(version)
	}
	out, err := s.client.HeadObject(ctx, in)
	if err != nil {
		return Info{}, s3Error(err, bucket, key, version)
	}
	return Info{Version: aws.ToString(out.VersionId), ETag: aws.ToString(out.ETag), Size: aws.ToInt64(out.ContentLength), Modified: aws.ToTime(out.LastModified)}, nil
}

func (s *S3) JobCredentials(string) Credentials { return s.jobCreds }

func (s *S3) Endpoint() string { return "the S3 service at " + s.endpoint }

func s3Error(err error, bucket, key, version string) error {
	var noBucket *types.NoSuchBucket
	var noKey *types.NoSuchKey
	var notFound *types.NotFound
	var api smithy.APIError
	switch {
	case errors.As(err, &noBucket), key == "" && errors.As(err, &notFound):
		return fmt.Errorf("%w: %s", ErrNoSuchBucket, bucket)
	case errors.As(err, &api) && api.ErrorCode() == "NoSuchVersion", version != "" && errors.As(err, &api) && api.ErrorCode() == "InvalidArgument":
		return fmt.Errorf("%w: s3://%s/%s version %s", ErrNoSuchVersion, bucket, key, version)
	case errors.As(err, &noKey), errors.As(err, &notFound):
		return fmt.Errorf("%w: s3://%s/%s", ErrNoSuchKey, bucket, key)
	}
	return fmt.Errorf("s3://%s/%s: %w", bucket, key, err)
}
