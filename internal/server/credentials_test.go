package server

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	cp "github.com/aws/aws-sdk-go-v2/service/codepipeline"
	"github.com/aws/aws-sdk-go-v2/service/codepipeline/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
)

func s3Client(url string, creds aws.CredentialsProvider) *s3.Client {
	return s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(url), UsePathStyle: true, Credentials: creds, RetryMaxAttempts: 1,
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
		Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""), RetryMaxAttempts: 1})
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
