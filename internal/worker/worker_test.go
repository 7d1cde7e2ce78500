package worker_test

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	cp "github.com/aws/aws-sdk-go-v2/service/codepipeline"
	"github.com/aws/aws-sdk-go-v2/service/codepipeline/types"

	"github.com/sluicehq/sluice/internal/sdktest"
	"github.com/sluicehq/sluice/internal/server"
	"github.com/sluicehq/sluice/internal/worker"
)

// serve runs a Sluice server on a loopback port until the test ends and returns its URL.
func serve(t *testing.T) string {
	t.Helper()
	srv, err := server.New(context.Background(), server.Config{DataDir: t.TempDir(), AccountID: "123456789012", Region: "us-east-1", StartOnCreate: true})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done; srv.Close() })
	return "http://" + ln.Addr().String()
}

// runPipeline creates a one-action pipeline of a custom Source type served by a worker running
// script, and returns the action's record once its execution ends.
func runPipeline(t *testing.T, script string) types.ActionExecutionDetail {
	t.Helper()
	ctx := context.Background()
	url := serve(t)
	creds := credentials.NewStaticCredentialsProvider("test", "test", "")
	client := cp.New(cp.Options{Region: "us-east-1", BaseEndpoint: aws.String(url), Credentials: creds, Retryer: sdktest.ConnectionRetries()})
	id := types.ActionTypeId{Category: types.ActionCategorySource, Owner: types.ActionOwnerCustom, Provider: aws.String("Script"), Version: aws.String("1")}
	if _, err := client.CreateCustomActionType(ctx, &cp.CreateCustomActionTypeInput{Category: id.Category, Provider: id.Provider, Version: id.Version,
		InputArtifactDetails: &types.ArtifactDetails{}, OutputArtifactDetails: &types.ArtifactDetails{MaximumCount: 1}}); err != nil {
		t.Fatal(err)
	}
	_, err := client.CreatePipeline(ctx, &cp.CreatePipelineInput{Pipeline: &types.PipelineDeclaration{
		Name: aws.String("p"), RoleArn: aws.String("arn:aws:iam::123456789012:role/cp"),
		ArtifactStore: &types.ArtifactStore{Type: types.ArtifactStoreTypeS3, Location: aws.String("artifacts")},
		Stages: []types.StageDeclaration{
			{Name: aws.String("Source"), Actions: []types.ActionDeclaration{{Name: aws.String("run"), ActionTypeId: &id,
				OutputArtifacts: []types.OutputArtifact{{Name: aws.String("out")}}}}},
			{Name: aws.String("Approve"), Actions: []types.ActionDeclaration{{Name: aws.String("ok"),
				ActionTypeId: &types.ActionTypeId{Category: types.ActionCategoryApproval, Owner: types.ActionOwnerAws, Provider: aws.String("Manual"), Version: aws.String("1")}}}},
		},
	}})
	if err != nil {
		t.Fatal(err)
	}
	w, err := worker.New(worker.Config{CodePipeline: client, S3: aws.Config{Region: "us-east-1", Credentials: creds}, S3Endpoint: url,
		ActionType: id, Command: []string{"sh", "-c", script}, PollInterval: 50 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(runCtx, ctx) }()
	defer func() { stop(); <-done }()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		out, err := client.ListActionExecutions(ctx, &cp.ListActionExecutionsInput{PipelineName: aws.String("p")})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range out.ActionExecutionDetails {
			if aws.ToString(d.ActionName) == "run" && d.Status != types.ActionExecutionStatusInProgress {
				return d
			}
		}
	}
	t.Fatal("the action did not finish")
	return types.ActionExecutionDetail{}
}

func TestFailureReportsTheTailOfStderr(t *testing.T) {
	d := runPipeline(t, `echo "compiling"; echo "error: missing semicolon at line 3" >&2; exit 3`)
	msg := aws.ToString(d.Output.ExecutionResult.ErrorDetails.Message)
	if d.Status != types.ActionExecutionStatusFailed || !strings.Contains(msg, "exit status 3") || !strings.Contains(msg, "missing semicolon at line 3") {
		t.Fatalf("action %s with %q, want Failed with the exit status and stderr's tail", d.Status, msg)
	}
}

func TestContinuationRunsTheCommandAgain(t *testing.T) {
	count := filepath.Join(t.TempDir(), "runs")
	d := runPipeline(t, `echo run >> `+count+`
		if [ -z "$SLUICE_CONTINUATION_TOKEN" ]; then echo step-2 > "$SLUICE_CONTINUATION_FILE"; exit 0; fi
		echo "TOKEN=$SLUICE_CONTINUATION_TOKEN" > "$SLUICE_OUTPUT_VARIABLES"
		echo done > "$SLUICE_OUTPUT_DIR/result.txt"`)
	runs, _ := os.ReadFile(count)
	if d.Status != types.ActionExecutionStatusSucceeded || strings.Count(string(runs), "run") != 2 || d.Output.OutputVariables["TOKEN"] != "step-2" {
		t.Fatalf("action %s after %d runs with variables %v; want Succeeded after 2 runs, the second given the token", d.Status, strings.Count(string(runs), "run"), d.Output.OutputVariables)
	}
}
