package api_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"testing"

	cp "github.com/aws/aws-sdk-go-v2/service/codepipeline"

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
	return newEnvTB(b, st, limits)
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
