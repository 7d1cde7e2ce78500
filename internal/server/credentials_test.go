package server

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"github.com/sluicehq/sluice/internal/sdktest"
	"io"
	"net/http"
	neturl "net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	cp "github.com/aws/aws-sdk-go-v2/service/codepipeline"
	"github.com/aws/aws-sdk-go-v2/service/codepipeline/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

func s3Client(url string, creds aws.CredentialsProvider) *s3.Client {
	return s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(url), UsePathStyle: true, Credentials: creds, Retryer: sdktest.ConnectionRetries(),
		DisableLogOutputChecksumValidationSkipped: true})
}

func jobCreds(j types.Job) aws.CredentialsProvider {
	c := j.Data.ArtifactCredentials
	return credentials.NewStaticCredentialsProvider(aws.ToString(c.AccessKeyId), aws.ToString(c.SecretAccessKey), aws.ToString(c.SessionToken))
}

func outputKey(j types.Job) (string, string) {
	loc := j.Data.OutputArtifacts[0].Location.S3Location
	return aws.ToString(loc.BucketName), aws.ToString(loc.ObjectKey)
}

func wantS3Error(t *testing.T, err error, code string) {
	t.Helper()
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != code {
		t.Fatalf("got %v, want %s", err, code)
	}
}

// TestJobCredentialsReachOnlyTheirJobsArtifacts checks the built-in S3 endpoint's hold on job
// credentials: each job's reach its own artifacts, not another job's, and nothing once the job ends.
func TestJobCredentialsReachOnlyTheirJobsArtifacts(t *testing.T) {
	ctx := context.Background()
	url := serveTB(t, Config{StartOnCreate: true})
	client := cp.New(cp.Options{Region: "us-east-1", BaseEndpoint: aws.String(url),
		Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""), Retryer: sdktest.ConnectionRetries()})
	id := &types.ActionTypeId{Category: types.ActionCategorySource, Owner: types.ActionOwnerCustom, Provider: aws.String("Fetch"), Version: aws.String("1")}
	if _, err := client.CreateCustomActionType(ctx, &cp.CreateCustomActionTypeInput{Category: id.Category, Provider: id.Provider, Version: id.Version,
		InputArtifactDetails: &types.ArtifactDetails{}, OutputArtifactDetails: &types.ArtifactDetails{MaximumCount: 1}}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"one", "two"} {
		_, err := client.CreatePipeline(ctx, &cp.CreatePipelineInput{Pipeline: &types.PipelineDeclaration{
			Name: aws.String(name), RoleArn: aws.String("arn:aws:iam::123456789012:role/cp"),
			ArtifactStore: &types.ArtifactStore{Type: types.ArtifactStoreTypeS3, Location: aws.String("artifacts")},
			Stages: []types.StageDeclaration{
				{Name: aws.String("Source"), Actions: []types.ActionDeclaration{{Name: aws.String("fetch"), ActionTypeId: id,
					OutputArtifacts: []types.OutputArtifact{{Name: aws.String("out")}}}}},
				{Name: aws.String("Approve"), Actions: []types.ActionDeclaration{{Name: aws.String("ok"),
					ActionTypeId: &types.ActionTypeId{Category: types.ActionCategoryApproval, Owner: types.ActionOwnerAws, Provider: aws.String("Manual"), Version: aws.String("1")}}}},
			},
		}})
		if err != nil {
			t.Fatal(err)
		}
	}
	polled, err := client.PollForJobs(ctx, &cp.PollForJobsInput{ActionTypeId: id, MaxBatchSize: aws.Int32(2)})
	if err != nil || len(polled.Jobs) != 2 {
		t.Fatalf("polled %v jobs (%v), want 2", polled, err)
	}
	a, b := polled.Jobs[0], polled.Jobs[1]
	asA := s3Client(url, jobCreds(a))
	bucketA, keyA := outputKey(a)
	bucketB, keyB := outputKey(b)
	put := func(c *s3.Client, bucket, key string) error {
		_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader("zip bytes")})
		return err
	}
	if err := put(asA, bucketA, keyA); err != nil {
		t.Fatalf("job A writing its own output: %v", err)
	}
	if _, err := asA.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucketA), Key: aws.String(keyA)}); err != nil {
		t.Fatalf("job A reading its own output: %v", err)
	}
	wantS3Error(t, put(asA, bucketB, keyB), "AccessDenied")
	_, err = asA.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucketA), Key: aws.String("one/elsewhere")})
	wantS3Error(t, err, "AccessDenied")
	_, err = asA.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucketA)})
	wantS3Error(t, err, "AccessDenied")

	forged := a.Data.ArtifactCredentials
	wrongSecret := credentials.NewStaticCredentialsProvider(aws.ToString(forged.AccessKeyId), "not-the-secret", aws.ToString(forged.SessionToken))
	wantS3Error(t, put(s3Client(url, wrongSecret), bucketA, keyA), "SignatureDoesNotMatch")
	wrongToken := credentials.NewStaticCredentialsProvider(aws.ToString(forged.AccessKeyId), aws.ToString(forged.SecretAccessKey), "forged")
	wantS3Error(t, put(s3Client(url, wrongToken), bucketA, keyA), "InvalidToken")

	if _, err := client.AcknowledgeJob(ctx, &cp.AcknowledgeJobInput{JobId: a.Id, Nonce: a.Nonce}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.PutJobSuccessResult(ctx, &cp.PutJobSuccessResultInput{JobId: a.Id}); err != nil {
		t.Fatal(err)
	}
	wantS3Error(t, put(asA, bucketA, keyA), "ExpiredToken")
	if err := put(s3Client(url, jobCreds(b)), bucketB, keyB); err != nil {
		t.Fatalf("job B, still running, writing its output: %v", err)
	}
	// Ordinary credentials are not checked: local authentication is off.
	anyone := s3Client(url, credentials.NewStaticCredentialsProvider("test", "test", ""))
	if _, err := anyone.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucketA), Key: aws.String(keyA)}); err != nil {
		t.Fatalf("reading with ordinary credentials: %v", err)
	}
}

// buildJobs serves two pipelines, "one" and "two", in each of which a custom source action's
// output is the input of a custom build action, and returns the build jobs of both, running: each
// reads its own pipeline's source output and writes an output of its own.
func buildJobs(t *testing.T) (url string, client *cp.Client, one, two types.Job) {
	t.Helper()
	ctx := context.Background()
	url = serveTB(t, Config{StartOnCreate: true})
	client = cp.New(cp.Options{Region: "us-east-1", BaseEndpoint: aws.String(url),
		Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""), Retryer: sdktest.ConnectionRetries()})
	fetch := &types.ActionTypeId{Category: types.ActionCategorySource, Owner: types.ActionOwnerCustom, Provider: aws.String("Fetch"), Version: aws.String("1")}
	build := &types.ActionTypeId{Category: types.ActionCategoryBuild, Owner: types.ActionOwnerCustom, Provider: aws.String("Make"), Version: aws.String("1")}
	for _, id := range []*types.ActionTypeId{fetch, build} {
		in := &types.ArtifactDetails{}
		if id == build {
			in.MinimumCount, in.MaximumCount = 1, 1
		}
		if _, err := client.CreateCustomActionType(ctx, &cp.CreateCustomActionTypeInput{Category: id.Category, Provider: id.Provider, Version: id.Version,
			InputArtifactDetails: in, OutputArtifactDetails: &types.ArtifactDetails{MaximumCount: 1}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"one", "two"} {
		_, err := client.CreatePipeline(ctx, &cp.CreatePipelineInput{Pipeline: &types.PipelineDeclaration{
			Name: aws.String(name), RoleArn: aws.String("arn:aws:iam::123456789012:role/cp"),
			ArtifactStore: &types.ArtifactStore{Type: types.ArtifactStoreTypeS3, Location: aws.String("artifacts")},
			Stages: []types.StageDeclaration{
				{Name: aws.String("Source"), Actions: []types.ActionDeclaration{{Name: aws.String("fetch"), ActionTypeId: fetch,
					OutputArtifacts: []types.OutputArtifact{{Name: aws.String("src")}}}}},
				{Name: aws.String("Build"), Actions: []types.ActionDeclaration{{Name: aws.String("make"), ActionTypeId: build,
					InputArtifacts: []types.InputArtifact{{Name: aws.String("src")}}, OutputArtifacts: []types.OutputArtifact{{Name: aws.String("built")}}}}},
			},
		}})
		if err != nil {
			t.Fatal(err)
		}
	}
	sources := pollJobs(t, client, fetch)
	for _, j := range sources {
		bucket, key := outputKey(j)
		if _, err := s3Client(url, jobCreds(j)).PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key),
			Body: strings.NewReader("source of " + pipelineOf(j))}); err != nil {
			t.Fatal(err)
		}
		endJob(t, client, j)
	}
	builds := pollJobs(t, client, build)
	return url, client, builds[0], builds[1]
}

// pollJobs polls for the two jobs of an action type, one per pipeline, and returns them in
// pipeline order.
func pollJobs(t *testing.T, client *cp.Client, id *types.ActionTypeId) []types.Job {
	t.Helper()
	var jobs []types.Job
	for deadline := time.Now().Add(10 * time.Second); len(jobs) < 2 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		out, err := client.PollForJobs(context.Background(), &cp.PollForJobsInput{ActionTypeId: id, MaxBatchSize: aws.Int32(2)})
		if err != nil {
			t.Fatal(err)
		}
		jobs = append(jobs, out.Jobs...)
	}
	if len(jobs) != 2 {
		t.Fatalf("polled %d jobs of %s, want 2", len(jobs), aws.ToString(id.Provider))
	}
	slices.SortFunc(jobs, func(a, b types.Job) int { return strings.Compare(pipelineOf(a), pipelineOf(b)) })
	return jobs
}

func pipelineOf(j types.Job) string { return aws.ToString(j.Data.PipelineContext.PipelineName) }

// endJob reports a job's success, which ends it.
func endJob(t *testing.T, client *cp.Client, j types.Job) {
	t.Helper()
	ctx := context.Background()
	if _, err := client.AcknowledgeJob(ctx, &cp.AcknowledgeJobInput{JobId: j.Id, Nonce: j.Nonce}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.PutJobSuccessResult(ctx, &cp.PutJobSuccessResultInput{JobId: j.Id}); err != nil {
		t.Fatal(err)
	}
}

func inputKey(j types.Job) (string, string) {
	loc := j.Data.InputArtifacts[0].Location.S3Location
	return aws.ToString(loc.BucketName), aws.ToString(loc.ObjectKey)
}

func anyone(url string) *s3.Client {
	return s3Client(url, credentials.NewStaticCredentialsProvider("test", "test", ""))
}

func read(c *s3.Client, bucket, key string) (string, error) {
	out, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return "", err
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	return string(b), err
}

func write(c *s3.Client, bucket, key, body string) error {
	_, err := c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader(body)})
	return err
}

// TestJobCredentialsCopyOnlyFromTheirOwnArtifacts checks that a copy with job credentials needs
// both ends in the job's reach: the source readable, the destination writable.
func TestJobCredentialsCopyOnlyFromTheirOwnArtifacts(t *testing.T) {
	ctx := context.Background()
	url, _, mine, other := buildJobs(t)
	asMine, root := s3Client(url, jobCreds(mine)), anyone(url)
	inBucket, inKey := inputKey(mine)
	outBucket, outKey := outputKey(mine)
	otherBucket, otherKey := inputKey(other)
	if _, err := root.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("elsewhere")}); err != nil {
		t.Fatal(err)
	}
	if err := write(root, "elsewhere", "secret", "secret"); err != nil {
		t.Fatal(err)
	}
	copyTo := func(c *s3.Client, source, bucket, key string) error {
		_, err := c.CopyObject(ctx, &s3.CopyObjectInput{CopySource: aws.String(source), Bucket: aws.String(bucket), Key: aws.String(key)})
		return err
	}
	for _, source := range []string{
		"elsewhere/secret", "/elsewhere/secret", "elsewhere%2Fsecret", "elsewhere/secret?versionId=null",
		otherBucket + "/" + otherKey, "/" + otherBucket + "/" + neturl.PathEscape(otherKey),
		inBucket + "/" + inKey + "/../../../" + otherKey, inBucket + "/" + outKey + "x",
	} {
		wantS3Error(t, copyTo(asMine, source, outBucket, outKey), "AccessDenied")
	}
	if _, err := read(root, outBucket, outKey); err == nil {
		t.Fatal("a refused copy wrote the job's output")
	}
	// The destination must be one of the job's outputs, whatever the source.
	wantS3Error(t, copyTo(asMine, inBucket+"/"+inKey, "elsewhere", "copied"), "AccessDenied")
	wantS3Error(t, copyTo(asMine, inBucket+"/"+inKey, inBucket, inKey), "AccessDenied")

	for _, source := range []string{inBucket + "/" + inKey, "/" + inBucket + "/" + neturl.PathEscape(inKey), neturl.QueryEscape(inBucket + "/" + inKey)} {
		if err := copyTo(asMine, source, outBucket, outKey); err != nil {
			t.Fatalf("copying the job's input %s to its output: %v", source, err)
		}
	}
	if got, err := read(root, outBucket, outKey); err != nil || got != "source of one" {
		t.Fatalf("the job's output after copying its input: %q %v", got, err)
	}
	if err := copyTo(root, "elsewhere/secret", "elsewhere", "copied"); err != nil {
		t.Fatalf("a copy with ordinary credentials: %v", err)
	}
}

// TestJobCredentialsDeleteOnlyTheirOutputs checks deletes with job credentials, one object or
// many at a time: only the job's outputs, and a request naming any other object deletes nothing.
func TestJobCredentialsDeleteOnlyTheirOutputs(t *testing.T) {
	ctx := context.Background()
	url, _, mine, other := buildJobs(t)
	asMine, root := s3Client(url, jobCreds(mine)), anyone(url)
	inBucket, inKey := inputKey(mine)
	outBucket, outKey := outputKey(mine)
	otherBucket, otherKey := outputKey(other)
	if err := write(asMine, outBucket, outKey, "built"); err != nil {
		t.Fatal(err)
	}
	if err := write(s3Client(url, jobCreds(other)), otherBucket, otherKey, "other"); err != nil {
		t.Fatal(err)
	}
	deleteAll := func(c *s3.Client, bucket string, keys ...string) error {
		del := &s3types.Delete{}
		for _, k := range keys {
			del.Objects = append(del.Objects, s3types.ObjectIdentifier{Key: aws.String(k)})
		}
		out, err := c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String(bucket), Delete: del})
		if err == nil && len(out.Errors) > 0 {
			err = fmt.Errorf("%s: %s", aws.ToString(out.Errors[0].Key), aws.ToString(out.Errors[0].Message))
		}
		return err
	}
	wantS3Error(t, deleteAll(asMine, outBucket, outKey, otherKey), "AccessDenied")
	wantS3Error(t, deleteAll(asMine, outBucket, outKey, inKey), "AccessDenied")
	_, err := asMine.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(inBucket), Key: aws.String(inKey)})
	wantS3Error(t, err, "AccessDenied")
	for _, o := range [][2]string{{outBucket, outKey}, {otherBucket, otherKey}, {inBucket, inKey}} {
		if _, err := read(root, o[0], o[1]); err != nil {
			t.Fatalf("s3://%s/%s after refused deletes: %v", o[0], o[1], err)
		}
	}

	if err := deleteAll(asMine, outBucket, outKey); err != nil {
		t.Fatalf("the job deleting its own output: %v", err)
	}
	_, err = read(root, outBucket, outKey)
	wantS3Error(t, err, "NoSuchKey")
	if err := deleteAll(root, otherBucket, otherKey); err != nil {
		t.Fatalf("a delete with ordinary credentials: %v", err)
	}
}

// presigned makes a request to a presigned URL and returns the response's status, and the code
// of the S3 error it carries, if any.
func presigned(t *testing.T, req *v4.PresignedHTTPRequest, body string) (int, string) {
	t.Helper()
	r, err := http.NewRequest(req.Method, req.URL, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range req.SignedHeader {
		if k != "Host" {
			r.Header[k] = v
		}
	}
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e struct{ Code string }
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		xml.Unmarshal(raw, &e)
	}
	return resp.StatusCode, e.Code
}

// signedAnHourAgo presigns URLs as if an hour ago.
type signedAnHourAgo struct{ *v4.Signer }

func (s signedAnHourAgo) PresignHTTP(ctx context.Context, creds aws.Credentials, r *http.Request, payloadHash, service, region string,
	at time.Time, optFns ...func(*v4.SignerOptions)) (string, http.Header, error) {
	return s.Signer.PresignHTTP(ctx, creds, r, payloadHash, service, region, at.Add(-time.Hour), optFns...)
}

// TestJobPresignedURLs checks URLs presigned with job credentials: they reach what the
// credentials reach, for as long as the URL is valid and the job runs.
func TestJobPresignedURLs(t *testing.T) {
	ctx := context.Background()
	url, client, mine, other := buildJobs(t)
	presign := s3.NewPresignClient(s3Client(url, jobCreds(mine)))
	inBucket, inKey := inputKey(mine)
	outBucket, outKey := outputKey(mine)
	otherBucket, otherKey := inputKey(other)
	getURL := func(bucket, key string, opts ...func(*s3.PresignOptions)) *v4.PresignedHTTPRequest {
		req, err := presign.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}, opts...)
		if err != nil {
			t.Fatal(err)
		}
		return req
	}
	putURL := func(bucket, key string) *v4.PresignedHTTPRequest {
		req, err := presign.PresignPutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		if err != nil {
			t.Fatal(err)
		}
		return req
	}
	want := func(req *v4.PresignedHTTPRequest, body string, status int, code string) {
		t.Helper()
		if gotStatus, gotCode := presigned(t, req, body); gotStatus != status || gotCode != code {
			t.Fatalf("%s %s: %d %q, want %d %q", req.Method, req.URL, gotStatus, gotCode, status, code)
		}
	}
	want(getURL(inBucket, inKey), "", http.StatusOK, "")
	want(getURL(otherBucket, otherKey), "", http.StatusForbidden, "AccessDenied")
	want(getURL(outBucket, "one/elsewhere"), "", http.StatusForbidden, "AccessDenied")
	want(putURL(outBucket, outKey), "built", http.StatusOK, "")
	if got, err := read(anyone(url), outBucket, outKey); err != nil || got != "built" {
		t.Fatalf("the output written through a presigned URL: %q %v", got, err)
	}
	want(putURL(inBucket, inKey), "overwritten", http.StatusForbidden, "AccessDenied")

	tampered := getURL(inBucket, inKey)
	flipped := "0"
	if strings.HasSuffix(tampered.URL, "0") {
		flipped = "1"
	}
	tampered.URL = tampered.URL[:len(tampered.URL)-1] + flipped // the signature ends the URL
	want(tampered, "", http.StatusForbidden, "SignatureDoesNotMatch")
	elsewhere := getURL(inBucket, inKey)
	elsewhere.URL = strings.Replace(elsewhere.URL, inKey, otherKey, 1)
	want(elsewhere, "", http.StatusForbidden, "SignatureDoesNotMatch")
	forged := getURL(inBucket, inKey)
	forged.URL = strings.Replace(forged.URL, "X-Amz-Security-Token=", "X-Amz-Security-Token=forged", 1)
	want(forged, "", http.StatusBadRequest, "InvalidToken")
	expired := getURL(inBucket, inKey, func(o *s3.PresignOptions) {
		o.Presigner = signedAnHourAgo{v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })}
	})
	want(expired, "", http.StatusForbidden, "AccessDenied")

	// URLs presigned with other credentials are not checked.
	want(getURL(otherBucket, otherKey, s3.WithPresignClientFromClientOptions(func(o *s3.Options) {
		o.Credentials = credentials.NewStaticCredentialsProvider("test", "test", "")
	})), "", http.StatusOK, "")

	valid := getURL(inBucket, inKey)
	endJob(t, client, mine)
	want(valid, "", http.StatusBadRequest, "ExpiredToken")
}

// underKey makes a client send its request to the path of an object in the bucket it names, as
// in /bucket/key?versions, which S3 routes by its query alone.
func underKey(key string) func(*s3.Options) {
	return func(o *s3.Options) {
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			return st.Finalize.Insert(middleware.FinalizeMiddlewareFunc("UnderKey", func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
				req := in.Request.(*smithyhttp.Request)
				req.URL.Path = strings.TrimSuffix(req.URL.Path, "/") + "/" + key
				req.URL.RawPath = ""
				return next.HandleFinalize(ctx, in)
			}), "Signing", middleware.Before)
		})
	}
}

// TestJobCredentialsRefuseBucketOperations checks that job credentials reach no listing and no
// bucket, not even through the path of the job's own artifacts, while multipart uploads of
// the job's outputs work.
func TestJobCredentialsRefuseBucketOperations(t *testing.T) {
	ctx := context.Background()
	url, _, mine, _ := buildJobs(t)
	asMine, root := s3Client(url, jobCreds(mine)), anyone(url)
	inBucket, inKey := inputKey(mine)
	bucket, outKey := outputKey(mine)
	b := aws.String(bucket)
	enable := &s3types.VersioningConfiguration{Status: s3types.BucketVersioningStatusEnabled}
	// S3 routes these by their query alone, so each is tried through the path of the job's
	// output too: /bucket/key?versions lists the bucket as /bucket?versions does.
	for name, op := range map[string]func(...func(*s3.Options)) error{
		"ListObjectVersions": func(o ...func(*s3.Options)) error {
			_, err := asMine.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: b}, o...)
			return err
		},
		"ListMultipartUploads": func(o ...func(*s3.Options)) error {
			_, err := asMine.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: b}, o...)
			return err
		},
		"GetBucketVersioning": func(o ...func(*s3.Options)) error {
			_, err := asMine.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: b}, o...)
			return err
		},
		"PutBucketVersioning": func(o ...func(*s3.Options)) error {
			_, err := asMine.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: b, VersioningConfiguration: enable}, o...)
			return err
		},
	} {
		wantS3Error(t, op(), "AccessDenied")
		if err := op(underKey(outKey)); err == nil || !strings.Contains(err.Error(), "AccessDenied") {
			t.Fatalf("%s under the job's output key: %v, want AccessDenied", name, err)
		}
	}
	_, err := asMine.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: b})
	wantS3Error(t, err, "AccessDenied")
	_, err = asMine.ListObjects(ctx, &s3.ListObjectsInput{Bucket: b})
	wantS3Error(t, err, "AccessDenied")
	_, err = asMine.GetBucketLocation(ctx, &s3.GetBucketLocationInput{Bucket: b})
	wantS3Error(t, err, "AccessDenied")
	_, err = asMine.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: b})
	wantS3Error(t, err, "AccessDenied")
	_, err = asMine.ListBuckets(ctx, &s3.ListBucketsInput{})
	wantS3Error(t, err, "AccessDenied")
	_, err = asMine.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("mine")})
	wantS3Error(t, err, "AccessDenied")
	_, err = asMine.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: b})
	if status := statusOf(err); status != http.StatusForbidden {
		t.Fatalf("HeadBucket: %v, want status 403", err)
	}
	if v, err := root.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: b}); err != nil || v.Status != "" {
		t.Fatalf("the artifact bucket's versioning after refused changes: %+v %v", v, err)
	}
	if _, err := root.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("mine")}); statusOf(err) != http.StatusNotFound {
		t.Fatalf("a bucket refused to a job: %v, want it missing", err)
	}

	// Multipart uploads: to the job's outputs only.
	up, err := asMine.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: b, Key: aws.String(outKey)})
	if err != nil {
		t.Fatal(err)
	}
	part, err := asMine.UploadPart(ctx, &s3.UploadPartInput{Bucket: b, Key: aws.String(outKey), UploadId: up.UploadId, PartNumber: aws.Int32(1), Body: strings.NewReader("in parts")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := asMine.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: b, Key: aws.String(outKey), UploadId: up.UploadId,
		MultipartUpload: &s3types.CompletedMultipartUpload{Parts: []s3types.CompletedPart{{ETag: part.ETag, PartNumber: aws.Int32(1)}}}}); err != nil {
		t.Fatal(err)
	}
	if got, err := read(root, bucket, outKey); err != nil || got != "in parts" {
		t.Fatalf("the output uploaded in parts: %q %v", got, err)
	}
	_, err = asMine.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(inBucket), Key: aws.String(inKey)})
	wantS3Error(t, err, "AccessDenied")

	// Ordinary credentials are not checked.
	if _, err := root.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: b}); err != nil {
		t.Fatalf("listing with ordinary credentials: %v", err)
	}
}

func statusOf(err error) int {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}
