package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	cp "github.com/aws/aws-sdk-go-v2/service/codepipeline"
	"github.com/aws/aws-sdk-go-v2/service/codepipeline/types"
	"github.com/aws/smithy-go"
)

// This file drives V2 pipelines' triggers end to end: real git pushes of branches and tags to a
// repository the server hosts start the pipelines whose push filters match them (tags, branches,
// file paths, includes and excludes), with polling off so that only the pushes start runs; the
// default trigger shows in GetPipeline; and CreatePipeline refuses triggers AWS refuses, in its
// words.

const triggersConnection = "arn:aws:codeconnections:us-east-1:000000000000:connection/triggers"

// triggerPipeline declares a V2 pipeline whose connection source "Source" watches branch main
// of the hosted repository acme/app, with the given triggers, and a Commands check of its code.
func triggerPipeline(name string, triggers ...types.PipelineTriggerDeclaration) *types.PipelineDeclaration {
	return &types.PipelineDeclaration{
		Name: aws.String(name), RoleArn: aws.String("arn:aws:iam::000000000000:role/cp"),
		PipelineType: types.PipelineTypeV2, ExecutionMode: types.ExecutionModeQueued,
		ArtifactStore: &types.ArtifactStore{Type: types.ArtifactStoreTypeS3, Location: aws.String("artifacts")},
		Stages: []types.StageDeclaration{
			{Name: aws.String("Source"), Actions: []types.ActionDeclaration{{
				Name: aws.String("Source"),
				ActionTypeId: &types.ActionTypeId{Category: types.ActionCategorySource, Owner: types.ActionOwnerAws,
					Provider: aws.String("CodeStarSourceConnection"), Version: aws.String("1")},
				Configuration:   map[string]string{"ConnectionArn": triggersConnection, "FullRepositoryId": "acme/app", "BranchName": "main"},
				OutputArtifacts: []types.OutputArtifact{{Name: aws.String("Src")}},
			}}},
			{Name: aws.String("Check"), Actions: []types.ActionDeclaration{{
				Name: aws.String("Check"),
				ActionTypeId: &types.ActionTypeId{Category: types.ActionCategoryCompute, Owner: types.ActionOwnerAws,
					Provider: aws.String("Commands"), Version: aws.String("1")},
				InputArtifacts: []types.InputArtifact{{Name: aws.String("Src")}},
				Commands:       []string{"test -f name.txt"},
			}}},
		},
		Triggers: triggers,
	}
}

// pushTrigger is a trigger of the action "Source" with push filters.
func pushTrigger(filters ...types.GitPushFilter) types.PipelineTriggerDeclaration {
	return types.PipelineTriggerDeclaration{ProviderType: types.PipelineTriggerProviderTypeCodeStarSourceConnection,
		GitConfiguration: &types.GitConfiguration{SourceActionName: aws.String("Source"), Push: filters}}
}

func TestTriggers(t *testing.T) {
	bin := buildBinary(t)
	eachStoreArgs(t, func(t *testing.T, args ...string) {
		testTriggers(t, bin, args...)
	})
}

func testTriggers(t *testing.T, bin string, storeArgs ...string) {
	ctx := context.Background()
	srv := newTestServer(t, bin, append([]string{"--start-on-create=false", "--source-poll-interval", "0"}, storeArgs...)...)
	hosted := "http://" + srv.addr + "/v1/repos/acme/app"
	repo := newGitRepo(t)
	repo.commit("first", map[string]string{"name.txt": "app\n", "app/main.go": "package main\n", "README.md": "app\n"})
	repo.push(hosted, "main")

	create := func(decl *types.PipelineDeclaration) {
		t.Helper()
		if _, err := srv.client.CreatePipeline(ctx, &cp.CreatePipelineInput{Pipeline: decl}); err != nil {
			t.Fatalf("create %s: %v", aws.ToString(decl.Name), err)
		}
	}
	create(triggerPipeline("release-tags", pushTrigger(types.GitPushFilter{
		Tags: &types.GitTagFilterCriteria{Includes: []string{"v*"}, Excludes: []string{"v*-rc*"}}})))
	create(triggerPipeline("nightly-tags", pushTrigger(types.GitPushFilter{
		Tags: &types.GitTagFilterCriteria{Includes: []string{"nightly-*"}}})))
	appPaths := types.GitPushFilter{Branches: &types.GitBranchFilterCriteria{Includes: []string{"main"}},
		FilePaths: &types.GitFilePathFilterCriteria{Includes: []string{"app/**"}, Excludes: []string{"app/docs/**"}}}
	create(triggerPipeline("app-paths", pushTrigger(appPaths)))
	create(triggerPipeline("release-branches", pushTrigger(types.GitPushFilter{
		Branches: &types.GitBranchFilterCriteria{Includes: []string{"release/**"}, Excludes: []string{"release/skip-*"}}})))
	create(triggerPipeline("default"))

	// The pipeline that declares no trigger has AWS's default one: a push to its BranchName.
	got, err := srv.client.GetPipeline(ctx, &cp.GetPipelineInput{Name: aws.String("default")})
	if err != nil {
		t.Fatal(err)
	}
	if tr := got.Pipeline.Triggers; len(tr) != 1 || tr[0].ProviderType != types.PipelineTriggerProviderTypeCodeStarSourceConnection ||
		aws.ToString(tr[0].GitConfiguration.SourceActionName) != "Source" || len(tr[0].GitConfiguration.Push) != 1 ||
		tr[0].GitConfiguration.Push[0].Branches == nil || !slices.Equal(tr[0].GitConfiguration.Push[0].Branches.Includes, []string{"main"}) ||
		tr[0].GitConfiguration.Push[0].Tags != nil || tr[0].GitConfiguration.Push[0].FilePaths != nil || tr[0].GitConfiguration.PullRequest != nil {
		t.Fatalf("default pipeline's triggers: %s", describeTriggers(tr))
	}
	// Declared triggers come back as declared.
	got, err = srv.client.GetPipeline(ctx, &cp.GetPipelineInput{Name: aws.String("app-paths")})
	if err != nil {
		t.Fatal(err)
	}
	if tr := got.Pipeline.Triggers; len(tr) != 1 || describeTriggers(tr) != describeTriggers([]types.PipelineTriggerDeclaration{pushTrigger(appPaths)}) {
		t.Fatalf("app-paths' triggers: %s", describeTriggers(tr))
	}

	// Tags, on commits of no branch the server has: the pipelines whose tag filters match start
	// at the tagged commit, and no other; the rc tag is excluded. Recorded pushes are handled in
	// order, so once the nightly tag's run is there, the rc tag was handled too.
	repo.git("checkout", "-q", "-b", "tagging")
	v10 := repo.commit("one", map[string]string{"name.txt": "v1.0\n"})
	repo.git("tag", "v1.0")
	repo.git("push", "-q", hosted, "refs/tags/v1.0")
	repo.commit("rc", map[string]string{"name.txt": "v1.1-rc1\n"})
	repo.git("tag", "v1.1-rc1")
	repo.git("push", "-q", hosted, "refs/tags/v1.1-rc1")
	nightly := repo.commit("nightly", map[string]string{"name.txt": "nightly\n"})
	repo.git("tag", "-a", "nightly-1", "-m", "an annotated tag")
	repo.git("push", "-q", hosted, "refs/tags/nightly-1")
	wantRun(t, srv.client, "release-tags", v10)
	wantRun(t, srv.client, "nightly-tags", nightly)
	wantRuns(t, srv.client, "release-tags", v10)
	wantRuns(t, srv.client, "nightly-tags", nightly)
	for _, p := range []string{"app-paths", "release-branches", "default"} {
		wantRuns(t, srv.client, p)
	}

	// File paths: a push to main touching excluded paths only starts the pipeline filtered on
	// app/** nothing; one touching an included path starts it. The default trigger takes both.
	repo.git("checkout", "-q", "main")
	docs := repo.commit("docs only", map[string]string{"app/docs/guide.md": "guide\n", "README.md": "app, documented\n"})
	repo.push(hosted, "main")
	code := repo.commit("code", map[string]string{"app/main.go": "package main // two\n"})
	repo.push(hosted, "main")
	wantRun(t, srv.client, "app-paths", code)
	wantRun(t, srv.client, "default", code)
	wantRuns(t, srv.client, "app-paths", code)
	wantRuns(t, srv.client, "default", docs, code)

	// Branches: release/** starts the release pipeline, but for the excluded release/skip-*;
	// other branches start nothing, main's pipelines included.
	repo.git("checkout", "-q", "-b", "topic")
	repo.commit("skipped", map[string]string{"app/skip.go": "package main\n"})
	repo.push(hosted, "release/skip-this")
	repo.push(hosted, "feature/x")
	release := repo.commit("release", map[string]string{"app/release.go": "package main\n"})
	repo.push(hosted, "release/1.0")
	wantRun(t, srv.client, "release-branches", release)
	wantRuns(t, srv.client, "release-branches", release)
	wantRuns(t, srv.client, "app-paths", code)
	wantRuns(t, srv.client, "default", docs, code)
	wantRuns(t, srv.client, "release-tags", v10)

	// CreatePipeline refuses triggers AWS refuses, in AWS's words.
	const (
		sourceMsg  = "Triggers for connection must reference a CodeStarSourceConnection action. Note that when you specify a trigger, you cant specify more than one trigger per source action."
		filtersMsg = "The trigger configuration for the source action is not valid. Make sure to choose valid filter combinations."
	)
	main := &types.GitBranchFilterCriteria{Includes: []string{"main"}}
	v := &types.GitTagFilterCriteria{Includes: []string{"v*"}}
	other := pushTrigger(types.GitPushFilter{Branches: main})
	other.GitConfiguration.SourceActionName = aws.String("Check")
	codeCommit := triggerPipeline("codecommit", pushTrigger(types.GitPushFilter{Branches: main}))
	codeCommit.Stages[0].Actions[0].ActionTypeId.Provider = aws.String("CodeCommit")
	codeCommit.Stages[0].Actions[0].Configuration = map[string]string{"RepositoryName": "app", "BranchName": "main"}
	for _, tc := range []struct {
		name      string
		decl      *types.PipelineDeclaration
		code, msg string
	}{
		{"branches and tags in one push filter", triggerPipeline("bad", pushTrigger(types.GitPushFilter{Branches: main, Tags: v})), "InvalidStructureException", filtersMsg},
		{"file paths without branches", triggerPipeline("bad", pushTrigger(types.GitPushFilter{FilePaths: &types.GitFilePathFilterCriteria{Includes: []string{"app/**"}}})), "InvalidStructureException", filtersMsg},
		{"a pull request filter without branches", triggerPipeline("bad", types.PipelineTriggerDeclaration{ProviderType: types.PipelineTriggerProviderTypeCodeStarSourceConnection,
			GitConfiguration: &types.GitConfiguration{SourceActionName: aws.String("Source"), PullRequest: []types.GitPullRequestFilter{{Events: []types.GitPullRequestEventType{types.GitPullRequestEventTypeOpen}}}}}),
			"InvalidStructureException", filtersMsg},
		{"a trigger of a non-source action", triggerPipeline("bad", other), "InvalidStructureException", sourceMsg},
		{"a trigger of a CodeCommit source", codeCommit, "InvalidStructureException", sourceMsg},
		{"two triggers of one source action", triggerPipeline("bad", pushTrigger(types.GitPushFilter{Branches: main}), pushTrigger(types.GitPushFilter{Tags: v})), "InvalidStructureException", sourceMsg},
		{"four push filters", triggerPipeline("bad", pushTrigger(types.GitPushFilter{Branches: main}, types.GitPushFilter{Branches: main}, types.GitPushFilter{Branches: main}, types.GitPushFilter{Branches: main})),
			"ValidationException", "Value at 'pipeline.triggers.1.member.gitConfiguration.push' failed to satisfy constraint: Member must have length less than or equal to 3"},
	} {
		_, err := srv.client.CreatePipeline(ctx, &cp.CreatePipelineInput{Pipeline: tc.decl})
		var apiErr smithy.APIError
		if !errors.As(err, &apiErr) || apiErr.ErrorCode() != tc.code || (tc.code == "InvalidStructureException" && apiErr.ErrorMessage() != tc.msg) ||
			(tc.code == "ValidationException" && !strings.Contains(apiErr.ErrorMessage(), tc.msg)) {
			t.Errorf("%s: got %v, want %s %q", tc.name, err, tc.code, tc.msg)
		}
	}
}

// wantRun waits for the run of pipeline at commit to end, and checks that it succeeded, started
// by the connection's webhook as a V2 pipeline's push does.
func wantRun(t *testing.T, client *cp.Client, pipeline, commit string) {
	t.Helper()
	e := executionAt(t, client, pipeline, commit)
	if e.Status != types.PipelineExecutionStatusSucceeded || e.Trigger == nil || e.Trigger.TriggerType != types.TriggerTypeWebhookV2 ||
		aws.ToString(e.Trigger.TriggerDetail) != triggersConnection {
		t.Fatalf("%s's run at %s: %s, trigger %+v\n%s", pipeline, commit, e.Status, e.Trigger, describeActions(t, client, pipeline))
	}
}

// wantRuns checks that pipeline ran at exactly the commits given, in any order.
func wantRuns(t *testing.T, client *cp.Client, pipeline string, commits ...string) {
	t.Helper()
	var got []string
	for _, e := range executions(t, client, pipeline) {
		for _, r := range e.SourceRevisions {
			got = append(got, aws.ToString(r.RevisionId))
		}
		if len(e.SourceRevisions) == 0 {
			got = append(got, "(execution "+aws.ToString(e.PipelineExecutionId)+" without a source revision yet)")
		}
	}
	slices.Sort(got)
	want := slices.Sorted(slices.Values(commits))
	if !slices.Equal(got, want) {
		t.Fatalf("%s ran at %q, want %q", pipeline, got, want)
	}
}

// describeTriggers writes triggers for a failure message and for comparisons.
func describeTriggers(triggers []types.PipelineTriggerDeclaration) string {
	list := func(in, ex []string) string { return fmt.Sprintf("+%q-%q", in, ex) }
	out := ""
	for _, tr := range triggers {
		out += fmt.Sprintf("[%s %s", tr.ProviderType, aws.ToString(tr.GitConfiguration.SourceActionName))
		for _, f := range tr.GitConfiguration.Push {
			out += " push{"
			if f.Branches != nil {
				out += " branches" + list(f.Branches.Includes, f.Branches.Excludes)
			}
			if f.Tags != nil {
				out += " tags" + list(f.Tags.Includes, f.Tags.Excludes)
			}
			if f.FilePaths != nil {
				out += " filePaths" + list(f.FilePaths.Includes, f.FilePaths.Excludes)
			}
			out += " }"
		}
		out += fmt.Sprintf(" pullRequest%d]", len(tr.GitConfiguration.PullRequest))
	}
	return out
}
