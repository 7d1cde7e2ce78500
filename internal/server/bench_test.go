package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"github.com/sluicehq/sluice/internal/sdktest"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	cp "github.com/aws/aws-sdk-go-v2/service/codepipeline"
	"github.com/aws/aws-sdk-go-v2/service/codepipeline/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// serveTB runs a server configured by cfg, with the embedded stores, on a loopback port until
// the test or benchmark ends, and returns its URL.
func serveTB(tb testing.TB, cfg Config) string {
	tb.Helper()
	cfg.DataDir, cfg.AccountID, cfg.Region = tb.TempDir(), "123456789012", "us-east-1"
	srv, err := New(context.Background(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	tb.Cleanup(func() { cancel(); <-done; srv.Close() })
	return "http://" + ln.Addr().String()
}

// BenchmarkArtifactTransfer measures uploads and downloads through the built-in S3 endpoint
// (MB/s is the figure).
func BenchmarkArtifactTransfer(b *testing.B) {
	url := serveTB(b, Config{})
	c := s3Client(url, credentials.NewStaticCredentialsProvider("test", "test", ""))
	ctx := context.Background()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("bench")}); err != nil {
		b.Fatal(err)
	}
	for _, size := range []int{1 << 20, 100 << 20} {
		body := make([]byte, size)
		rand.Read(body)
		key := aws.String(fmt.Sprintf("obj-%d", size))
		b.Run(fmt.Sprintf("upload/%dMB", size>>20), func(b *testing.B) {
			b.SetBytes(int64(size))
			for b.Loop() {
				if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bench"), Key: key, Body: bytes.NewReader(body)}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("download/%dMB", size>>20), func(b *testing.B) {
			b.SetBytes(int64(size))
			for b.Loop() {
				out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bench"), Key: key})
				if err != nil {
					b.Fatal(err)
				}
				n, _ := io.Copy(io.Discard, out.Body)
				out.Body.Close()
				if n != int64(size) {
					b.Fatalf("read %d bytes, want %d", n, size)
				}
			}
		})
	}
}

// BenchmarkJobRoundTrips measures jobs per second through PollForJobs → AcknowledgeJob →
// PutJobSuccessResult with 8 concurrent workers. Executions of a two-stage pipeline of custom
// actions are started as earlier ones progress, keeping about 16 in flight.
func BenchmarkJobRoundTrips(b *testing.B) {
	ctx := context.Background()
	url := serveTB(b, Config{JobAckTimeout: time.Minute})
	client := cp.New(cp.Options{Region: "us-east-1", BaseEndpoint: aws.String(url),
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""), Retryer: sdktest.ConnectionRetries()})
	source := &types.ActionTypeId{Category: types.ActionCategorySource, Owner: types.ActionOwnerCustom, Provider: aws.String("Bench"), Version: aws.String("1")}
	build := &types.ActionTypeId{Category: types.ActionCategoryBuild, Owner: types.ActionOwnerCustom, Provider: aws.String("Bench"), Version: aws.String("1")}
	for _, id := range []*types.ActionTypeId{source, build} {
		if _, err := client.CreateCustomActionType(ctx, &cp.CreateCustomActionTypeInput{Category: id.Category, Provider: id.Provider, Version: id.Version,
			InputArtifactDetails: &types.ArtifactDetails{MaximumCount: 1}, OutputArtifactDetails: &types.ArtifactDetails{MaximumCount: 1}}); err != nil {
			b.Fatal(err)
		}
	}
	_, err := client.CreatePipeline(ctx, &cp.CreatePipelineInput{Pipeline: &types.PipelineDeclaration{
		Name: aws.String("bench"), RoleArn: aws.String("arn:aws:iam::123456789012:role/cp"), PipelineType: types.PipelineTypeV2, ExecutionMode: types.ExecutionModeParallel,
		ArtifactStore: &types.ArtifactStore{Type: types.ArtifactStoreTypeS3, Location: aws.String("artifacts")},
		Stages: []types.StageDeclaration{
			{Name: aws.String("Source"), Actions: []types.ActionDeclaration{{Name: aws.String("a"), ActionTypeId: source, OutputArtifacts: []types.OutputArtifact{{Name: aws.String("out")}}}}},
			{Name: aws.String("Build"), Actions: []types.ActionDeclaration{{Name: aws.String("b"), ActionTypeId: build, InputArtifacts: []types.InputArtifact{{Name: aws.String("out")}}}}},
		},
	}})
	if err != nil {
		b.Fatal(err)
	}
	executions := int64(b.N+1) / 2
	var started, done atomic.Int64
	startOne := func() {
		if started.Add(1) <= executions {
			if _, err := client.StartPipelineExecution(ctx, &cp.StartPipelineExecutionInput{Name: aws.String("bench")}); err != nil {
				b.Error(err)
			}
		}
	}
	for range 16 {
		startOne()
	}
	begin := time.Now()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			ids := []*types.ActionTypeId{source, build}
			for turn := w; done.Load() < executions*2; turn++ {
				id := ids[turn%2]
				out, err := client.PollForJobs(ctx, &cp.PollForJobsInput{ActionTypeId: id, MaxBatchSize: aws.Int32(1)})
				if err != nil {
					b.Error(err)
					return
				}
				for _, j := range out.Jobs {
					if _, err := client.AcknowledgeJob(ctx, &cp.AcknowledgeJobInput{JobId: j.Id, Nonce: j.Nonce}); err != nil {
						b.Error(err)
						return
					}
					if _, err := client.PutJobSuccessResult(ctx, &cp.PutJobSuccessResultInput{JobId: j.Id}); err != nil {
						b.Error(err)
						return
					}
					done.Add(1)
					if id == build {
						startOne()
					}
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(done.Load())/time.Since(begin).Seconds(), "jobs/s")
}
