package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	neturl "net/url"
	"os"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	cp "github.com/aws/aws-sdk-go-v2/service/codepipeline"
	"github.com/aws/aws-sdk-go-v2/service/codepipeline/types"
	"github.com/aws/smithy-go"

	"github.com/sluicehq/sluice/internal/store/storetest"
)

// TestRunsSurviveSIGKILL runs executions of a three-stage pipeline of custom actions, with one
// worker per action type, while the server is killed with SIGKILL and restarted again and again.
// Every execution must end Succeeded with each action run exactly once, and no job may be
// reported done twice.
//
// SLUICE_FAULT_ROUNDS=N (default 1) multiplies the executions and the kill points; from 2 on, a
// third run terminates the server's PostgreSQL connections instead of killing the server, on a
// database of its own (scripts/faults.sh runs this long form).
func TestRunsSurviveSIGKILL(t *testing.T) {
	bin := buildBinary(t)
	rounds := faultRounds(t)
	kill := func(srv *testServer) func() {
		return func() {
			srv.stop(syscall.SIGKILL)
			srv.start()
		}
	}
	t.Run("sqlite", func(t *testing.T) { testCrashes(t, bin, rounds, kill, "--data", t.TempDir()) })
	t.Run("postgres", func(t *testing.T) {
		testCrashes(t, bin, rounds, kill, "--data", t.TempDir(), "--data-shared", "--database", storetest.PostgresURL(t))
	})
	if rounds < 2 {
		return
	}
	t.Run("postgres-backends-terminated", func(t *testing.T) {
		url, terminate := ownDatabase(t)
		testCrashes(t, bin, rounds, func(*testServer) func() { return terminate }, "--data", t.TempDir(), "--data-shared", "--database", url)
	})
}

// faultRounds is SLUICE_FAULT_ROUNDS: how many times over the fault tests run their faults.
func faultRounds(t *testing.T) int {
	v := os.Getenv("SLUICE_FAULT_ROUNDS")
	if v == "" {
		return 1
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("SLUICE_FAULT_ROUNDS=%q is not a whole number from 1", v)
	}
	return n
}

// ownDatabase makes a PostgreSQL database for one test and returns its URL and a function that
// terminates every connection to it but its own.
func ownDatabase(t *testing.T) (string, func()) {
	base := os.Getenv("SLUICE_TEST_POSTGRES")
	if base == "" {
		t.Skip("SLUICE_TEST_POSTGRES is not set")
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("sluice_faults_%d", time.Now().UnixNano())
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		admin.Exec("DROP DATABASE " + name + " WITH (FORCE)")
		admin.Close()
	})
	u, err := neturl.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	terminate := func() {
		var n int
		if err := admin.QueryRow(`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, name).Scan(&n); err != nil {
			t.Errorf("terminate the server's connections: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return u.String(), terminate
}

func testCrashes(t *testing.T, bin string, rounds int, fault func(*testServer) func(), storeArgs ...string) {
	srv := newTestServer(t, bin, append([]string{"--start-on-create=false", "--job-ack-timeout", "1s", "--sweep-interval", "200ms"}, storeArgs...)...)
	client := srv.client
	restart := fault(srv)
	ctx := context.Background()
	providers := []struct {
		category types.ActionCategory
		name     string
		in, out  int32
	}{{types.ActionCategorySource, "Fetch", 0, 1}, {types.ActionCategoryBuild, "Make", 1, 1}, {types.ActionCategoryDeploy, "Ship", 1, 0}}
	var stages []types.StageDeclaration
	for i, p := range providers {
		if _, err := client.CreateCustomActionType(ctx, &cp.CreateCustomActionTypeInput{Category: p.category, Provider: aws.String(p.name), Version: aws.String("1"),
			InputArtifactDetails: &types.ArtifactDetails{MaximumCount: p.in}, OutputArtifactDetails: &types.ArtifactDetails{MaximumCount: p.out}}); err != nil {
			t.Fatal(err)
		}
		a := types.ActionDeclaration{Name: aws.String(p.name), ActionTypeId: &types.ActionTypeId{Category: p.category, Owner: types.ActionOwnerCustom, Provider: aws.String(p.name), Version: aws.String("1")}}
		if p.in > 0 {
			a.InputArtifacts = []types.InputArtifact{{Name: aws.String(fmt.Sprintf("a%d", i-1))}}
		}
		if p.out > 0 {
			a.OutputArtifacts = []types.OutputArtifact{{Name: aws.String(fmt.Sprintf("a%d", i))}}
		}
		stages = append(stages, types.StageDeclaration{Name: aws.String(p.name), Actions: []types.ActionDeclaration{a}})
	}
	if _, err := client.CreatePipeline(ctx, &cp.CreatePipelineInput{Pipeline: &types.PipelineDeclaration{
		Name: aws.String("crashy"), RoleArn: aws.String("arn:aws:iam::000000000000:role/cp"), PipelineType: types.PipelineTypeV2, ExecutionMode: types.ExecutionModeParallel,
		ArtifactStore: &types.ArtifactStore{Type: types.ArtifactStoreTypeS3, Location: aws.String("artifacts")}, Stages: stages,
	}}); err != nil {
		t.Fatal(err)
	}

	// Workers: poll, acknowledge, report success; after a failed call whose outcome is unknown,
	// ask again until the answer is definite.
	workCtx, stopWork := context.WithCancel(ctx)
	defer stopWork()
	var mu sync.Mutex
	succeeded := map[string]int{}
	var wg sync.WaitGroup
	for _, p := range providers {
		wg.Go(func() {
			id := &types.ActionTypeId{Category: p.category, Owner: types.ActionOwnerCustom, Provider: aws.String(p.name), Version: aws.String("1")}
			for workCtx.Err() == nil {
				out, err := client.PollForJobs(workCtx, &cp.PollForJobsInput{ActionTypeId: id, MaxBatchSize: aws.Int32(5)})
				if err != nil || len(out.Jobs) == 0 {
					time.Sleep(20 * time.Millisecond)
					continue
				}
				for _, job := range out.Jobs {
					if !definitely(workCtx, func() error {
						_, err := client.AcknowledgeJob(workCtx, &cp.AcknowledgeJobInput{JobId: job.Id, Nonce: job.Nonce})
						return err
					}) {
						continue
					}
					if definitely(workCtx, func() error {
						_, err := client.PutJobSuccessResult(workCtx, &cp.PutJobSuccessResultInput{JobId: job.Id})
						return err
					}) {
						mu.Lock()
						succeeded[*job.Id]++
						mu.Unlock()
					}
				}
			}
		})
	}

	executions := 16 * rounds
	var ids []string
	for i := range executions {
		token := fmt.Sprintf("start-%d", i)
		for {
			out, err := client.StartPipelineExecution(ctx, &cp.StartPipelineExecutionInput{Name: aws.String("crashy"), ClientRequestToken: aws.String(token)})
			if err == nil {
				ids = append(ids, *out.PipelineExecutionId)
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if i%4 == 3 {
			restart()
		}
	}
	for range 4 * rounds {
		time.Sleep(150 * time.Millisecond)
		restart()
	}

	for deadline := time.Now().Add(time.Duration(rounds) * 60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		done := 0
		for _, id := range ids {
			if out, err := client.GetPipelineExecution(ctx, &cp.GetPipelineExecutionInput{PipelineName: aws.String("crashy"), PipelineExecutionId: aws.String(id)}); err == nil {
				switch out.PipelineExecution.Status {
				case types.PipelineExecutionStatusSucceeded:
					done++
				case types.PipelineExecutionStatusInProgress:
				default:
					t.Fatalf("execution %s ended %s", id, out.PipelineExecution.Status)
				}
			}
		}
		if done == len(ids) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d executions succeeded in time", done, len(ids))
		}
	}
	stopWork()
	wg.Wait()

	for _, id := range ids {
		out, err := client.ListActionExecutions(ctx, &cp.ListActionExecutionsInput{PipelineName: aws.String("crashy"), Filter: &types.ActionExecutionFilter{PipelineExecutionId: aws.String(id)}})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.ActionExecutionDetails) != 3 {
			t.Fatalf("execution %s ran %d actions, want each of 3 exactly once", id, len(out.ActionExecutionDetails))
		}
		for _, a := range out.ActionExecutionDetails {
			if a.Status != types.ActionExecutionStatusSucceeded {
				t.Fatalf("execution %s: action %s is %s", id, *a.ActionName, a.Status)
			}
		}
	}
	for job, n := range succeeded {
		if n != 1 {
			t.Fatalf("job %s was reported done %d times", job, n)
		}
	}
	t.Logf("%d executions, %d faults: all succeeded, every action ran once, no job reported done twice", executions, 8*rounds)
}

// definitely retries call while its outcome is unknown (the server is down, died mid-call, or
// failed with a fault of its own, as a lost database connection makes it), and reports whether
// it finally succeeded; an error of the caller's (an AWS 4xx) is a definite "no".
func definitely(ctx context.Context, call func() error) bool {
	for ctx.Err() == nil {
		err := call()
		if err == nil {
			return true
		}
		var apiErr smithy.APIError
		var httpErr *awshttp.ResponseError
		if errors.As(err, &apiErr) && !(errors.As(err, &httpErr) && httpErr.HTTPStatusCode() >= 500) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}
