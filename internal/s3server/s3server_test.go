package s3server

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	sluicecreds "github.com/sluicehq/sluice/internal/credentials"
	"github.com/sluicehq/sluice/internal/objects"
)

var ctx = context.Background()

// noJobs answers for a server that has handed out no job credentials.
type noJobs struct{}

func (noJobs) JobObjects(context.Context, string) ([]Location, []Location, bool, error) {
	return nil, nil, false, nil
}

func newClient(tb testing.TB) *s3.Client {
	tb.Helper()
	objs, err := objects.Open(ctx, filepath.Join(tb.TempDir(), "objects"))
	if err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewServer(New(objs, sluicecreds.NewIssuer([]byte("k")), noJobs{}, slog.New(slog.DiscardHandler)))
	tb.Cleanup(func() { srv.Close(); objs.Close() })
	return s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL), UsePathStyle: true, RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""), DisableLogOutputChecksumValidationSkipped: true})
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != code {
		t.Fatalf("got %v, want %s", err, code)
	}
}

func put(t *testing.T, c *s3.Client, bucket, key, body string) string {
	t.Helper()
	out, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader(body)})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.VersionId)
}

func get(t *testing.T, c *s3.Client, bucket, key, version string) (string, error) {
	t.Helper()
	in := &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}
	if version != "" {
		in.VersionId = aws.String(version)
	}
	out, err := c.GetObject(ctx, in)
	if err != nil {
		return "", err
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	return string(b), err
}

func TestVersionedObjects(t *testing.T) {
	c := newClient(t)
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("bkt")}); err != nil {
		t.Fatal(err)
	}
	_, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("bkt")})
	wantCode(t, err, "BucketAlreadyExists")

	if v := put(t, c, "bkt", "k", "unversioned"); v != "" {
		t.Fatalf("unversioned bucket gave version %q", v)
	}
	if _, err := c.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: aws.String("bkt"),
		VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled}}); err != nil {
		t.Fatal(err)
	}
	v1 := put(t, c, "bkt", "k", "one")
	v2 := put(t, c, "bkt", "k", "two")
	if v1 == "" || v2 == "" || v1 == v2 {
		t.Fatalf("versions %q and %q", v1, v2)
	}
	for version, want := range map[string]string{"": "two", v1: "one", v2: "two"} {
		if got, err := get(t, c, "bkt", "k", version); err != nil || got != want {
			t.Fatalf("version %q: %q (%v), want %q", version, got, err, want)
		}
	}
	head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("bkt"), Key: aws.String("k")})
	if err != nil || aws.ToString(head.VersionId) != v2 || aws.ToInt64(head.ContentLength) != 3 {
		t.Fatalf("head: %+v %v", head, err)
	}
	_, err = get(t, c, "bkt", "k", "0000000000000000000000000000000a")
	wantCode(t, err, "NoSuchVersion")

	del, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("bkt"), Key: aws.String("k")})
	if err != nil || !aws.ToBool(del.DeleteMarker) {
		t.Fatalf("delete: %+v %v, want a delete marker", del, err)
	}
	_, err = get(t, c, "bkt", "k", "")
	wantCode(t, err, "NoSuchKey")
	if got, err := get(t, c, "bkt", "k", v1); err != nil || got != "one" {
		t.Fatalf("an old version after a delete marker: %q %v", got, err)
	}
	versions, err := c.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String("bkt")})
	if err != nil || len(versions.Versions) != 3 || len(versions.DeleteMarkers) != 1 || !aws.ToBool(versions.DeleteMarkers[0].IsLatest) {
		t.Fatalf("versions %+v %v: want 3 versions and a latest delete marker", versions, err)
	}
	// Removing the delete marker brings the newest version back.
	if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("bkt"), Key: aws.String("k"), VersionId: versions.DeleteMarkers[0].VersionId}); err != nil {
		t.Fatal(err)
	}
	if got, err := get(t, c, "bkt", "k", ""); err != nil || got != "two" {
		t.Fatalf("after removing the delete marker: %q %v", got, err)
	}
	_, err = c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String("bkt")})
	wantCode(t, err, "BucketNotEmpty")
	_, err = get(t, c, "nobucket", "k", "")
	wantCode(t, err, "NoSuchBucket")
}

func TestListingWithPrefixesDelimitersAndPages(t *testing.T) {
	c := newClient(t)
	c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("bkt")})
	keys := []string{"a.txt", "dir/1", "dir/2", "dir/sub/3", "other/x", "z"}
	for _, k := range keys {
		put(t, c, "bkt", k, k)
	}
	out, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("bkt"), Delimiter: aws.String("/")})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range out.Contents {
		got = append(got, aws.ToString(o.Key))
	}
	for _, p := range out.CommonPrefixes {
		got = append(got, aws.ToString(p.Prefix))
	}
	if fmt.Sprint(got) != "[a.txt z dir/ other/]" {
		t.Fatalf("top level: %v", got)
	}
	var all []string
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String("bkt"), MaxKeys: aws.Int32(2)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Contents) > 2 {
			t.Fatalf("page of %d keys, asked for 2", len(page.Contents))
		}
		for _, o := range page.Contents {
			all = append(all, aws.ToString(o.Key))
		}
	}
	if fmt.Sprint(all) != fmt.Sprint(keys) {
		t.Fatalf("paged listing %v, want %v", all, keys)
	}
	under, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("bkt"), Prefix: aws.String("dir/"), Delimiter: aws.String("/")})
	if err != nil || len(under.Contents) != 2 || len(under.CommonPrefixes) != 1 || aws.ToString(under.CommonPrefixes[0].Prefix) != "dir/sub/" {
		t.Fatalf("under dir/: %+v %v", under, err)
	}
}

func TestMultipartUploadAndRanges(t *testing.T) {
	c := newClient(t)
	c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("bkt")})
	body := make([]byte, 12<<20)
	rand.Read(body)
	up := transfermanager.New(c, func(o *transfermanager.Options) { o.PartSizeBytes, o.MultipartUploadThreshold = 5<<20, 5<<20 })
	if _, err := up.UploadObject(ctx, &transfermanager.UploadObjectInput{Bucket: aws.String("bkt"), Key: aws.String("big"), Body: bytes.NewReader(body)}); err != nil {
		t.Fatal(err)
	}
	got, err := get(t, c, "bkt", "big", "")
	if err != nil || got != string(body) {
		t.Fatalf("multipart object read back %d bytes (%v), want %d identical", len(got), err, len(body))
	}
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bkt"), Key: aws.String("big"), Range: aws.String("bytes=100-199")})
	if err != nil {
		t.Fatal(err)
	}
	part, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if !bytes.Equal(part, body[100:200]) {
		t.Fatal("range read returned the wrong bytes")
	}
}

func FuzzParseAuthorization(f *testing.F) {
	f.Add("AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=abcd")
	f.Add("AWS4-HMAC-SHA256 Credential=a/b")
	f.Add("Basic xyz")
	f.Fuzz(func(t *testing.T, h string) {
		a, err := parseAuthorization(h)
		if err == nil && a.accessKeyID != "" && !strings.Contains(h, a.accessKeyID) {
			t.Fatalf("access key %q not taken from the header", a.accessKeyID)
		}
	})
}
