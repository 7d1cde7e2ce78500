package main

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cp "github.com/aws/aws-sdk-go-v2/service/codepipeline"
	"github.com/aws/aws-sdk-go-v2/service/codepipeline/types"
)

// awsEnv is the environment the AWS CLI, the workers and a server using an external S3 run with.
var awsEnv = []string{"AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_DEFAULT_REGION=us-east-1", "AWS_REGION=us-east-1",
	"AWS_EC2_METADATA_DISABLED=true", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null"}

// awsCLI runs the AWS CLI against endpoint and returns its output.
func awsCLI(t *testing.T, endpoint string, args ...string) string {
	t.Helper()
	cmd := exec.Command("aws", append([]string{"--endpoint-url", endpoint}, args...)...)
	cmd.Env = append(os.Environ(), awsEnv...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("aws %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startMoto runs moto's server as an external S3-compatible service and returns its URL.
func startMoto(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("moto_server"); err != nil {
		t.Skip("moto_server is not installed")
	}
	addr := freeAddr(t)
	host, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command("moto_server", "-H", host, "-p", port)
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if resp, err := http.Get("http://" + addr + "/"); err == nil {
			resp.Body.Close()
			return "http://" + addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("moto_server did not start:\n%s", log.String())
		}
	}
}

// startWorker runs `sluice worker` for a custom action type with a shell script as its command.
func startWorker(t *testing.T, bin, endpoint string, extra []string, category, provider, script string) {
	t.Helper()
	args := append([]string{"worker", "--endpoint", endpoint, "--category", category, "--provider", provider, "--poll-interval", "100ms"}, extra...)
	cmd := exec.Command(bin, append(args, "--", "sh", "-ec", script)...)
	cmd.Env = append(os.Environ(), awsEnv...)
	superviseWorker(t, cmd, filepath.Join(t.TempDir(), "worker.log"), provider+" worker")
}

// superviseWorker starts a `sluice worker` command logging to logPath, stops it with SIGINT when the
// test ends, and shows its log, under name, if the test failed.
func superviseWorker(t *testing.T, cmd *exec.Cmd, logPath, name string) {
	t.Helper()
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		logFile.Close()
		if t.Failed() {
			log, _ := os.ReadFile(logPath)
			t.Logf("%s log:\n%s", name, log)
		}
	})
}

func zipOf(t *testing.T, files map[string]string) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, body := range files {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, body)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func unzipOf(t *testing.T, raw []byte) map[string]string {
	zr, err := zip.NewReader(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, f := range zr.File {
		if f.FileInfo().IsDir() {
			continue
		}
		r, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r)
		r.Close()
		out[f.Name] = string(b)
	}
	return out
}

// TestArtifactsFlowThroughWorkers runs a pipeline whose source is uploaded with the AWS CLI, built
// by one `sluice worker` and deployed by another, with the artifacts in the built-in S3 endpoint
// and in an external S3-compatible service.
func TestArtifactsFlowThroughWorkers(t *testing.T) {
	bin := buildBinary(t)
	t.Run("built-in S3", func(t *testing.T) {
		srv := newTestServer(t, bin, "--data", t.TempDir(), "--sweep-interval", "200ms")
		url := "http://" + srv.addr
		testArtifactFlow(t, bin, srv, url, url, nil)
	})
	t.Run("external S3", func(t *testing.T) {
		moto := startMoto(t)
		awsCLI(t, moto, "s3", "mb", "s3://artifacts")
		srv := newTestServerEnv(t, bin, awsEnv, "--data", t.TempDir(), "--sweep-interval", "200ms", "--artifacts-s3-endpoint", moto)
		testArtifactFlow(t, bin, srv, "http://"+srv.addr, moto, []string{"--s3-endpoint", moto})

		// A pipeline whose artifact bucket the external service lacks fails with a message naming it.
		createPipeline(t, srv.client, "nobucket", "missing-bucket")
		exec := waitForExecution(t, srv.client, "nobucket", types.PipelineExecutionStatusFailed)
		details := actionDetails(t, srv.client, "nobucket", exec)
		msg := aws.ToString(details["src"].Output.ExecutionResult.ErrorDetails.Message)
		if !strings.Contains(msg, "missing-bucket does not exist in the S3 service at "+moto) {
			t.Fatalf("source action failed with %q, want it to name the missing bucket and the service", msg)
		}
	})
}

func testArtifactFlow(t *testing.T, bin string, srv *testServer, endpoint, s3URL string, workerArgs []string) {
	ctx := context.Background()
	awsCLI(t, s3URL, "s3", "mb", "s3://sources")
	awsCLI(t, s3URL, "s3api", "put-bucket-versioning", "--bucket", "sources", "--versioning-configuration", "Status=Enabled")
	zipPath := filepath.Join(t.TempDir(), "app.zip")
	if err := os.WriteFile(zipPath, zipOf(t, map[string]string{"greeting.txt": "hello, artifacts\n", "sub/data.txt": "payload"}), 0o644); err != nil {
		t.Fatal(err)
	}
	var put struct{ VersionId string }
	if err := json.Unmarshal([]byte(awsCLI(t, s3URL, "s3api", "put-object", "--bucket", "sources", "--key", "app.zip", "--body", zipPath)), &put); err != nil || put.VersionId == "" {
		t.Fatalf("put-object gave no version id (%v)", err)
	}
	for _, c := range []types.ActionCategory{types.ActionCategoryBuild, types.ActionCategoryDeploy} {
		if _, err := srv.client.CreateCustomActionType(ctx, &cp.CreateCustomActionTypeInput{Category: c, Provider: aws.String("Shell"), Version: aws.String("1"),
			InputArtifactDetails: &types.ArtifactDetails{MaximumCount: 1}, OutputArtifactDetails: &types.ArtifactDetails{MaximumCount: 1}}); err != nil {
			t.Fatal(err)
		}
	}
	deployed := t.TempDir()
	startWorker(t, bin, endpoint, workerArgs, "Build", "Shell", `
		mkdir -p "$SLUICE_OUTPUT_DIR/sub"
		tr a-z A-Z < "$SLUICE_INPUT_DIR/greeting.txt" > "$SLUICE_OUTPUT_DIR/greeting.txt"
		cp "$SLUICE_INPUT_DIR/sub/data.txt" "$SLUICE_OUTPUT_DIR/sub/data.txt"
		echo "LINES=$(wc -l < "$SLUICE_OUTPUT_DIR/greeting.txt" | tr -d ' ')" >> "$SLUICE_OUTPUT_VARIABLES"
		echo "STAGE=$SLUICE_STAGE_NAME" >> "$SLUICE_OUTPUT_VARIABLES"
		echo "build-$SLUICE_PIPELINE_EXECUTION_ID" > "$SLUICE_REVISION_FILE"`)
	startWorker(t, bin, endpoint, workerArgs, "Deploy", "Shell", `cp -R "$SLUICE_INPUT_DIR/." "`+deployed+`/"`)

	createPipeline(t, srv.client, "flow", "artifacts")
	execID := waitForExecution(t, srv.client, "flow", types.PipelineExecutionStatusSucceeded)

	for name, want := range map[string]string{"greeting.txt": "HELLO, ARTIFACTS\n", "sub/data.txt": "payload"} {
		got, err := os.ReadFile(filepath.Join(deployed, name))
		if err != nil || string(got) != want {
			t.Fatalf("deployed %s = %q (%v), want %q", name, got, err, want)
		}
	}
	details := actionDetails(t, srv.client, "flow", execID)
	src, build, deploy := details["src"], details["build"], details["deploy"]
	if v := src.Output.OutputVariables; v["VersionId"] != put.VersionId || v["BucketName"] != "sources" || v["ObjectKey"] != "app.zip" {
		t.Fatalf("source output variables %v, want version %s of sources/app.zip", v, put.VersionId)
	}
	if v := build.Output.OutputVariables; v["LINES"] != "1" || v["STAGE"] != "Build" {
		t.Fatalf("build output variables %v", v)
	}
	// Each consumer reads exactly what its producer stored, where CodePipeline lays artifacts out.
	srcOut, buildIn := src.Output.OutputArtifacts[0].S3location, build.Input.InputArtifacts[0].S3location
	buildOut, deployIn := build.Output.OutputArtifacts[0].S3location, deploy.Input.InputArtifacts[0].S3location
	if *srcOut.Key != *buildIn.Key || *buildOut.Key != *deployIn.Key || *buildOut.Bucket != "artifacts" {
		t.Fatalf("artifact locations do not chain: src→%s build←%s build→%s deploy←%s", *srcOut.Key, *buildIn.Key, *buildOut.Key, *deployIn.Key)
	}
	if !strings.HasPrefix(*buildOut.Key, "flow/BuildArtif/") {
		t.Fatalf("build artifact key %s is not laid out as <pipeline>/<artifact name cut to 10>/<id>", *buildOut.Key)
	}
	stored := filepath.Join(t.TempDir(), "build.zip")
	awsCLI(t, s3URL, "s3", "cp", "s3://artifacts/"+*buildOut.Key, stored)
	raw, _ := os.ReadFile(stored)
	if files := unzipOf(t, raw); files["greeting.txt"] != "HELLO, ARTIFACTS\n" || files["sub/data.txt"] != "payload" {
		t.Fatalf("stored build artifact holds %v", files)
	}
	exec, err := srv.client.GetPipelineExecution(ctx, &cp.GetPipelineExecutionInput{PipelineName: aws.String("flow"), PipelineExecutionId: aws.String(execID)})
	if err != nil {
		t.Fatal(err)
	}
	revisions := map[string]string{}
	for _, r := range exec.PipelineExecution.ArtifactRevisions {
		revisions[aws.ToString(r.Name)] = aws.ToString(r.RevisionId)
	}
	if revisions["SourceArtifact"] != put.VersionId || revisions["BuildArtifact"] != "build-"+execID {
		t.Fatalf("artifact revisions %v, want the source's version id and the build's reported revision", revisions)
	}
}

// createPipeline creates a pipeline: an S3 source, a Shell build and a Shell deploy.
func createPipeline(t *testing.T, client *cp.Client, name, bucket string) {
	t.Helper()
	custom := func(c types.ActionCategory) *types.ActionTypeId {
		return &types.ActionTypeId{Category: c, Owner: types.ActionOwnerCustom, Provider: aws.String("Shell"), Version: aws.String("1")}
	}
	_, err := client.CreatePipeline(context.Background(), &cp.CreatePipelineInput{Pipeline: &types.PipelineDeclaration{
		Name: aws.String(name), RoleArn: aws.String("arn:aws:iam::000000000000:role/cp"),
		ArtifactStore: &types.ArtifactStore{Type: types.ArtifactStoreTypeS3, Location: aws.String(bucket)},
		Stages: []types.StageDeclaration{
			{Name: aws.String("Source"), Actions: []types.ActionDeclaration{{Name: aws.String("src"),
				ActionTypeId:    &types.ActionTypeId{Category: types.ActionCategorySource, Owner: types.ActionOwnerAws, Provider: aws.String("S3"), Version: aws.String("1")},
				Configuration:   map[string]string{"S3Bucket": "sources", "S3ObjectKey": "app.zip", "PollForSourceChanges": "false"},
				OutputArtifacts: []types.OutputArtifact{{Name: aws.String("SourceArtifact")}}}}},
			{Name: aws.String("Build"), Actions: []types.ActionDeclaration{{Name: aws.String("build"), ActionTypeId: custom(types.ActionCategoryBuild),
				InputArtifacts: []types.InputArtifact{{Name: aws.String("SourceArtifact")}}, OutputArtifacts: []types.OutputArtifact{{Name: aws.String("BuildArtifact")}}}}},
			{Name: aws.String("Deploy"), Actions: []types.ActionDeclaration{{Name: aws.String("deploy"), ActionTypeId: custom(types.ActionCategoryDeploy),
				InputArtifacts: []types.InputArtifact{{Name: aws.String("BuildArtifact")}}}}},
		},
	}})
	if err != nil {
		t.Fatal(err)
	}
}

// waitForExecution waits for the pipeline's first execution to end with status want.
func waitForExecution(t *testing.T, client *cp.Client, pipeline string, want types.PipelineExecutionStatus) string {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		out, err := client.ListPipelineExecutions(context.Background(), &cp.ListPipelineExecutionsInput{PipelineName: aws.String(pipeline)})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.PipelineExecutionSummaries) > 0 {
			e := out.PipelineExecutionSummaries[0]
			switch e.Status {
			case want:
				return aws.ToString(e.PipelineExecutionId)
			case types.PipelineExecutionStatusFailed, types.PipelineExecutionStatusSucceeded, types.PipelineExecutionStatusStopped:
				t.Fatalf("execution of %s ended %s, want %s: %s", pipeline, e.Status, want, describeActions(t, client, pipeline))
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("execution of %s did not end %s in time: %s", pipeline, want, describeActions(t, client, pipeline))
		}
	}
}

func actionDetails(t *testing.T, client *cp.Client, pipeline, execID string) map[string]types.ActionExecutionDetail {
	t.Helper()
	out, err := client.ListActionExecutions(context.Background(), &cp.ListActionExecutionsInput{PipelineName: aws.String(pipeline),
		Filter: &types.ActionExecutionFilter{PipelineExecutionId: aws.String(execID)}})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]types.ActionExecutionDetail{}
	for _, d := range out.ActionExecutionDetails {
		m[aws.ToString(d.ActionName)] = d
	}
	return m
}

func describeActions(t *testing.T, client *cp.Client, pipeline string) string {
	out, err := client.ListActionExecutions(context.Background(), &cp.ListActionExecutionsInput{PipelineName: aws.String(pipeline)})
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, d := range out.ActionExecutionDetails {
		fmt.Fprintf(&b, "\n  %s %s", aws.ToString(d.ActionName), d.Status)
		if d.Output != nil && d.Output.ExecutionResult != nil {
			fmt.Fprintf(&b, ": %s", aws.ToString(d.Output.ExecutionResult.ExternalExecutionSummary))
		}
	}
	return b.String()
}
