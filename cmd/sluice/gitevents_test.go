package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	cp "github.com/aws/aws-sdk-go-v2/service/codepipeline"
	"github.com/aws/aws-sdk-go-v2/service/codepipeline/types"
)

// This file drives connections' webhook endpoint end to end, as a Git server would: real git
// pushes to a repository the server reaches through --git-remote (and to one it hosts), and the
// GitHub-format push and pull_request webhooks that GitHub, Gitea and Forgejo send, signed with
// the connection's secret, over real HTTP to `sluice serve`. Polling is off, so that only the
// pushes and the webhooks start runs.

const (
	gitEventsConnectionID = "5e1f3c2a-9b7d-4e61-8f00-gitevents"
	gitEventsConnection   = "arn:aws:codestar-connections:us-east-1:000000000000:connection/" + gitEventsConnectionID
	otherConnection       = "arn:aws:codeconnections:us-east-1:000000000000:connection/other"
	nullCommit            = "0000000000000000000000000000000000000000"
)

// gitEventsPipeline declares a V2 pipeline whose connection source "Source" watches branch main
// of repository, through connection, with the given triggers; its Commands action "Check" exports
// the source's name.txt as the variable CONTENT.
func gitEventsPipeline(name, repository, connection string, triggers ...types.PipelineTriggerDeclaration) *types.PipelineDeclaration {
	decl := triggerPipeline(name, triggers...)
	decl.Stages[0].Actions[0].Configuration = map[string]string{"ConnectionArn": connection, "FullRepositoryId": repository, "BranchName": "main"}
	check := &decl.Stages[1].Actions[0]
	check.Commands = []string{"test -f name.txt", `CONTENT="$(cat name.txt)"`}
	check.OutputVariables = []string{"CONTENT"}
	return decl
}

// prTrigger is a trigger of the action "Source" with one pull request filter.
func prTrigger(events []types.GitPullRequestEventType, branches []string, paths *types.GitFilePathFilterCriteria) types.PipelineTriggerDeclaration {
	return types.PipelineTriggerDeclaration{ProviderType: types.PipelineTriggerProviderTypeCodeStarSourceConnection,
		GitConfiguration: &types.GitConfiguration{SourceActionName: aws.String("Source"), PullRequest: []types.GitPullRequestFilter{{
			Events: events, Branches: &types.GitBranchFilterCriteria{Includes: branches}, FilePaths: paths}}}}
}

// gitServer posts webhooks to a connection's endpoint as a Git server does.
type gitServer struct {
	t      *testing.T
	url    string
	secret string
}

// deliver posts a payload as event, signed with secret in the headers of style (github or
// gitea), and returns the status.
func (g *gitServer) deliver(style, event, delivery, secret string, payload any) int {
	g.t.Helper()
	body, err := json.Marshal(payload)
	if err != nil {
		g.t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, g.url, bytes.NewReader(body))
	if err != nil {
		g.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	signature := ""
	if secret != "" {
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write(body)
		signature = hex.EncodeToString(mac.Sum(nil))
	}
	switch style {
	case "github":
		req.Header.Set("User-Agent", "GitHub-Hookshot/test")
		req.Header.Set("X-GitHub-Event", event)
		req.Header.Set("X-GitHub-Delivery", delivery)
		if signature != "" {
			req.Header.Set("X-Hub-Signature-256", "sha256="+signature)
		}
	case "gitea":
		for _, kind := range []string{"Gitea", "Gogs"} {
			req.Header.Set("X-"+kind+"-Event", event)
			req.Header.Set("X-"+kind+"-Delivery", delivery)
			if signature != "" {
				req.Header.Set("X-"+kind+"-Signature", signature)
			}
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	g.t.Logf("%s %s %s: %d %s", style, event, delivery, resp.StatusCode, strings.TrimSpace(string(answer)))
	return resp.StatusCode
}

// accept delivers a payload signed with the connection's secret and requires a 200.
func (g *gitServer) accept(style, event, delivery string, payload any) {
	g.t.Helper()
	if status := g.deliver(style, event, delivery, g.secret, payload); status != http.StatusOK {
		g.t.Fatalf("%s %s %s: %d, want 200", style, event, delivery, status)
	}
}

// gitPushPayload is GitHub's push payload, with one commit that changed files.
func gitPushPayload(repository, branch, before, after string, files ...string) map[string]any {
	return map[string]any{"ref": "refs/heads/" + branch, "before": before, "after": after, "created": before == nullCommit, "deleted": false,
		"repository":  map[string]any{"full_name": repository, "name": repository[strings.Index(repository, "/")+1:]},
		"commits":     []any{map[string]any{"id": after, "added": []string{}, "removed": []string{}, "modified": files}},
		"head_commit": map[string]any{"id": after}}
}

// pullRequestPayload is GitHub's pull_request payload for pull request number from head into base.
func pullRequestPayload(repository string, number int, action, base, baseSHA, head, headSHA string) map[string]any {
	repo := map[string]any{"full_name": repository}
	return map[string]any{"action": action, "number": number, "repository": repo,
		"pull_request": map[string]any{"number": number, "state": "open", "merged": false,
			"base": map[string]any{"ref": base, "sha": baseSHA, "repo": repo},
			"head": map[string]any{"ref": head, "sha": headSHA, "repo": repo}}}
}

// connectionSecret reads a connection's secret from the secret endpoint.
func connectionSecret(t *testing.T, addr, id string) string {
	t.Helper()
	var answer struct{ ConnectionID, Secret, WebhookURL string }
	if err := json.Unmarshal([]byte(httpGet(t, "http://"+addr+"/_sluice/connections/"+id+"/secret")), &answer); err != nil {
		t.Fatal(err)
	}
	if answer.ConnectionID != id || len(answer.Secret) != 64 || answer.WebhookURL != "http://"+addr+"/_sluice/connections/"+id+"/webhook" {
		t.Fatalf("the secret endpoint of %s answered %+v", id, answer)
	}
	return answer.Secret
}

// wantGitRun waits for the run of pipeline at commit, and checks that it succeeded, started by
// the connection's webhook with detail, and that its build saw name.txt holding content.
func wantGitRun(t *testing.T, client *cp.Client, pipeline, commit, detail, content string) {
	t.Helper()
	e := executionAt(t, client, pipeline, commit)
	if e.Status != types.PipelineExecutionStatusSucceeded || e.Trigger == nil || e.Trigger.TriggerType != types.TriggerTypeWebhookV2 ||
		aws.ToString(e.Trigger.TriggerDetail) != detail {
		t.Fatalf("%s's run at %s: %s, trigger %s %q, want %q\n%s", pipeline, commit, e.Status, e.Trigger.TriggerType,
			aws.ToString(e.Trigger.TriggerDetail), detail, describeActions(t, client, pipeline))
	}
	details := actionDetails(t, client, pipeline, aws.ToString(e.PipelineExecutionId))
	if got := details["Source"].Output.OutputVariables["CommitId"]; got != commit {
		t.Fatalf("%s's source ran %s, want %s", pipeline, got, commit)
	}
	if got := details["Check"].Output.OutputVariables["CONTENT"]; got != content {
		t.Fatalf("%s's build at %s read name.txt %q, want %q", pipeline, commit, got, content)
	}
}

func TestGitEvents(t *testing.T) {
	bin := buildBinary(t)
	eachStoreArgs(t, func(t *testing.T, args ...string) {
		testGitEvents(t, bin, args...)
	})
}

func testGitEvents(t *testing.T, bin string, storeArgs ...string) {
	ctx := context.Background()
	bare := filepath.Join(t.TempDir(), "remote.git")
	if out, err := exec.Command("git", "init", "-q", "--bare", "-b", "main", bare).CombinedOutput(); err != nil {
		t.Fatalf("git init: %v\n%s", err, out)
	}
	srv := newTestServer(t, bin, append([]string{"--start-on-create=false", "--source-poll-interval", "0",
		"--git-remote", "acme/remote=file://" + bare}, storeArgs...)...)

	// The secret: derived per connection, the same after a restart, and what the command prints.
	secret := connectionSecret(t, srv.addr, gitEventsConnectionID)
	if other := connectionSecret(t, srv.addr, "other"); other == secret {
		t.Fatal("two connections have the same secret")
	}
	srv.stop(syscall.SIGTERM)
	srv.start()
	if again := connectionSecret(t, srv.addr, gitEventsConnectionID); again != secret {
		t.Fatalf("the secret changed across a restart: %s, then %s", secret, again)
	}
	for flag, want := range map[string]string{"": secret, "--url": "http://" + srv.addr + "/_sluice/connections/" + gitEventsConnectionID + "/webhook"} {
		args := []string{"connection-secret", "--endpoint", "http://" + srv.addr, "--connection-id", gitEventsConnection}
		if flag != "" {
			args = append(args, flag)
		}
		out, err := exec.Command(bin, args...).Output()
		if err != nil || strings.TrimSpace(string(out)) != want {
			t.Fatalf("sluice %s: %q %v, want %q", strings.Join(args, " "), out, err, want)
		}
	}
	git := &gitServer{t: t, url: "http://" + srv.addr + "/_sluice/connections/" + gitEventsConnectionID + "/webhook", secret: secret}

	create := func(decl *types.PipelineDeclaration) {
		t.Helper()
		if _, err := srv.client.CreatePipeline(ctx, &cp.CreatePipelineInput{Pipeline: decl}); err != nil {
			t.Fatalf("create %s: %v", aws.ToString(decl.Name), err)
		}
	}
	main := []string{"main"}
	openUpdated := []types.GitPullRequestEventType{types.GitPullRequestEventTypeOpen, types.GitPullRequestEventTypeUpdated}
	create(gitEventsPipeline("push-app", "acme/remote", gitEventsConnection, pushTrigger(types.GitPushFilter{
		Branches: &types.GitBranchFilterCriteria{Includes: main}, FilePaths: &types.GitFilePathFilterCriteria{Includes: []string{"app/**"}}})))
	create(gitEventsPipeline("push-main", "acme/remote", gitEventsConnection, pushTrigger(types.GitPushFilter{
		Branches: &types.GitBranchFilterCriteria{Includes: main}})))
	create(gitEventsPipeline("pr", "acme/remote", gitEventsConnection, prTrigger(openUpdated, main, nil)))
	create(gitEventsPipeline("pr-closed", "acme/remote", gitEventsConnection, prTrigger([]types.GitPullRequestEventType{types.GitPullRequestEventTypeClosed}, main, nil)))
	create(gitEventsPipeline("pr-paths", "acme/remote", gitEventsConnection, prTrigger(openUpdated, main,
		&types.GitFilePathFilterCriteria{Includes: []string{"app/**"}, Excludes: []string{"app/docs/**"}})))
	create(gitEventsPipeline("pr-release", "acme/remote", gitEventsConnection, prTrigger(openUpdated, []string{"release/**"}, nil)))
	both := prTrigger(openUpdated, main, nil)
	both.GitConfiguration.Push = []types.GitPushFilter{{Branches: &types.GitBranchFilterCriteria{Includes: main}}}
	create(gitEventsPipeline("other-connection", "acme/remote", otherConnection, both))

	// Pushes: a new main, with app/ files, starts both push pipelines; a webhook signed with
	// another connection's secret, or not at all, is refused and starts nothing; a docs-only
	// push, delivered with Gitea's headers, starts only the one without file paths.
	repo := newGitRepo(t)
	first := repo.commit("first", map[string]string{"name.txt": "first", "app/main.go": "package main\n", "README.md": "remote\n"})
	repo.push(bare, "main")
	firstPush := gitPushPayload("acme/remote", "main", nullCommit, first, "name.txt", "app/main.go", "README.md")
	// Refused: a pull request that would start "pr" at the first commit (which it never runs).
	otherSecret := connectionSecret(t, srv.addr, "other")
	refused := pullRequestPayload("acme/remote", 9, "opened", "main", first, "main", first)
	for name, key := range map[string]string{"another connection's secret": otherSecret, "no signature": ""} {
		for _, style := range []string{"github", "gitea"} {
			if status := git.deliver(style, "pull_request", "refused-"+style+"-"+name, key, refused); status != http.StatusUnauthorized {
				t.Fatalf("a %s pull request with %s: %d, want 401", style, name, status)
			}
		}
	}
	if status := git.deliver("github", "push", "refused-push", otherSecret, firstPush); status != http.StatusUnauthorized {
		t.Fatalf("a push signed with another connection's secret: %d, want 401", status)
	}
	git.accept("github", "ping", "ping-1", map[string]any{"zen": "Keep it logically awesome.", "hook_id": 1})
	git.accept("github", "push", "push-1", firstPush)
	wantGitRun(t, srv.client, "push-app", first, gitEventsConnection, "first")
	wantGitRun(t, srv.client, "push-main", first, gitEventsConnection, "first")
	docs := repo.commit("docs", map[string]string{"README.md": "remote, documented\n"})
	repo.push(bare, "main")
	git.accept("gitea", "push", "push-2", gitPushPayload("acme/remote", "main", first, docs, "README.md"))
	wantGitRun(t, srv.client, "push-main", docs, gitEventsConnection, "first")

	// Pull request #1 from feature into main: opened starts the pull request pipelines on main
	// at the head commit (its app/ change passes the path filter); the same delivery again starts
	// nothing more.
	repo.git("checkout", "-q", "-b", "feature")
	f1 := repo.commit("feature one", map[string]string{"name.txt": "feature one", "app/feature.go": "package main\n"})
	repo.push(bare, "feature")
	opened := pullRequestPayload("acme/remote", 1, "opened", "main", docs, "feature", f1)
	git.accept("github", "pull_request", "pr-1-opened", opened)
	git.accept("github", "pull_request", "pr-1-opened", opened)
	detail := func(n int, event string) string {
		return fmt.Sprintf("%s pull request #%d %s", gitEventsConnection, n, event)
	}
	wantGitRun(t, srv.client, "pr", f1, detail(1, "OPEN"), "feature one")
	wantGitRun(t, srv.client, "pr-paths", f1, detail(1, "OPEN"), "feature one")

	// Updated, with Gitea's headers and action: a docs-only commit, but the pull request as a
	// whole still changes app/feature.go.
	f2 := repo.commit("feature two", map[string]string{"name.txt": "feature two", "app/docs/notes.md": "notes\n"})
	repo.push(bare, "feature")
	git.accept("gitea", "pull_request", "pr-1-sync", pullRequestPayload("acme/remote", 1, "synchronized", "main", docs, "feature", f2))
	wantGitRun(t, srv.client, "pr", f2, detail(1, "UPDATED"), "feature two")
	wantGitRun(t, srv.client, "pr-paths", f2, detail(1, "UPDATED"), "feature two")

	// Pull request #2 changes excluded files only: the path-filtered pipeline does not start.
	repo.git("checkout", "-q", "main")
	repo.git("checkout", "-q", "-b", "guide")
	g1 := repo.commit("guide", map[string]string{"name.txt": "guide", "app/docs/guide.md": "guide\n"})
	repo.push(bare, "guide")
	git.accept("github", "pull_request", "pr-2-opened", pullRequestPayload("acme/remote", 2, "opened", "main", docs, "guide", g1))
	wantGitRun(t, srv.client, "pr", g1, detail(2, "OPEN"), "guide")

	// Edits start nothing; closing #1 starts only the pipeline that lists CLOSED, at its head.
	git.accept("github", "pull_request", "pr-1-edited", pullRequestPayload("acme/remote", 1, "edited", "main", docs, "feature", f2))
	git.accept("github", "pull_request", "pr-1-closed", pullRequestPayload("acme/remote", 1, "closed", "main", docs, "feature", f2))
	wantGitRun(t, srv.client, "pr-closed", f2, detail(1, "CLOSED"), "feature two")

	// Events are handled in order: once the close has started its run, every event before it has
	// started all it would.
	wantRuns(t, srv.client, "push-app", first)
	wantRuns(t, srv.client, "push-main", first, docs)
	wantRuns(t, srv.client, "pr", f1, f2, g1)
	wantRuns(t, srv.client, "pr-paths", f1, f2)
	wantRuns(t, srv.client, "pr-closed", f2)
	wantRuns(t, srv.client, "pr-release")
	wantRuns(t, srv.client, "other-connection")

	// A repository Sluice hosts, standing in for the Git server's: its own push starts the
	// pipeline on main, and the Git server's webhook for the same push starts nothing more (one
	// execution per revision of an action); the feature branch's push starts nothing, and its
	// pull request's webhook starts the pull request pipeline at its head.
	hosted := "http://" + srv.addr + "/v1/repos/acme/app"
	create(gitEventsPipeline("hosted-main", "acme/app", gitEventsConnection))
	create(gitEventsPipeline("hosted-pr", "acme/app", gitEventsConnection, prTrigger(openUpdated, main, nil)))
	app := newGitRepo(t)
	h1 := app.commit("hosted", map[string]string{"name.txt": "hosted"})
	app.push(hosted, "main")
	wantGitRun(t, srv.client, "hosted-main", h1, gitEventsConnection, "hosted")
	git.accept("github", "push", "hosted-push", gitPushPayload("acme/app", "main", nullCommit, h1, "name.txt"))
	app.git("checkout", "-q", "-b", "topic")
	h2 := app.commit("topic", map[string]string{"name.txt": "topic"})
	app.push(hosted, "topic")
	git.accept("github", "pull_request", "hosted-pr-opened", pullRequestPayload("acme/app", 3, "opened", "main", h1, "topic", h2))
	wantGitRun(t, srv.client, "hosted-pr", h2, detail(3, "OPEN"), "topic")
	wantRuns(t, srv.client, "hosted-main", h1)
	wantRuns(t, srv.client, "hosted-pr", h2)
}
