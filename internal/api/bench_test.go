package api_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cp "github.com/aws/aws-sdk-go-v2/service/codepipeline"
	"github.com/aws/aws-sdk-go-v2/service/codepipeline/types"

	"github.com/sluicehq/sluice/internal/api"
	"github.com/sluicehq/sluice/internal/store"
	"github.com/sluicehq/sluice/internal/store/postgres"
	"github.com/sluicehq/sluice/internal/store/sqlite"
	"github.com/sluicehq/sluice/internal/store/storetest"
)

// Benchmarks of the control plane through the whole HTTP stack, on each store: go test -bench . ./internal/api

func benchStores(b *testing.B, bench func(b *testing.B, e *env)) {
	b.Run("sqlite", func(b *testing.B) {
		st, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "sluice.db"))
		if err != nil {
			b.Fatal(err)
		}
		bench(b, benchEnv(b, st))
	})
	b.Run("postgres", func(b *testing.B) {
		st, err := postgres.Open(ctx, storetest.PostgresURL(b))
		if err != nil {
			b.Fatal(err)
		}
		bench(b, benchEnv(b, st))
	})
}

func benchEnv(b *testing.B, st store.Store) *env {
	limits := api.DefaultLimits
	limits.Pipelines = 1 << 30
	return newEnvTB(b, st, func(c *api.Config) { c.Limits = limits })
}

func mustB(b *testing.B) func(*cp.CreatePipelineOutput, error) *cp.CreatePipelineOutput {
	return func(out *cp.CreatePipelineOutput, err error) *cp.CreatePipelineOutput {
		if err != nil {
			b.Fatal(err)
		}
		return out
	}
}

var benchClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

func post(b *testing.B, url, op string, body []byte) {
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("X-Amz-Target", "CodePipeline_20150709."+op)
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	resp, err := benchClient.Do(req)
	if err != nil {
		b.Error(err)
		return
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		b.Errorf("%s: HTTP %d %s", op, resp.StatusCode, answer)
	}
}

func BenchmarkGetPipeline(b *testing.B) {
	benchStores(b, func(b *testing.B, e *env) {
		mustB(b)(e.client.CreatePipeline(ctx, &cp.CreatePipelineInput{Pipeline: minimal("bench")}))
		body := []byte(`{"name":"bench"}`)
		b.SetParallelism(8)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				post(b, e.url, "GetPipeline", body)
			}
		})
	})
}

func BenchmarkListPipelines(b *testing.B) {
	benchStores(b, func(b *testing.B, e *env) {
		for i := range 200 {
			mustB(b)(e.client.CreatePipeline(ctx, &cp.CreatePipelineInput{Pipeline: minimal(fmt.Sprintf("bench-%03d", i))}))
		}
		body := []byte(`{"maxResults":100}`)
		b.SetParallelism(8)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				post(b, e.url, "ListPipelines", body)
			}
		})
	})
}

func BenchmarkCreatePipeline(b *testing.B) {
	benchStores(b, func(b *testing.B, e *env) {
		var n atomic.Int64
		b.SetParallelism(8)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				name := fmt.Sprintf("bench-%d", n.Add(1))
				body := fmt.Appendf(nil, `{"pipeline":{"name":%q,"roleArn":"arn:aws:iam::123456789012:role/cp","artifactStore":{"type":"S3","location":"artifacts"},
					"stages":[{"name":"Source","actions":[{"name":"src","actionTypeId":{"category":"Source","owner":"AWS","provider":"S3","version":"1"},"configuration":{"S3Bucket":"b","S3ObjectKey":"k"},"outputArtifacts":[{"name":"code"}]}]},
					{"name":"Approve","actions":[{"name":"ok","actionTypeId":{"category":"Approval","owner":"AWS","provider":"Manual","version":"1"}}]}]}}`, name)
				post(b, e.url, "CreatePipeline", body)
			}
		})
	})
}

// threeStageCustom creates a PARALLEL pipeline of three custom actions, one per stage.
func threeStageCustom(b *testing.B, e *env) []*types.ActionTypeId {
	var ids []*types.ActionTypeId
	var stages []types.StageDeclaration
	for i, p := range []struct {
		category types.ActionCategory
		name     string
		in, out  int32
	}{{types.ActionCategorySource, "Fetch", 0, 1}, {types.ActionCategoryBuild, "Make", 1, 1}, {types.ActionCategoryDeploy, "Ship", 1, 0}} {
		if _, err := e.client.CreateCustomActionType(ctx, &cp.CreateCustomActionTypeInput{Category: p.category, Provider: aws.String(p.name), Version: aws.String("1"),
			InputArtifactDetails: &types.ArtifactDetails{MaximumCount: p.in}, OutputArtifactDetails: &types.ArtifactDetails{MaximumCount: p.out}}); err != nil {
			b.Fatal(err)
		}
		id := &types.ActionTypeId{Category: p.category, Owner: types.ActionOwnerCustom, Provider: aws.String(p.name), Version: aws.String("1")}
		ids = append(ids, id)
		a := types.ActionDeclaration{Name: aws.String(p.name), ActionTypeId: id}
		if p.in > 0 {
			a.InputArtifacts = []types.InputArtifact{{Name: aws.String(fmt.Sprintf("a%d", i-1))}}
		}
		if p.out > 0 {
			a.OutputArtifacts = []types.OutputArtifact{{Name: aws.String(fmt.Sprintf("a%d", i))}}
		}
		stages = append(stages, types.StageDeclaration{Name: aws.String(p.name), Actions: []types.ActionDeclaration{a}})
	}
	p := minimal("engine")
	p.PipelineType, p.ExecutionMode, p.Stages = types.PipelineTypeV2, types.ExecutionModeParallel, stages
	mustB(b)(e.client.CreatePipeline(ctx, &cp.CreatePipelineInput{Pipeline: p}))
	return ids
}

// runJob polls one job of a type, acknowledges it and reports success, and returns how long the
// success report took: the engine's stage transition, after which the next job is pollable.
func runJob(b *testing.B, e *env, id *types.ActionTypeId) time.Duration {
	for {
		out, err := e.client.PollForJobs(ctx, &cp.PollForJobsInput{ActionTypeId: id})
		if err != nil {
			b.Fatal(err)
		}
		if len(out.Jobs) == 0 {
			continue
		}
		j := out.Jobs[0]
		if _, err := e.client.AcknowledgeJob(ctx, &cp.AcknowledgeJobInput{JobId: j.Id, Nonce: j.Nonce}); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if _, err := e.client.PutJobSuccessResult(ctx, &cp.PutJobSuccessResultInput{JobId: j.Id}); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
}

// BenchmarkStageTransition: one execution at a time through three stages; ns/op is a whole
// execution (start + three poll/ack/succeed round trips), so a stage costs a third of it;
// µs/transition is the PutJobSuccessResult that moves the execution to its next stage and makes
// the next job pollable, client round trip included.
func BenchmarkStageTransition(b *testing.B) {
	benchStores(b, func(b *testing.B, e *env) {
		ids := threeStageCustom(b, e)
		var transitions time.Duration
		b.ResetTimer()
		for range b.N {
			if _, err := e.client.StartPipelineExecution(ctx, &cp.StartPipelineExecutionInput{Name: aws.String("engine")}); err != nil {
				b.Fatal(err)
			}
			for i, id := range ids {
				took := runJob(b, e, id)
				if i < len(ids)-1 {
					transitions += took
				}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/3, "µs/stage")
		b.ReportMetric(float64(transitions.Microseconds())/float64(2*b.N), "µs/transition")
	})
}

// BenchmarkParallelExecutions: 8 clients each drive executions of the PARALLEL pipeline.
func BenchmarkParallelExecutions(b *testing.B) {
	benchStores(b, func(b *testing.B, e *env) {
		ids := threeStageCustom(b, e)
		b.SetParallelism(4)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := e.client.StartPipelineExecution(ctx, &cp.StartPipelineExecutionInput{Name: aws.String("engine")}); err != nil {
					b.Error(err)
					return
				}
				for _, id := range ids {
					runJob(b, e, id)
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "executions/s")
	})
}
