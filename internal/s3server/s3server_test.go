package s3server

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	sluicecreds "github.com/sluicehq/sluice/internal/credentials"
	"github.com/sluicehq/sluice/internal/objects"
	"github.com/sluicehq/sluice/internal/sdktest"
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
	srv := httptest.NewServer(New(Config{Store: objs, Issuer: sluicecreds.NewIssuer([]byte("k")), Jobs: noJobs{}, Logger: slog.New(slog.DiscardHandler)}))
	tb.Cleanup(func() { srv.Close(); objs.Close() })
	return s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL), UsePathStyle: true, Retryer: sdktest.ConnectionRetries(),
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""), DisableLogOutputChecksumValidationSkipped: true})
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != code {
		t.Fatalf("got %v, want %s", err, code)
	}
}

func put(t testing.TB, c *s3.Client, bucket, key, body string) string {
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

// jobID is the job whose credentials the tests below sign with.
const jobID = "11111111-2222-3333-4444-555555555555"

// oneJob answers for a server whose one job, running, reads bkt/in and "bkt/in dir/a b" and
// writes bkt/out.
type oneJob struct{}

func (oneJob) JobObjects(_ context.Context, id string) ([]Location, []Location, bool, error) {
	if id != jobID {
		return nil, nil, false, nil
	}
	return []Location{{"bkt", "in"}, {"bkt", "in dir/a b"}}, []Location{{"bkt", "out"}}, true, nil
}

// newJobServer serves the bucket bkt, holding the job's objects and others, and returns the
// server's URL, a client with the job's credentials and one with ordinary credentials.
func newJobServer(t testing.TB) (string, *s3.Client, *s3.Client) {
	t.Helper()
	objs, err := objects.Open(ctx, filepath.Join(t.TempDir(), "objects"))
	if err != nil {
		t.Fatal(err)
	}
	issuer := sluicecreds.NewIssuer([]byte("k"))
	srv := httptest.NewServer(New(Config{Store: objs, Issuer: issuer, Jobs: oneJob{}, Logger: slog.New(slog.DiscardHandler)}))
	t.Cleanup(func() { srv.Close(); objs.Close() })
	client := func(creds aws.CredentialsProvider) *s3.Client {
		return s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL), UsePathStyle: true, Retryer: sdktest.ConnectionRetries(),
			Credentials: creds, DisableLogOutputChecksumValidationSkipped: true})
	}
	jc := issuer.ForJob(jobID)
	job := client(credentials.NewStaticCredentialsProvider(jc.AccessKeyID, jc.SecretAccessKey, jc.SessionToken))
	root := client(credentials.NewStaticCredentialsProvider("test", "test", ""))
	if _, err := root.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("bkt")}); err != nil {
		t.Fatal(err)
	}
	for key, body := range map[string]string{"in": "in", "in dir/a b": "in too", "out": "out",
		"secret": "secret", "in dir/a+b": "secret", "in?versionId=1": "secret", "in dir": "secret"} {
		put(t, root, "bkt", key, body)
	}
	return srv.URL, job, root
}

// FuzzJobCopySource checks that whatever x-amz-copy-source a job sends, the copy that runs, if
// any, reads an object the job may read: the source checked is the source copied.
func FuzzJobCopySource(f *testing.F) {
	for _, s := range []string{"bkt/in", "/bkt/in", "bkt%2Fin", "bkt/in?versionId=null", "bkt/in dir%2Fa b", "bkt/in+dir/a+b",
		"bkt/in%20dir/a%20b", "bkt%2Fin%20dir%2Fa%2Bb", "bkt/in dir/a%2Bb", "bkt/in%3FversionId=1", "bkt%2Fin%3FversionId%3D1",
		"bkt/in?versionId=1", "bkt/secret", "//bkt/secret", "bkt/in/../secret", "bkt?/in", "bkt/in dir?x=/a b", "bkt/in?versionId=1&versionId=2", "bkt/out"} {
		f.Add(s)
	}
	url, job, root := newJobServer(f)
	f.Fuzz(func(t *testing.T, source string) {
		put(t, root, "bkt", "out", "out")
		_, err := job.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("bkt"), Key: aws.String("out"), CopySource: aws.String(source)})
		if err != nil {
			return
		}
		if got, err := get(t, root, "bkt", "out", ""); err != nil || (got != "in" && got != "in too" && got != "out") {
			t.Fatalf("a copy from %q with job credentials (at %s) wrote %q (%v) to its output", source, url, got, err)
		}
	})
}

// TestJobCopySources checks how a job's copy source is read: URL-encoded, whole or key alone, with
// an optional leading slash and version.
func TestJobCopySources(t *testing.T) {
	_, job, root := newJobServer(t)
	for source, want := range map[string]string{
		"bkt/in": "in", "/bkt/in": "in", "bkt%2Fin": "in", "bkt/in?versionId=null": "in", "bkt/in%20dir/a%20b": "in too",
		"bkt/in+dir/a+b": "in too", "bkt%2Fin+dir%2Fa+b": "in too", "/bkt/out": "out",
		"bkt/secret": "AccessDenied", "bkt/in%2Bdir/a%2Bb": "AccessDenied", "bkt/in dir/a%2Bb": "AccessDenied",
		"bkt/in%3FversionId=1": "AccessDenied", "bkt/in/../secret": "AccessDenied", "other/in": "AccessDenied",
		"bkt": "InvalidArgument", "bkt/in?acl": "InvalidArgument", "bkt/in?versionId=1&versionId=2": "InvalidArgument",
	} {
		put(t, root, "bkt", "out", "out")
		_, err := job.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("bkt"), Key: aws.String("out"), CopySource: aws.String(source)})
		if want == "AccessDenied" || want == "InvalidArgument" {
			wantCode(t, err, want)
			continue
		}
		if got, err := get(t, root, "bkt", "out", ""); err != nil || got != want {
			t.Fatalf("copy from %q: %q (%v), want %q", source, got, err, want)
		}
	}
}

// jobRequest returns a request signed in its header with the job's credentials.
func jobRequest(t *testing.T, method, url, body string, header http.Header) *http.Request {
	t.Helper()
	r, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	maps.Copy(r.Header, header)
	sum := sha256.Sum256([]byte(body))
	r.Header.Set("X-Amz-Content-Sha256", hex.EncodeToString(sum[:]))
	c := sluicecreds.NewIssuer([]byte("k")).ForJob(jobID)
	creds := aws.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken}
	if err := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true }).
		SignHTTP(ctx, creds, r, r.Header.Get("X-Amz-Content-Sha256"), "s3", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	return r
}

// send makes a request and returns its status and the code of the S3 error it answers, if any.
func send(t *testing.T, r *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e struct{ Code string }
	if raw, _ := io.ReadAll(resp.Body); resp.StatusCode >= 300 {
		xml.Unmarshal(raw, &e)
	}
	return resp.StatusCode, e.Code
}

// TestJobRequestsDenyByDefault checks requests with job credentials that gofakes3 would serve
// in some way but that are no object operation on the job's objects: all are refused.
func TestJobRequestsDenyByDefault(t *testing.T) {
	url, _, root := newJobServer(t)
	form := "--b\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nout\r\n--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f\"\r\n\r\nposted\r\n--b--\r\n"
	for _, c := range []struct {
		method, path, body string
		header             http.Header
		want               string // AccessDenied unless set
	}{
		{"POST", "/bkt", form, http.Header{"Content-Type": {"multipart/form-data; boundary=b"}}, ""}, // a browser upload
		{"POST", "/bkt/out", "", nil, ""},
		{"PUT", "/bkt/out?versionId=1", "x", nil, ""},
		{"PUT", "/bkt/out?uploadId=1&partNumber=1", "", http.Header{"X-Amz-Copy-Source": {"bkt/secret"}}, ""}, // UploadPartCopy
		{"GET", "/bkt/out", "", http.Header{"X-Amz-Copy-Source": {"bkt/in"}}, ""},
		{"PUT", "/bkt/out", "", http.Header{"X-Amz-Copy-Source": {"bkt/in", "bkt/secret"}}, "InvalidArgument"},
		{"GET", "/bkt/out?uploads", "", nil, ""},
		{"GET", "/bkt/out?versions", "", nil, ""},
		{"PUT", "/bkt/out?versioning", "<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>", nil, ""},
		{"GET", "/bkt/?location", "", nil, ""},
		{"PATCH", "/bkt/out", "", nil, ""},
		{"GET", "/", "", nil, ""},
	} {
		want := cmp.Or(c.want, "AccessDenied")
		if status, code := send(t, jobRequest(t, c.method, url+c.path, c.body, c.header)); status < 400 || code != want {
			t.Errorf("%s %s %v: %d %s, want %s", c.method, c.path, c.header, status, code, want)
		}
	}
	if got, err := get(t, root, "bkt", "out", ""); err != nil || got != "out" {
		t.Fatalf("the job's output after refused requests: %q %v", got, err)
	}
	v, err := root.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: aws.String("bkt")})
	if err != nil || v.Status != "" {
		t.Fatalf("versioning after a refused change: %+v %v", v, err)
	}
}

// TestJobMultiObjectDelete checks deletes of many objects with job credentials: all writable, or
// none deleted; the body bounded.
func TestJobMultiObjectDelete(t *testing.T) {
	url, _, root := newJobServer(t)
	deleteBody := func(keys ...string) string {
		b := "<Delete>"
		for _, k := range keys {
			b += "<Object><Key>" + k + "</Key></Object>"
		}
		return b + "</Delete>"
	}
	for body, want := range map[string]string{
		deleteBody("out", "secret"):                    "AccessDenied",
		deleteBody("out", "in"):                        "AccessDenied",
		deleteBody("out", "out/../secret"):             "AccessDenied",
		"<Delete><Object><Key>out</Key></Object>":      "MalformedXML",
		deleteBody(strings.Repeat("o", maxDeleteBody)): "MaxMessageLengthExceeded",
	} {
		if _, code := send(t, jobRequest(t, "POST", url+"/bkt?delete", body, nil)); code != want {
			t.Errorf("delete of %.60q: %s, want %s", body, code, want)
		}
	}
	for _, key := range []string{"out", "secret", "in"} {
		if _, err := get(t, root, "bkt", key, ""); err != nil {
			t.Fatalf("bkt/%s after refused deletes: %v", key, err)
		}
	}
	if status, code := send(t, jobRequest(t, "POST", url+"/bkt?delete", deleteBody("out"), nil)); status != http.StatusOK {
		t.Fatalf("the job deleting its output: %d %s", status, code)
	}
	_, err := get(t, root, "bkt", "out", "")
	wantCode(t, err, "NoSuchKey")
}

// TestJobPresignedURLParameters checks presigned URLs with job credentials whose query is not
// what SigV4 presigning makes, and other ways of signing with job credentials.
func TestJobPresignedURLParameters(t *testing.T) {
	url, job, _ := newJobServer(t)
	c := sluicecreds.NewIssuer([]byte("k")).ForJob(jobID)
	creds := aws.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken}
	presign := func(path, expires string, at time.Time) string {
		r, _ := http.NewRequest("GET", url+path, nil)
		q := r.URL.Query()
		q.Set("X-Amz-Expires", expires)
		r.URL.RawQuery = q.Encode()
		signed, _, err := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true }).
			PresignHTTP(ctx, creds, r, "UNSIGNED-PAYLOAD", "s3", "us-east-1", at)
		if err != nil {
			t.Fatal(err)
		}
		return signed
	}
	now := time.Now()
	valid := presign("/bkt/in", "60", now)
	for _, tc := range []struct {
		url           string
		status        int
		code          string
		authorization string
	}{
		{valid, http.StatusOK, "", ""},
		{presign("/bkt/secret", "60", now), http.StatusForbidden, "AccessDenied", ""},
		{presign("/bkt/in", "60", now.Add(-2*time.Minute)), http.StatusForbidden, "AccessDenied", ""},       // expired
		{presign("/bkt/in", "60", now.Add(time.Hour)), http.StatusForbidden, "AccessDenied", ""},            // not valid yet
		{presign("/bkt/in", "604801", now), http.StatusBadRequest, "AuthorizationQueryParametersError", ""}, // past a week
		{presign("/bkt/in", "soon", now), http.StatusBadRequest, "AuthorizationQueryParametersError", ""},   // not a number
		{strings.Replace(valid, "X-Amz-Date=", "X-Amz-Dat=", 1), http.StatusBadRequest, "AuthorizationQueryParametersError", ""},
		{valid + "&X-Amz-Expires=604800", http.StatusBadRequest, "AuthorizationQueryParametersError", ""}, // twice
		{valid + "&versionId=1", http.StatusForbidden, "SignatureDoesNotMatch", ""},                       // not signed
		{strings.Replace(valid, "X-Amz-Algorithm=AWS4-HMAC-SHA256", "X-Amz-Algorithm=AWS4-ECDSA-P256-SHA256", 1), http.StatusBadRequest, "InvalidRequest", ""},
		{url + "/bkt/secret?AWSAccessKeyId=" + c.AccessKeyID + "&Signature=x&Expires=9999999999", http.StatusBadRequest, "InvalidRequest", ""}, // SigV2
		{url + "/bkt/secret", http.StatusBadRequest, "InvalidRequest", "AWS " + c.AccessKeyID + ":x"},                                          // SigV2
		{url + "/bkt/secret", http.StatusBadRequest, "InvalidRequest", "AWS4-ECDSA-P256-SHA256 Credential=" + c.AccessKeyID + "/20260101/s3/aws4_request, SignedHeaders=host, Signature=00"},
		{valid, http.StatusBadRequest, "InvalidArgument", "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00"},
		// Ordinary credentials are not checked, however they sign.
		{url + "/bkt/secret?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=test%2F20260101%2Fus-east-1%2Fs3%2Faws4_request", http.StatusOK, "",
			"AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00"},
		{url + "/bkt/secret?AWSAccessKeyId=test&Signature=x&Expires=1", http.StatusOK, "", ""},
	} {
		r, _ := http.NewRequest("GET", tc.url, nil)
		if tc.authorization != "" {
			r.Header.Set("Authorization", tc.authorization)
		}
		if status, code := send(t, r); status != tc.status || code != tc.code {
			t.Errorf("GET %s (%s): %d %s, want %d %s", tc.url, tc.authorization, status, code, tc.status, tc.code)
		}
	}
	// The SDK's own presigner, with its x-id and its hoisted headers.
	req, err := s3.NewPresignClient(job).PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bkt"), Key: aws.String("in dir/a b"),
		ResponseContentType: aws.String("text/plain"), ExpectedBucketOwner: aws.String("000000000000")})
	if err != nil {
		t.Fatal(err)
	}
	r, _ := http.NewRequest(req.Method, req.URL, nil)
	if status, code := send(t, r); status != http.StatusOK {
		t.Fatalf("GET %s: %d %s", req.URL, status, code)
	}
}

// TestWritesAreHeardBeforeTheyAreAnswered: every object version written — put, copy, completed
// multipart upload — is told to Written with its version before the client gets its answer, and
// a write that cannot be told fails.
func TestWritesAreHeardBeforeTheyAreAnswered(t *testing.T) {
	objs, err := objects.Open(ctx, filepath.Join(t.TempDir(), "objects"))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var heard []string
	var refuse error
	written := func(_ context.Context, bucket, key, version string) error {
		mu.Lock()
		defer mu.Unlock()
		if refuse != nil {
			return refuse
		}
		heard = append(heard, bucket+"/"+key+"@"+version)
		return nil
	}
	srv := httptest.NewServer(New(Config{Store: objs, Issuer: sluicecreds.NewIssuer([]byte("k")), Jobs: noJobs{}, Written: written, Logger: slog.New(slog.DiscardHandler)}))
	t.Cleanup(func() { srv.Close(); objs.Close() })
	c := s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL), UsePathStyle: true, Retryer: sdktest.ConnectionRetries(),
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""), DisableLogOutputChecksumValidationSkipped: true})
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("src")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: aws.String("src"),
		VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled}}); err != nil {
		t.Fatal(err)
	}
	put, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("src"), Key: aws.String("app.zip"), Body: strings.NewReader("v1")})
	if err != nil {
		t.Fatal(err)
	}
	copied, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("src"), Key: aws.String("copy.zip"), CopySource: aws.String("src/app.zip")})
	if err != nil {
		t.Fatal(err)
	}
	if head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("src"), Key: aws.String("copy.zip")}); err != nil || aws.ToString(head.VersionId) != aws.ToString(copied.VersionId) {
		t.Fatalf("CopyObject answered version %s; the copy is version %v (%v)", aws.ToString(copied.VersionId), head, err)
	}
	up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("src"), Key: aws.String("big.zip")})
	if err != nil {
		t.Fatal(err)
	}
	part, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("src"), Key: aws.String("big.zip"), UploadId: up.UploadId, PartNumber: aws.Int32(1), Body: strings.NewReader("parts")})
	if err != nil {
		t.Fatal(err)
	}
	done, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("src"), Key: aws.String("big.zip"), UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{ETag: part.ETag, PartNumber: aws.Int32(1)}}}})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"src/app.zip@" + aws.ToString(put.VersionId), "src/copy.zip@" + aws.ToString(copied.VersionId), "src/big.zip@" + aws.ToString(done.VersionId)}
	mu.Lock()
	got := slices.Clone(heard)
	refuse = errors.New("the store is down")
	mu.Unlock()
	if !slices.Equal(got, want) {
		t.Fatalf("heard %v, want %v", got, want)
	}
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("src"), Key: aws.String("app.zip"), Body: strings.NewReader("v2")}); err == nil {
		t.Fatal("a write that could not be heard of was acknowledged")
	}
}
