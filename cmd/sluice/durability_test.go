package main

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cp "github.com/aws/aws-sdk-go-v2/service/codepipeline"
	"github.com/aws/aws-sdk-go-v2/service/codepipeline/types"

	"github.com/sluicehq/sluice/internal/store/storetest"
)

// TestAcknowledgedWritesSurviveRestartAndKill runs the real binary, writes to it from several
// clients, stops it gracefully once and with SIGKILL mid-load once, and checks after each restart
// that every write it acknowledged is there.
func TestAcknowledgedWritesSurviveRestartAndKill(t *testing.T) {
	bin := buildBinary(t)
	t.Run("sqlite", func(t *testing.T) {
		testDurability(t, bin, "--data", t.TempDir())
	})
	t.Run("postgres", func(t *testing.T) {
		testDurability(t, bin, "--data", t.TempDir(), "--data-shared", "--database", storetest.PostgresURL(t))
	})
}

func testDurability(t *testing.T, bin string, storeArgs ...string) {
	acked := &acknowledged{versions: map[string]int32{}}

	srv := newTestServer(t, bin, storeArgs...)
	stopLoad := load(t, srv.client, acked, "calm")
	acked.await(t, 5)
	stopLoad()
	srv.stop(syscall.SIGTERM)
	srv.start()
	acked.check(t, srv.client)

	// The kill comes while writes are in flight, once some have been acknowledged: a measure of
	// progress, not of time, so that a busy machine does not make the test vacuous.
	stopLoad = load(t, srv.client, acked, "crash")
	acked.await(t, 10)
	srv.stop(syscall.SIGKILL)
	stopLoad()
	srv.start()
	acked.check(t, srv.client)
	srv.stop(syscall.SIGTERM)
	t.Logf("%d pipelines acknowledged across a restart and a SIGKILL, all present", len(acked.versions))
	if len(acked.versions) < 10 {
		t.Fatalf("only %d pipelines were acknowledged; the load did not run", len(acked.versions))
	}
}

// acknowledged records, per pipeline, the highest version the server acknowledged.
type acknowledged struct {
	mu       sync.Mutex
	versions map[string]int32
}

func (a *acknowledged) record(name string, version int32) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if version > a.versions[name] {
		a.versions[name] = version
	}
}

// await waits until n pipelines have been acknowledged in all.
func (a *acknowledged) await(t *testing.T, n int) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		a.mu.Lock()
		got := len(a.versions)
		a.mu.Unlock()
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d pipelines were acknowledged in 30s; the load did not run", got)
		}
	}
}

func (a *acknowledged) check(t *testing.T, client *cp.Client) {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	for name, version := range a.versions {
		out, err := client.GetPipeline(context.Background(), &cp.GetPipelineInput{Name: aws.String(name)})
		if err != nil {
			t.Fatalf("acknowledged pipeline %s is gone: %v", name, err)
		}
		if *out.Pipeline.Version < version {
			t.Fatalf("pipeline %s is at version %d, but version %d was acknowledged", name, *out.Pipeline.Version, version)
		}
	}
}

// load creates and updates pipelines from four clients until the returned function is called.
func load(t *testing.T, client *cp.Client, acked *acknowledged, prefix string) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				name := fmt.Sprintf("%s-%d-%d", prefix, w, i)
				p := pipelineNamed(name)
				if out, err := client.CreatePipeline(ctx, &cp.CreatePipelineInput{Pipeline: p}); err == nil {
					acked.record(name, *out.Pipeline.Version)
				} else {
					continue
				}
				if out, err := client.UpdatePipeline(ctx, &cp.UpdatePipelineInput{Pipeline: p}); err == nil {
					acked.record(name, *out.Pipeline.Version)
				}
			}
		})
	}
	return func() { cancel(); wg.Wait() }
}

func pipelineNamed(name string) *types.PipelineDeclaration {
	id := func(category types.ActionCategory, provider string) *types.ActionTypeId {
		return &types.ActionTypeId{Category: category, Owner: types.ActionOwnerAws, Provider: aws.String(provider), Version: aws.String("1")}
	}
	return &types.PipelineDeclaration{
		Name: aws.String(name), RoleArn: aws.String("arn:aws:iam::000000000000:role/cp"),
		ArtifactStore: &types.ArtifactStore{Type: types.ArtifactStoreTypeS3, Location: aws.String("artifacts")},
		Stages: []types.StageDeclaration{
			{Name: aws.String("Source"), Actions: []types.ActionDeclaration{{Name: aws.String("src"), ActionTypeId: id(types.ActionCategorySource, "S3"),
				Configuration: map[string]string{"S3Bucket": "b", "S3ObjectKey": "k"}, OutputArtifacts: []types.OutputArtifact{{Name: aws.String("code")}}}}},
			{Name: aws.String("Approve"), Actions: []types.ActionDeclaration{{Name: aws.String("ok"), ActionTypeId: id(types.ActionCategoryApproval, "Manual")}}},
		},
	}
}
