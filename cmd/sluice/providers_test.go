package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cp "github.com/aws/aws-sdk-go-v2/service/codepipeline"
	"github.com/aws/aws-sdk-go-v2/service/codepipeline/types"
)

// gitRepo is a local working repository pushed to Sluice's hosted git with the git program.
type gitRepo struct {
	t   *testing.T
	dir string
}

func newGitRepo(t *testing.T) *gitRepo {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	r := &gitRepo{t: t, dir: t.TempDir()}
	r.git("init", "-q", "-b", "main")
	r.git("config", "user.name", "Sluice Test")
	r.git("config", "user.email", "test@sluice.invalid")
	return r
}

func (r *gitRepo) git(args ...string) string {
	r.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = r.dir
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// commit writes files and commits them, returning the commit id.
func (r *gitRepo) commit(message string, files map[string]string) string {
	r.t.Helper()
	for name, body := range files {
		path := filepath.Join(r.dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			r.t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			r.t.Fatal(err)
		}
	}
	r.git("add", "-A")
	r.git("commit", "-q", "-m", message)
	return r.git("rev-parse", "HEAD")
}

func (r *gitRepo) push(url, branch string) {
	r.t.Helper()
	r.git("push", "-q", url, "HEAD:refs/heads/"+branch)
}

// createPipelineJSON creates a pipeline from its declaration in JSON, through the AWS CLI.
func createPipelineJSON(t *testing.T, endpoint, declaration string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "pipeline.json")
	if err := os.WriteFile(path, []byte(`{"pipeline":`+declaration+`}`), 0o644); err != nil {
		t.Fatal(err)
	}
	awsCLI(t, endpoint, "codepipeline", "create-pipeline", "--cli-input-json", "file://"+path)
}

// action declares an action in JSON.
func action(name, category, owner, provider string, config map[string]string, inputs, outputs []string, extra string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `{"name":%q,"actionTypeId":{"category":%q,"owner":%q,"provider":%q,"version":"1"},"configuration":{`, name, category, owner, provider)
	first := true
	for k, v := range config {
		if !first {
			b.WriteString(",")
		}
		first = false
		fmt.Fprintf(&b, "%q:%q", k, v)
	}
	b.WriteString(`},"inputArtifacts":[`)
	for i, in := range inputs {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"name":%q}`, in)
	}
	b.WriteString(`],"outputArtifacts":[`)
	for i, out := range outputs {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"name":%q}`, out)
	}
	b.WriteString("]" + extra + "}")
	return b.String()
}

// pipelineJSON declares a pipeline of one action per stage.
func pipelineJSON(name, mode string, actions ...string) string {
	var stages []string
	for i, a := range actions {
		stages = append(stages, fmt.Sprintf(`{"name":"Stage%d","actions":[%s]}`, i+1, a))
	}
	return fmt.Sprintf(`{"name":%q,"roleArn":"arn:aws:iam::000000000000:role/cp","pipelineType":"V2","executionMode":%q,
		"artifactStore":{"type":"S3","location":"artifacts"},"stages":[%s]}`, name, mode, strings.Join(stages, ","))
}

// executions lists a pipeline's executions, newest first.
func executions(t *testing.T, client *cp.Client, pipeline string) []types.PipelineExecutionSummary {
	t.Helper()
	out, err := client.ListPipelineExecutions(context.Background(), &cp.ListPipelineExecutionsInput{PipelineName: aws.String(pipeline)})
	if err != nil {
		t.Fatal(err)
	}
	return out.PipelineExecutionSummaries
}

// waitFor polls until cond holds.
func waitFor(t *testing.T, what string, cond func() bool, describe func() string) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); !cond(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not happen in time: %s", what, describe())
		}
	}
}

// executionAt waits for the execution of pipeline whose source ran commit to end, and returns it.
func executionAt(t *testing.T, client *cp.Client, pipeline, commit string) types.PipelineExecutionSummary {
	t.Helper()
	var found types.PipelineExecutionSummary
	waitFor(t, "an execution of "+commit, func() bool {
		for _, e := range executions(t, client, pipeline) {
			for _, r := range e.SourceRevisions {
				if aws.ToString(r.RevisionId) == commit && e.Status != types.PipelineExecutionStatusInProgress {
					found = e
					return true
				}
			}
		}
		return false
	}, func() string { return describeActions(t, client, pipeline) })
	return found
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

const siteBuildspec = `version: 0.2
env:
  exported-variables: [PAGE_LINES]
phases:
  build:
    commands:
      - mkdir -p out
      - tr a-z A-Z < page.txt > out/page.txt
      - PAGE_LINES=$(wc -l < out/page.txt | tr -d ' ')
artifacts:
  base-directory: out
  files: ['**/*']
`

// TestGitPushBuildsAndDeploys pushes to Sluice's hosted git and follows the CodeCommit source,
// the CodeBuild buildspec and the S3 deploy to the bytes in the site bucket, then pushes again.
func TestGitPushBuildsAndDeploys(t *testing.T) {
	bin := buildBinary(t)
	srv := newTestServer(t, bin, "--data", t.TempDir(), "--source-poll-interval", "0")
	url := "http://" + srv.addr
	repo := newGitRepo(t)
	first := repo.commit("first page", map[string]string{"buildspec.yml": siteBuildspec, "page.txt": "hello\n"})
	repo.push(url+"/v1/repos/site", "main")
	awsCLI(t, url, "s3", "mb", "s3://site")

	createPipelineJSON(t, url, pipelineJSON("git-site", "SUPERSEDED",
		action("Source", "Source", "AWS", "CodeCommit", map[string]string{"RepositoryName": "site", "BranchName": "main", "PollForSourceChanges": "false"}, nil, []string{"Src"}, `,"namespace":"SourceVariables"`),
		action("Build", "Build", "AWS", "CodeBuild", map[string]string{"ProjectName": "site"}, []string{"Src"}, []string{"Out"}, ""),
		action("Deploy", "Deploy", "AWS", "S3", map[string]string{"BucketName": "site", "Extract": "true", "ObjectKey": "#{SourceVariables.CommitId}"}, []string{"Out"}, nil, ""),
	))
	e := executionAt(t, srv.client, "git-site", first)
	if e.Status != types.PipelineExecutionStatusSucceeded {
		t.Fatalf("first execution %s: %s", e.Status, describeActions(t, srv.client, "git-site"))
	}
	if got := awsCLI(t, url, "s3", "cp", "s3://site/"+first+"/page.txt", "-"); got != "HELLO\n" {
		t.Fatalf("deployed page %q", got)
	}
	details := actionDetails(t, srv.client, "git-site", aws.ToString(e.PipelineExecutionId))
	src, build := details["Source"], details["Build"]
	if v := src.Output.OutputVariables; v["CommitId"] != first || v["BranchName"] != "main" || v["RepositoryName"] != "site" || strings.TrimSpace(v["CommitMessage"]) != "first page" || v["AuthorDate"] == "" {
		t.Fatalf("source output variables %v", v)
	}
	if v := build.Output.OutputVariables; v["PAGE_LINES"] != "1" {
		t.Fatalf("build output variables %v", v)
	}
	logURL := aws.ToString(build.Output.ExecutionResult.ExternalExecutionUrl)
	if !strings.HasPrefix(logURL, url+"/_sluice/logs/") {
		t.Fatalf("build external execution URL %q", logURL)
	}
	if log := httpGet(t, logURL); !strings.Contains(log, "Entering phase BUILD") || !strings.Contains(log, "Running command tr a-z A-Z") {
		t.Fatalf("build log:\n%s", log)
	}

	second := repo.commit("second page", map[string]string{"page.txt": "hello\nagain\n"})
	repo.push(url+"/v1/repos/site", "main")
	e = executionAt(t, srv.client, "git-site", second)
	if e.Status != types.PipelineExecutionStatusSucceeded || e.Trigger.TriggerType != types.TriggerTypeCloudWatchEvent {
		t.Fatalf("pushed execution %s triggered by %s: %s", e.Status, e.Trigger.TriggerType, describeActions(t, srv.client, "git-site"))
	}
	if got := awsCLI(t, url, "s3", "cp", "s3://site/"+second+"/page.txt", "-"); got != "HELLO\nAGAIN\n" {
		t.Fatalf("deployed page after the second push %q", got)
	}
	// A push to another branch starts nothing.
	repo.push(url+"/v1/repos/site", "feature")
	time.Sleep(500 * time.Millisecond)
	if n := len(executions(t, srv.client, "git-site")); n != 2 {
		t.Fatalf("%d executions after a push to an unwatched branch, want 2", n)
	}
}

// TestPushesInQuickSuccessionSupersede pushes two commits while an earlier execution builds:
// the first waits for the build stage and is superseded by the second, which deploys.
func TestPushesInQuickSuccessionSupersede(t *testing.T) {
	bin := buildBinary(t)
	srv := newTestServer(t, bin, "--data", t.TempDir(), "--source-poll-interval", "0")
	url := "http://" + srv.addr
	repo := newGitRepo(t)
	slow := strings.Replace(siteBuildspec, "      - mkdir -p out\n", "      - mkdir -p out\n      - sleep 3\n", 1)
	base := repo.commit("base", map[string]string{"buildspec.yml": slow, "page.txt": "base\n"})
	repo.push(url+"/v1/repos/app", "main")
	awsCLI(t, url, "s3", "mb", "s3://site")
	createPipelineJSON(t, url, pipelineJSON("quick", "SUPERSEDED",
		action("Source", "Source", "AWS", "CodeCommit", map[string]string{"RepositoryName": "app", "BranchName": "main"}, nil, []string{"Src"}, ""),
		action("Build", "Build", "AWS", "CodeBuild", map[string]string{"ProjectName": "app"}, []string{"Src"}, []string{"Out"}, ""),
		action("Deploy", "Deploy", "AWS", "S3", map[string]string{"BucketName": "site", "Extract": "false", "ObjectKey": "latest.zip"}, []string{"Out"}, nil, ""),
	))
	waitFor(t, "the first build to start", func() bool {
		state, err := srv.client.GetPipelineState(context.Background(), &cp.GetPipelineStateInput{Name: aws.String("quick")})
		if err != nil {
			t.Fatal(err)
		}
		l := state.StageStates[1].ActionStates[0].LatestExecution
		return l != nil && l.Status == types.ActionExecutionStatusInProgress
	}, func() string { return describeActions(t, srv.client, "quick") })

	a := repo.commit("a", map[string]string{"page.txt": "a\n"})
	repo.push(url+"/v1/repos/app", "main")
	b := repo.commit("b", map[string]string{"page.txt": "b\n"})
	repo.push(url+"/v1/repos/app", "main")

	eb := executionAt(t, srv.client, "quick", b)
	ea := executionAt(t, srv.client, "quick", a)
	e0 := executionAt(t, srv.client, "quick", base)
	if e0.Status != types.PipelineExecutionStatusSucceeded || ea.Status != types.PipelineExecutionStatusSuperseded || eb.Status != types.PipelineExecutionStatusSucceeded {
		t.Fatalf("executions of base, a, b ended %s, %s, %s; want Succeeded, Superseded, Succeeded: %s", e0.Status, ea.Status, eb.Status, describeActions(t, srv.client, "quick"))
	}
	for _, e := range []types.PipelineExecutionSummary{ea, eb} {
		if e.Trigger.TriggerType != types.TriggerTypePollForSourceChanges {
			t.Fatalf("a push to a polling CodeCommit source is reported as %s", e.Trigger.TriggerType)
		}
	}
	zipPath := filepath.Join(t.TempDir(), "latest.zip")
	awsCLI(t, url, "s3", "cp", "s3://site/latest.zip", zipPath)
	raw, _ := os.ReadFile(zipPath)
	if files := unzipOf(t, raw); files["page.txt"] != "B\n" {
		t.Fatalf("deployed %v, want the build of commit b", files)
	}
}

// TestBuildFailures checks that failures say what failed: a failing buildspec command with its
// log tail, a missing branch, repository and S3 object, and a build killed at its timeout.
func TestBuildFailures(t *testing.T) {
	bin := buildBinary(t)
	projects := t.TempDir()
	for name, def := range map[string]string{
		"slow":    `{"source":{"buildspec":"slow/buildspec.yml"}}`,
		"missing": `{"source":{"buildspec":"ci/none.yml"}}`,
	} {
		if err := os.WriteFile(filepath.Join(projects, name+".json"), []byte(def), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	srv := newTestServer(t, bin, "--data", t.TempDir(), "--source-poll-interval", "0", "--build-timeout", "2s", "--build-projects", projects)
	url := "http://" + srv.addr
	repo := newGitRepo(t)
	slow := uniqueSleep(60)
	repo.commit("failing build", map[string]string{
		"buildspec.yml": `version: 0.2
phases:
  build:
    commands:
      - echo "about to fail"
      - exit 3
      - echo "never runs"
  post_build:
    commands:
      - echo "post_build sees succeeding=$CODEBUILD_BUILD_SUCCEEDING"
`,
		"slow/buildspec.yml": `version: 0.2
phases:
  build:
    commands:
      - ` + slow + `
`,
	})
	repo.push(url+"/v1/repos/app", "main")

	fail := func(name string, wants []string, actions ...string) {
		t.Helper()
		createPipelineJSON(t, url, pipelineJSON(name, "QUEUED", actions...))
		execID := waitForExecution(t, srv.client, name, types.PipelineExecutionStatusFailed)
		var messages []string
		for _, d := range actionDetails(t, srv.client, name, execID) {
			if d.Status == types.ActionExecutionStatusFailed {
				messages = append(messages, aws.ToString(d.Output.ExecutionResult.ErrorDetails.Message))
			}
		}
		for _, want := range wants {
			if len(messages) != 1 || !strings.Contains(messages[0], want) {
				t.Fatalf("%s failed with %q, want a message containing %q", name, messages, want)
			}
		}
	}
	source := func(repository, branch string) string {
		return action("Source", "Source", "AWS", "CodeCommit", map[string]string{"RepositoryName": repository, "BranchName": branch}, nil, []string{"Src"}, "")
	}
	build := func(project string) string {
		return action("Build", "Build", "AWS", "CodeBuild", map[string]string{"ProjectName": project}, []string{"Src"}, nil, "")
	}
	fail("failing-command", []string{"Error while executing command: exit 3. Reason: exit status 3 (phase BUILD)", "about to fail", "post_build sees succeeding=0"},
		source("app", "main"), build("p"))
	fail("missing-branch", []string{"The branch release does not exist in the repository app"}, source("app", "release"), build("p"))
	fail("missing-repository", []string{"The repository nothing does not exist: push to " + url + "/v1/repos/nothing"}, source("nothing", "main"), build("p"))
	fail("missing-object", []string{"The source bucket none does not exist"},
		action("Source", "Source", "AWS", "S3", map[string]string{"S3Bucket": "none", "S3ObjectKey": "app.zip"}, nil, []string{"Src"}, ""), build("p"))
	fail("missing-buildspec", []string{"The primary source artifact Src has no ci/none.yml"}, source("app", "main"), build("missing"))
	fail("secret-variable", []string{"has type SECRETS_MANAGER"}, source("app", "main"),
		action("Build", "Build", "AWS", "CodeBuild", map[string]string{"ProjectName": "p", "EnvironmentVariables": `[{"name":"X","value":"a:b","type":"SECRETS_MANAGER"}]`}, []string{"Src"}, nil, ""))
	fail("timeout", []string{"The build timed out: it did not finish within 2s"}, source("app", "main"), build("slow"))

	// Builds run in a sandbox, which they cannot write a pid file out of: find them by name.
	if pids := processes(slow); len(pids) > 0 {
		t.Fatalf("the timed-out build's processes %v still run", pids)
	}
}

// TestComputeCloneRefsAndPolling runs a V2 pipeline of two sources (a CODEBUILD_CLONE_REF git
// source and a polled S3 object), a Commands action that uses git history, a CodeBuild project
// with an inline buildspec making two artifacts, and two S3 deploys; then a new object version
// is picked up by polling, and `sluice logs` prints the builds' logs.
func TestComputeCloneRefsAndPolling(t *testing.T) {
	bin := buildBinary(t)
	projects := t.TempDir()
	project := `{"source":{"buildspec":"version: 0.2\nphases:\n  build:\n    commands:\n      - mkdir -p a b\n      - cp out/commits.txt a/\n      - cp \"$CODEBUILD_SRC_DIR_Config/settings.txt\" b/\nartifacts:\n  secondary-artifacts:\n    A:\n      files: [a/*]\n      discard-paths: yes\n    B:\n      base-directory: b\n      files: ['**/*']\n"},
		"environment":{"environmentVariables":[{"name":"FROM_PROJECT","value":"yes"}]}}`
	if err := os.WriteFile(filepath.Join(projects, "split.json"), []byte(project), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := newTestServer(t, bin, "--data", t.TempDir(), "--source-poll-interval", "300ms", "--build-projects", projects)
	url := "http://" + srv.addr
	repo := newGitRepo(t)
	repo.commit("one", map[string]string{"README": "one\n"})
	repo.commit("two", map[string]string{"README": "two\n"})
	repo.push(url+"/v1/repos/tools", "main")
	awsCLI(t, url, "s3", "mb", "s3://sources")
	awsCLI(t, url, "s3api", "put-bucket-versioning", "--bucket", "sources", "--versioning-configuration", "Status=Enabled")
	putConfig := func(settings string) string {
		path := filepath.Join(t.TempDir(), "config.zip")
		if err := os.WriteFile(path, zipOf(t, map[string]string{"settings.txt": settings}), 0o644); err != nil {
			t.Fatal(err)
		}
		out := awsCLI(t, url, "s3api", "put-object", "--bucket", "sources", "--key", "config.zip", "--body", path, "--query", "VersionId", "--output", "text")
		return strings.TrimSpace(out)
	}
	putConfig("first\n")
	awsCLI(t, url, "s3", "mb", "s3://site")

	gitSource := action("Repo", "Source", "AWS", "CodeCommit", map[string]string{"RepositoryName": "tools", "BranchName": "main", "OutputArtifactFormat": "CODEBUILD_CLONE_REF", "PollForSourceChanges": "false"}, nil, []string{"Repo"}, "")
	s3Source := action("Config", "Source", "AWS", "S3", map[string]string{"S3Bucket": "sources", "S3ObjectKey": "config.zip"}, nil, []string{"Config"}, "")
	commands := action("Count", "Compute", "AWS", "Commands", nil, []string{"Repo", "Config"}, nil,
		`,"commands":["mkdir -p out","git rev-list --count HEAD > out/commits.txt","export COMMITS=$(cat out/commits.txt)","test \"$(cat $CODEBUILD_SRC_DIR_Config/settings.txt)\" != ''"],"outputVariables":["COMMITS"],"namespace":"Count"`)
	commands = strings.Replace(commands, `"outputArtifacts":[]`, `"outputArtifacts":[{"name":"Bundle","files":["out/**/*"]}]`, 1)
	split := action("Split", "Build", "AWS", "CodeBuild", map[string]string{"ProjectName": "split", "PrimarySource": "Bundle"}, []string{"Bundle", "Config"}, []string{"A", "B"}, "")
	deployA := action("DeployA", "Deploy", "AWS", "S3", map[string]string{"BucketName": "site", "Extract": "true", "ObjectKey": "a-#{Count.COMMITS}"}, []string{"A"}, nil, "")
	deployB := action("DeployB", "Deploy", "AWS", "S3", map[string]string{"BucketName": "site", "Extract": "true", "ObjectKey": "b"}, []string{"B"}, nil, "")
	decl := fmt.Sprintf(`{"name":"compute","roleArn":"arn:aws:iam::000000000000:role/cp","pipelineType":"V2","executionMode":"QUEUED",
		"artifactStore":{"type":"S3","location":"artifacts"},"stages":[
		{"name":"Source","actions":[%s,%s]},{"name":"Count","actions":[%s]},{"name":"Split","actions":[%s]},{"name":"Deploy","actions":[%s,%s]}]}`,
		gitSource, s3Source, commands, split, deployA, deployB)
	createPipelineJSON(t, url, decl)
	first := waitForExecution(t, srv.client, "compute", types.PipelineExecutionStatusSucceeded)
	if got := awsCLI(t, url, "s3", "cp", "s3://site/a-2/commits.txt", "-"); got != "2\n" {
		t.Fatalf("deployed commit count %q, want the clone's 2 commits", got)
	}
	if got := awsCLI(t, url, "s3", "cp", "s3://site/b/settings.txt", "-"); got != "first\n" {
		t.Fatalf("deployed settings %q", got)
	}
	if v := actionDetails(t, srv.client, "compute", first)["Count"].Output.OutputVariables; v["COMMITS"] != "2" {
		t.Fatalf("Commands output variables %v", v)
	}

	cmd := exec.Command(bin, "logs", "--endpoint", url, "compute", first)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("sluice logs: %v\n%s", err, out)
	}
	for _, want := range []string{"==> Count / Count", "==> Split / Split", "Running command git rev-list --count HEAD > out/commits.txt", "Stored the output artifact B"} {
		if !strings.Contains(string(out), want) {
			t.Fatalf("sluice logs printed no %q:\n%s", want, out)
		}
	}

	version := putConfig("second\n")
	e := executionAt(t, srv.client, "compute", version)
	if e.Status != types.PipelineExecutionStatusSucceeded || e.Trigger.TriggerType != types.TriggerTypePollForSourceChanges {
		t.Fatalf("polled execution %s triggered by %s: %s", e.Status, e.Trigger.TriggerType, describeActions(t, srv.client, "compute"))
	}
	if got := awsCLI(t, url, "s3", "cp", "s3://site/b/settings.txt", "-"); got != "second\n" {
		t.Fatalf("deployed settings after the new version %q", got)
	}
}

// TestStopAndAbandonKillsTheBuild stops an execution with abandon while its build runs: the
// build's processes are killed and the execution ends Stopped.
func TestStopAndAbandonKillsTheBuild(t *testing.T) {
	bin := buildBinary(t)
	srv := newTestServer(t, bin, "--data", t.TempDir(), "--source-poll-interval", "0", "--job-ack-timeout", "2s")
	url := "http://" + srv.addr
	repo := newGitRepo(t)
	slow := uniqueSleep(120)
	repo.commit("slow", map[string]string{"buildspec.yml": "version: 0.2\nphases:\n  build:\n    commands:\n      - " + slow + " & wait\n"})
	repo.push(url+"/v1/repos/slow", "main")
	createPipelineJSON(t, url, pipelineJSON("stopper", "QUEUED",
		action("Source", "Source", "AWS", "CodeCommit", map[string]string{"RepositoryName": "slow", "BranchName": "main"}, nil, []string{"Src"}, ""),
		action("Build", "Build", "AWS", "CodeBuild", map[string]string{"ProjectName": "slow"}, []string{"Src"}, nil, "")))
	// Builds run in a sandbox, which they cannot write a pid file out of: find them by name.
	waitFor(t, "the build to start", func() bool { return len(processes(slow)) == 1 }, func() string { return describeActions(t, srv.client, "stopper") })
	pid := processes(slow)[0]
	id := aws.ToString(executions(t, srv.client, "stopper")[0].PipelineExecutionId)
	if _, err := srv.client.StopPipelineExecution(context.Background(), &cp.StopPipelineExecutionInput{PipelineName: aws.String("stopper"),
		PipelineExecutionId: aws.String(id), Abandon: true, Reason: aws.String("test")}); err != nil {
		t.Fatal(err)
	}
	waitForExecution(t, srv.client, "stopper", types.PipelineExecutionStatusStopped)
	waitFor(t, "the build's process to be killed", func() bool { return syscall.Kill(pid, 0) != nil }, func() string { return "pid " + strconv.Itoa(pid) + " still runs" })
}

// TestConnectionSources reads a connection source from a remote mapped with --git-remote and
// polls it for new commits; and applies a V2 pipeline's push trigger branch filters to pushes
// to a hosted owner/name repository.
func TestConnectionSources(t *testing.T) {
	bin := buildBinary(t)
	remote := filepath.Join(t.TempDir(), "widgets.git")
	if out, err := exec.Command("git", "init", "-q", "--bare", "-b", "main", remote).CombinedOutput(); err != nil {
		t.Fatalf("git init: %v\n%s", err, out)
	}
	srv := newTestServer(t, bin, "--data", t.TempDir(), "--source-poll-interval", "300ms", "--git-remote", "acme/widgets=file://"+remote)
	url := "http://" + srv.addr
	widgets := newGitRepo(t)
	widgets.commit("first", map[string]string{"name.txt": "widgets\n"})
	widgets.push(remote, "main")

	connection := "arn:aws:codeconnections:us-east-1:000000000000:connection/abc"
	check := action("Check", "Compute", "AWS", "Commands", nil, []string{"Src"}, nil, `,"commands":["grep -q widgets name.txt"]`)
	createPipelineJSON(t, url, pipelineJSON("widgets", "QUEUED",
		action("Source", "Source", "AWS", "CodeStarSourceConnection", map[string]string{"ConnectionArn": connection, "FullRepositoryId": "acme/widgets", "BranchName": "main"}, nil, []string{"Src"}, ""),
		check))
	first := waitForExecution(t, srv.client, "widgets", types.PipelineExecutionStatusSucceeded)
	if v := actionDetails(t, srv.client, "widgets", first)["Source"].Output.OutputVariables; v["FullRepositoryName"] != "acme/widgets" || v["ConnectionArn"] != connection || v["BranchName"] != "main" {
		t.Fatalf("connection source output variables %v", v)
	}
	second := widgets.commit("second", map[string]string{"name.txt": "widgets, two\n"})
	widgets.push(remote, "main")
	if e := executionAt(t, srv.client, "widgets", second); e.Status != types.PipelineExecutionStatusSucceeded || e.Trigger.TriggerType != types.TriggerTypePollForSourceChanges {
		t.Fatalf("polled execution %s, trigger %s", e.Status, e.Trigger.TriggerType)
	}

	// A hosted owner/name repository with push triggers: only branches they include start runs.
	gadgets := newGitRepo(t)
	gadgets.commit("first", map[string]string{"name.txt": "widgets too\n"})
	gadgets.push(url+"/v1/repos/acme/gadgets", "main")
	decl := pipelineJSON("gadgets", "QUEUED",
		action("Source", "Source", "AWS", "CodeStarSourceConnection", map[string]string{"ConnectionArn": connection, "FullRepositoryId": "acme/gadgets", "BranchName": "main"}, nil, []string{"Src"}, ""),
		check)
	decl = strings.TrimSuffix(decl, "}") + `,"triggers":[{"providerType":"CodeStarSourceConnection","gitConfiguration":{"sourceActionName":"Source","push":[{"branches":{"includes":["release/**"],"excludes":["release/skip-*"]}}]}}]}`
	createPipelineJSON(t, url, decl)
	waitForExecution(t, srv.client, "gadgets", types.PipelineExecutionStatusSucceeded)
	gadgets.commit("main only", map[string]string{"other.txt": "x\n"})
	gadgets.push(url+"/v1/repos/acme/gadgets", "main")
	gadgets.push(url+"/v1/repos/acme/gadgets", "release/skip-this")
	release := gadgets.commit("release", map[string]string{"other.txt": "y\n"})
	gadgets.push(url+"/v1/repos/acme/gadgets", "release/1.0")
	e := executionAt(t, srv.client, "gadgets", release)
	if e.Status != types.PipelineExecutionStatusSucceeded || e.Trigger.TriggerType != types.TriggerTypeWebhookV2 {
		t.Fatalf("execution of the release push %s, trigger %s", e.Status, e.Trigger.TriggerType)
	}
	if n := len(executions(t, srv.client, "gadgets")); n != 2 {
		t.Fatalf("%d executions of gadgets, want 2: the first and the release push's", n)
	}
}

// TestGitHubVersion1Source runs the ThirdParty GitHub source on a hosted owner/repo repository:
// its first run, and a push that starts the next as a webhook would.
func TestGitHubVersion1Source(t *testing.T) {
	bin := buildBinary(t)
	srv := newTestServer(t, bin, "--data", t.TempDir(), "--source-poll-interval", "0")
	url := "http://" + srv.addr
	repo := newGitRepo(t)
	repo.commit("first", map[string]string{"name.txt": "gizmos\n"})
	repo.push(url+"/v1/repos/acme/gizmos", "main")
	createPipelineJSON(t, url, pipelineJSON("gizmos", "QUEUED",
		action("Source", "Source", "ThirdParty", "GitHub", map[string]string{"Owner": "acme", "Repo": "gizmos", "Branch": "main", "OAuthToken": "secret", "PollForSourceChanges": "false"}, nil, []string{"Src"}, ""),
		action("Check", "Compute", "AWS", "Commands", nil, []string{"Src"}, nil, `,"commands":["grep -q gizmos name.txt"]`)))
	first := waitForExecution(t, srv.client, "gizmos", types.PipelineExecutionStatusSucceeded)
	v := actionDetails(t, srv.client, "gizmos", first)["Source"].Output.OutputVariables
	if v["RepositoryName"] != "gizmos" || v["BranchName"] != "main" || !strings.HasSuffix(v["CommitUrl"], "/acme/gizmos/commit/"+v["CommitId"]) {
		t.Fatalf("GitHub source output variables %v", v)
	}
	second := repo.commit("second", map[string]string{"name.txt": "gizmos, two\n"})
	repo.push(url+"/v1/repos/acme/gizmos", "main")
	if e := executionAt(t, srv.client, "gizmos", second); e.Status != types.PipelineExecutionStatusSucceeded || e.Trigger.TriggerType != types.TriggerTypeWebhook {
		t.Fatalf("pushed execution %s, trigger %s", e.Status, e.Trigger.TriggerType)
	}
}
