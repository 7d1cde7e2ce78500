package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	cp "github.com/aws/aws-sdk-go-v2/service/codepipeline"
	"github.com/aws/aws-sdk-go-v2/service/codepipeline/types"
	"github.com/aws/smithy-go"
)

// TestSourceRevisionOverrides starts executions pinned with sourceRevisions, as a user would to
// release a given version: a git source at a commit id or at a tag's name, and an S3 source at an
// object key and version together.
func TestSourceRevisionOverrides(t *testing.T) {
	bin := buildBinary(t)
	srv := newTestServer(t, bin, "--data", t.TempDir(), "--source-poll-interval", "0", "--start-on-create=false")
	url := "http://" + srv.addr
	ctx := context.Background()
	start := func(pipeline string, overrides ...types.SourceRevisionOverride) (string, error) {
		out, err := srv.client.StartPipelineExecution(ctx, &cp.StartPipelineExecutionInput{Name: aws.String(pipeline), SourceRevisions: overrides})
		if err != nil {
			return "", err
		}
		return aws.ToString(out.PipelineExecutionId), nil
	}
	repo := newGitRepo(t)
	first := repo.commit("first", map[string]string{"page.txt": "one\n"})
	repo.git("tag", "-a", "v1", "-m", "release 1")
	repo.commit("second", map[string]string{"page.txt": "two\n"})
	repo.push(url+"/v1/repos/site", "main")
	repo.git("push", "-q", url+"/v1/repos/site", "v1")
	createPipelineJSON(t, url, pipelineJSON("git-pinned", "QUEUED",
		action("Source", "Source", "AWS", "CodeCommit", map[string]string{"RepositoryName": "site", "BranchName": "main", "PollForSourceChanges": "false"}, nil, []string{"Src"}, ""),
		action("Wait", "Approval", "AWS", "Manual", nil, nil, nil, ""),
	))
	for _, revision := range []string{first, "v1"} {
		id, err := start("git-pinned", types.SourceRevisionOverride{ActionName: aws.String("Source"), RevisionType: types.SourceRevisionTypeCommitId, RevisionValue: aws.String(revision)})
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the pinned source to run", func() bool {
			return actionDetails(t, srv.client, "git-pinned", id)["Source"].Status == types.ActionExecutionStatusSucceeded
		}, func() string { return describeActions(t, srv.client, "git-pinned") })
		if got := actionDetails(t, srv.client, "git-pinned", id)["Source"].Output.OutputVariables["CommitId"]; got != first {
			t.Fatalf("pinned to %s, the source ran %s, want %s", revision, got, first)
		}
		if _, err := srv.client.StopPipelineExecution(ctx, &cp.StopPipelineExecutionInput{PipelineName: aws.String("git-pinned"), PipelineExecutionId: aws.String(id), Abandon: true}); err != nil {
			t.Fatal(err)
		}
	}

	awsCLI(t, url, "s3", "mb", "s3://pinned")
	awsCLI(t, url, "s3api", "put-bucket-versioning", "--bucket", "pinned", "--versioning-configuration", "Status=Enabled")
	dir := t.TempDir()
	put := func(key, page string) string {
		zip := filepath.Join(dir, "app.zip")
		if err := os.WriteFile(zip, zipOf(t, map[string]string{"page.txt": page}), 0o644); err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(awsCLI(t, url, "s3api", "put-object", "--bucket", "pinned", "--key", key, "--body", zip, "--query", "VersionId", "--output", "text"))
	}
	put("app.zip", "main\n")
	old := put("release.zip", "release one\n")
	put("release.zip", "release two\n")
	s3Source := func(name, allow string) string {
		return pipelineJSON(name, "QUEUED",
			action("Source", "Source", "AWS", "S3", map[string]string{"S3Bucket": "pinned", "S3ObjectKey": "app.zip", "PollForSourceChanges": "false", "AllowOverrideForS3ObjectKey": allow}, nil, []string{"Src"}, ""),
			action("Wait", "Approval", "AWS", "Manual", nil, nil, nil, ""))
	}
	createPipelineJSON(t, url, s3Source("s3-pinned", "true"))
	id, err := start("s3-pinned",
		types.SourceRevisionOverride{ActionName: aws.String("Source"), RevisionType: types.SourceRevisionTypeS3ObjectKey, RevisionValue: aws.String("release.zip")},
		types.SourceRevisionOverride{ActionName: aws.String("Source"), RevisionType: types.SourceRevisionTypeS3ObjectVersionId, RevisionValue: aws.String(old)})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the pinned S3 source to run", func() bool {
		return actionDetails(t, srv.client, "s3-pinned", id)["Source"].Status == types.ActionExecutionStatusSucceeded
	}, func() string { return describeActions(t, srv.client, "s3-pinned") })
	if v := actionDetails(t, srv.client, "s3-pinned", id)["Source"].Output.OutputVariables; v["ObjectKey"] != "release.zip" || v["VersionId"] != old {
		t.Fatalf("the source fetched %v, want release.zip version %s", v, old)
	}

	// The refusals: a key override where the action does not allow it, and one type twice.
	createPipelineJSON(t, url, s3Source("s3-fixed", "false"))
	wantValidation := func(err error, fragment string) {
		t.Helper()
		var apiErr smithy.APIError
		if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "ValidationException" || !strings.Contains(apiErr.ErrorMessage(), fragment) {
			t.Fatalf("got %v, want a ValidationException saying %q", err, fragment)
		}
	}
	_, err = start("s3-fixed", types.SourceRevisionOverride{ActionName: aws.String("Source"), RevisionType: types.SourceRevisionTypeS3ObjectKey, RevisionValue: aws.String("release.zip")})
	wantValidation(err, "AllowOverrideForS3ObjectKey")
	_, err = start("s3-pinned",
		types.SourceRevisionOverride{ActionName: aws.String("Source"), RevisionType: types.SourceRevisionTypeS3ObjectVersionId, RevisionValue: aws.String(old)},
		types.SourceRevisionOverride{ActionName: aws.String("Source"), RevisionType: types.SourceRevisionTypeS3ObjectVersionId, RevisionValue: aws.String(old)})
	wantValidation(err, "more than once")
}
