package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	cp "github.com/aws/aws-sdk-go-v2/service/codepipeline"
	"github.com/aws/aws-sdk-go-v2/service/codepipeline/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/sluicehq/sluice/internal/sdktest"
	"github.com/sluicehq/sluice/internal/store/storetest"
)

// This file drives stage conditions, stage retries and rollbacks end to end through a real
// `sluice serve`: rules run as jobs of the server's own runners, custom actions are worked by the
// test itself (so that it decides when an action fails), and the S3 source and S3 deploy move
// real bytes through the server's built-in S3 endpoint.

// eachStoreArgs runs f on the embedded SQLite store and on PostgreSQL, giving it the server
// arguments that select the store; the two run in parallel, each with a server of its own.
func eachStoreArgs(t *testing.T, f func(t *testing.T, args ...string)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		f(t, "--data", t.TempDir())
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		f(t, "--data", t.TempDir(), "--data-shared", "--database", storetest.PostgresURL(t))
	})
}

// workedProvider is the custom Deploy action type whose jobs the test works itself.
const workedProvider = "Worked"

// condEnv is a server for condition tests, with a versioned source bucket holding app.zip, an
// empty site bucket, and the custom action type workedProvider.
type condEnv struct {
	t   *testing.T
	ctx context.Context
	srv *testServer
	cp  *cp.Client
	s3  *s3.Client
	// release is the key of the latest source putSource wrote; executions start on it.
	release  string
	releases int
}

func newCondEnv(t *testing.T, bin string, args ...string) *condEnv {
	t.Helper()
	srv := newTestServer(t, bin, append([]string{"--start-on-create=false", "--source-poll-interval", "0", "--sweep-interval", "200ms"}, args...)...)
	e := &condEnv{t: t, ctx: context.Background(), srv: srv, cp: srv.client,
		s3: s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String("http://" + srv.addr), UsePathStyle: true, Retryer: sdktest.ConnectionRetries(),
			Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""), DisableLogOutputChecksumValidationSkipped: true})}
	for _, bucket := range []string{"sources", "site"} {
		if _, err := e.s3.CreateBucket(e.ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
			t.Fatalf("create bucket %s: %v", bucket, err)
		}
	}
	if _, err := e.s3.PutBucketVersioning(e.ctx, &s3.PutBucketVersioningInput{Bucket: aws.String("sources"),
		VersioningConfiguration: &s3types.VersioningConfiguration{Status: s3types.BucketVersioningStatusEnabled}}); err != nil {
		t.Fatal(err)
	}
	e.putSource("v1\n")
	if _, err := e.cp.CreateCustomActionType(e.ctx, &cp.CreateCustomActionTypeInput{Category: types.ActionCategoryDeploy, Provider: aws.String(workedProvider),
		Version: aws.String("1"), InputArtifactDetails: &types.ArtifactDetails{MinimumCount: 0, MaximumCount: 1},
		OutputArtifactDetails: &types.ArtifactDetails{MinimumCount: 0, MaximumCount: 0}}); err != nil {
		t.Fatal(err)
	}
	return e
}

// putSource writes a new source zip holding page.txt and returns its version id.
// The source is written under a key of its own, which no pipeline watches (a write to app.zip,
// the key the S3 source watches, would start executions by itself); executions start on it with
// an S3_OBJECT_KEY source revision.
func (e *condEnv) putSource(page string) string {
	e.t.Helper()
	e.releases++
	e.release = fmt.Sprintf("releases/%d.zip", e.releases)
	out, err := e.s3.PutObject(e.ctx, &s3.PutObjectInput{Bucket: aws.String("sources"), Key: aws.String(e.release),
		Body: bytes.NewReader(zipOf(e.t, map[string]string{"page.txt": page}))})
	if err != nil {
		e.t.Fatal(err)
	}
	return aws.ToString(out.VersionId)
}

// sitePage reads page.txt as the S3 deploy wrote it under prefix in the site bucket.
func (e *condEnv) sitePage(prefix string) string {
	e.t.Helper()
	page, _ := e.siteObject(prefix)
	return page
}

// siteObject reads page.txt under prefix in the site bucket, with its Cache-Control.
func (e *condEnv) siteObject(prefix string) (page, cacheControl string) {
	e.t.Helper()
	out, err := e.s3.GetObject(e.ctx, &s3.GetObjectInput{Bucket: aws.String("site"), Key: aws.String(prefix + "/page.txt")})
	if err != nil {
		e.t.Fatalf("read the deployed page: %v", err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return string(b), aws.ToString(out.CacheControl)
}

// Declarations.

func condPipeline(name string, mode types.ExecutionMode, stages ...types.StageDeclaration) *types.PipelineDeclaration {
	return &types.PipelineDeclaration{
		Name: aws.String(name), RoleArn: aws.String("arn:aws:iam::000000000000:role/cp"), PipelineType: types.PipelineTypeV2, ExecutionMode: mode,
		ArtifactStore: &types.ArtifactStore{Type: types.ArtifactStoreTypeS3, Location: aws.String("artifacts")},
		Variables:     []types.PipelineVariableDeclaration{{Name: aws.String("GATE"), DefaultValue: aws.String("open")}},
		Stages:        append([]types.StageDeclaration{sourceStage()}, stages...),
	}
}

// sourceStage is the S3 source of sources/app.zip, whose output artifact is Src.
func sourceStage() types.StageDeclaration {
	return types.StageDeclaration{Name: aws.String("Source"), Actions: []types.ActionDeclaration{{
		Name:            aws.String("Source"),
		ActionTypeId:    &types.ActionTypeId{Category: types.ActionCategorySource, Owner: types.ActionOwnerAws, Provider: aws.String("S3"), Version: aws.String("1")},
		Configuration:   map[string]string{"S3Bucket": "sources", "S3ObjectKey": "app.zip", "PollForSourceChanges": "false", "AllowOverrideForS3ObjectKey": "true"},
		OutputArtifacts: []types.OutputArtifact{{Name: aws.String("Src")}},
	}}}
}

func stageOf(name string, actions ...types.ActionDeclaration) types.StageDeclaration {
	return types.StageDeclaration{Name: aws.String(name), Actions: actions}
}

// commandsAction runs commands on the source artifact.
func commandsAction(name string, runOrder int32, commands ...string) types.ActionDeclaration {
	return types.ActionDeclaration{Name: aws.String(name), RunOrder: aws.Int32(runOrder), Commands: commands,
		ActionTypeId:   &types.ActionTypeId{Category: types.ActionCategoryCompute, Owner: types.ActionOwnerAws, Provider: aws.String("Commands"), Version: aws.String("1")},
		InputArtifacts: []types.InputArtifact{{Name: aws.String("Src")}}}
}

// workedAction is an action of the custom type the test works.
func workedAction(name string, runOrder int32) types.ActionDeclaration {
	return types.ActionDeclaration{Name: aws.String(name), RunOrder: aws.Int32(runOrder),
		ActionTypeId: &types.ActionTypeId{Category: types.ActionCategoryDeploy, Owner: types.ActionOwnerCustom, Provider: aws.String(workedProvider), Version: aws.String("1")}}
}

// s3DeployAction extracts the source artifact under prefix in bucket.
func s3DeployAction(name string, runOrder int32, bucket, prefix string) types.ActionDeclaration {
	return types.ActionDeclaration{Name: aws.String(name), RunOrder: aws.Int32(runOrder),
		ActionTypeId:   &types.ActionTypeId{Category: types.ActionCategoryDeploy, Owner: types.ActionOwnerAws, Provider: aws.String("S3"), Version: aws.String("1")},
		Configuration:  map[string]string{"BucketName": bucket, "Extract": "true", "ObjectKey": prefix},
		InputArtifacts: []types.InputArtifact{{Name: aws.String("Src")}}}
}

func variableCheckRule(name, variable, operator, value string) types.RuleDeclaration {
	return types.RuleDeclaration{Name: aws.String(name),
		RuleTypeId:    &types.RuleTypeId{Category: types.RuleCategoryRule, Owner: types.RuleOwnerAws, Provider: aws.String("VariableCheck"), Version: aws.String("1")},
		Configuration: map[string]string{"Variable": variable, "Operator": operator, "Value": value}}
}

func commandsRule(name string, commands ...string) types.RuleDeclaration {
	return types.RuleDeclaration{Name: aws.String(name), Commands: commands,
		RuleTypeId: &types.RuleTypeId{Category: types.RuleCategoryRule, Owner: types.RuleOwnerAws, Provider: aws.String("Commands"), Version: aws.String("1")}}
}

func beforeEntry(result types.Result, rules ...types.RuleDeclaration) *types.BeforeEntryConditions {
	return &types.BeforeEntryConditions{Conditions: []types.Condition{{Result: result, Rules: rules}}}
}

func onSuccess(result types.Result, rules ...types.RuleDeclaration) *types.SuccessConditions {
	return &types.SuccessConditions{Conditions: []types.Condition{{Result: result, Rules: rules}}}
}

// onFailure engages result when the stage fails: at once without rules, else when they all succeed.
func onFailure(result types.Result, retry types.StageRetryMode, rules ...types.RuleDeclaration) *types.FailureConditions {
	f := &types.FailureConditions{Result: result}
	if retry != "" {
		f.RetryConfiguration = &types.RetryConfiguration{RetryMode: retry}
	}
	if len(rules) > 0 {
		f.Conditions = []types.Condition{{Result: result, Rules: rules}}
	}
	return f
}

// Operations.

func (e *condEnv) create(decl *types.PipelineDeclaration) {
	e.t.Helper()
	if _, err := e.cp.CreatePipeline(e.ctx, &cp.CreatePipelineInput{Pipeline: decl}); err != nil {
		e.t.Fatalf("create pipeline %s: %v", aws.ToString(decl.Name), err)
	}
}

// start starts an execution with the given pipeline variables and returns its id.
func (e *condEnv) start(pipeline string, variables map[string]string) string {
	e.t.Helper()
	in := &cp.StartPipelineExecutionInput{Name: aws.String(pipeline)}
	if e.release != "" {
		in.SourceRevisions = []types.SourceRevisionOverride{{ActionName: aws.String("Source"), RevisionType: types.SourceRevisionTypeS3ObjectKey, RevisionValue: aws.String(e.release)}}
	}
	for _, k := range slices.Sorted(maps.Keys(variables)) {
		in.Variables = append(in.Variables, types.PipelineVariable{Name: aws.String(k), Value: aws.String(variables[k])})
	}
	out, err := e.cp.StartPipelineExecution(e.ctx, in)
	if err != nil {
		e.t.Fatalf("start %s: %v", pipeline, err)
	}
	return aws.ToString(out.PipelineExecutionId)
}

func (e *condEnv) execution(pipeline, id string) *types.PipelineExecution {
	e.t.Helper()
	out, err := e.cp.GetPipelineExecution(e.ctx, &cp.GetPipelineExecutionInput{PipelineName: aws.String(pipeline), PipelineExecutionId: aws.String(id)})
	if err != nil {
		e.t.Fatalf("get execution %s: %v", id, err)
	}
	return out.PipelineExecution
}

// waitEnd waits for an execution to end and checks that it ended with want.
func (e *condEnv) waitEnd(pipeline, id string, want types.PipelineExecutionStatus) *types.PipelineExecution {
	e.t.Helper()
	var ex *types.PipelineExecution
	waitFor(e.t, "the end of execution "+id, func() bool {
		ex = e.execution(pipeline, id)
		return ex.Status != types.PipelineExecutionStatusInProgress && ex.Status != types.PipelineExecutionStatusStopping
	}, func() string { return e.describe(pipeline) })
	if ex.Status != want {
		e.t.Fatalf("execution %s of %s ended %s (%s), want %s: %s", id, pipeline, ex.Status, aws.ToString(ex.StatusSummary), want, e.describe(pipeline))
	}
	return ex
}

// stages returns GetPipelineState's stage states by name.
func (e *condEnv) stages(pipeline string) map[string]types.StageState {
	e.t.Helper()
	out, err := e.cp.GetPipelineState(e.ctx, &cp.GetPipelineStateInput{Name: aws.String(pipeline)})
	if err != nil {
		e.t.Fatal(err)
	}
	m := map[string]types.StageState{}
	for _, s := range out.StageStates {
		m[aws.ToString(s.StageName)] = s
	}
	return m
}

// actionRuns returns the action runs of an execution by action name, oldest first.
func (e *condEnv) actionRuns(pipeline, id string) map[string][]types.ActionExecutionDetail {
	e.t.Helper()
	m := map[string][]types.ActionExecutionDetail{}
	p := cp.NewListActionExecutionsPaginator(e.cp, &cp.ListActionExecutionsInput{PipelineName: aws.String(pipeline),
		Filter: &types.ActionExecutionFilter{PipelineExecutionId: aws.String(id)}})
	for p.HasMorePages() {
		out, err := p.NextPage(e.ctx)
		if err != nil {
			e.t.Fatal(err)
		}
		for _, d := range out.ActionExecutionDetails {
			m[aws.ToString(d.ActionName)] = append(m[aws.ToString(d.ActionName)], d)
		}
	}
	for _, runs := range m {
		slices.SortFunc(runs, func(a, b types.ActionExecutionDetail) int {
			return aws.ToTime(a.StartTime).Compare(aws.ToTime(b.StartTime))
		})
	}
	return m
}

// ruleRuns lists rule executions: of one execution unless id is empty, one page of max unless
// max is 0.
func (e *condEnv) ruleRuns(pipeline, id string, max int32, token *string) *cp.ListRuleExecutionsOutput {
	e.t.Helper()
	in := &cp.ListRuleExecutionsInput{PipelineName: aws.String(pipeline), NextToken: token}
	if id != "" {
		in.Filter = &types.RuleExecutionFilter{PipelineExecutionId: aws.String(id)}
	}
	if max > 0 {
		in.MaxResults = aws.Int32(max)
	}
	out, err := e.cp.ListRuleExecutions(e.ctx, in)
	if err != nil {
		e.t.Fatalf("list rule executions: %v", err)
	}
	return out
}

// describe says where a pipeline's executions, stages, actions and rules are, for failures.
func (e *condEnv) describe(pipeline string) string {
	var b strings.Builder
	if out, err := e.cp.ListPipelineExecutions(e.ctx, &cp.ListPipelineExecutionsInput{PipelineName: aws.String(pipeline)}); err == nil {
		for _, x := range out.PipelineExecutionSummaries {
			fmt.Fprintf(&b, "\n  execution %s %s %s %s", aws.ToString(x.PipelineExecutionId), x.ExecutionType, x.Status, aws.ToString(x.StatusSummary))
		}
	}
	if out, err := e.cp.GetPipelineState(e.ctx, &cp.GetPipelineStateInput{Name: aws.String(pipeline)}); err == nil {
		for _, s := range out.StageStates {
			fmt.Fprintf(&b, "\n  stage %s", aws.ToString(s.StageName))
			if l := s.LatestExecution; l != nil {
				fmt.Fprintf(&b, " latest %s %s %s", aws.ToString(l.PipelineExecutionId), l.Status, l.Type)
			}
			for kind, c := range map[string]*types.StageConditionState{"beforeEntry": s.BeforeEntryConditionState, "onSuccess": s.OnSuccessConditionState, "onFailure": s.OnFailureConditionState} {
				if c != nil && c.LatestExecution != nil {
					fmt.Fprintf(&b, "; %s %s %s", kind, c.LatestExecution.Status, aws.ToString(c.LatestExecution.Summary))
				}
			}
		}
	}
	b.WriteString(describeActions(e.t, e.cp, pipeline))
	if out, err := e.cp.ListRuleExecutions(e.ctx, &cp.ListRuleExecutionsInput{PipelineName: aws.String(pipeline)}); err == nil {
		for _, r := range out.RuleExecutionDetails {
			fmt.Fprintf(&b, "\n  rule %s/%s %s", aws.ToString(r.StageName), aws.ToString(r.RuleName), r.Status)
			if r.Output != nil && r.Output.ExecutionResult != nil {
				fmt.Fprintf(&b, ": %s", aws.ToString(r.Output.ExecutionResult.ExternalExecutionSummary))
			}
		}
	}
	return b.String()
}

// describeAll describes every pipeline.
func (e *condEnv) describeAll() string {
	out, err := e.cp.ListPipelines(e.ctx, &cp.ListPipelinesInput{})
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, p := range out.Pipelines {
		fmt.Fprintf(&b, "\npipeline %s:%s", aws.ToString(p.Name), e.describe(aws.ToString(p.Name)))
	}
	return b.String()
}

// work serves n jobs of the custom action type, in the order they come: each is acknowledged,
// then succeeds or fails as ok says for its action; it returns the actions served, in order.
func (e *condEnv) work(n int, ok func(action string) bool) []string {
	e.t.Helper()
	id := &types.ActionTypeId{Category: types.ActionCategoryDeploy, Owner: types.ActionOwnerCustom, Provider: aws.String(workedProvider), Version: aws.String("1")}
	var served []string
	for deadline := time.Now().Add(60 * time.Second); len(served) < n; {
		out, err := e.cp.PollForJobs(e.ctx, &cp.PollForJobsInput{ActionTypeId: id, MaxBatchSize: aws.Int32(1)})
		if err != nil {
			e.t.Fatalf("poll for jobs: %v", err)
		}
		if len(out.Jobs) == 0 {
			if time.Now().After(deadline) {
				e.t.Fatalf("served %v, but no job %d came: %s", served, len(served)+1, e.describeAll())
			}
			time.Sleep(50 * time.Millisecond)
			continue
		}
		job := out.Jobs[0]
		if _, err := e.cp.AcknowledgeJob(e.ctx, &cp.AcknowledgeJobInput{JobId: job.Id, Nonce: job.Nonce}); err != nil {
			e.t.Fatalf("acknowledge job: %v", err)
		}
		action := aws.ToString(job.Data.PipelineContext.Action.Name)
		if ok(action) {
			_, err = e.cp.PutJobSuccessResult(e.ctx, &cp.PutJobSuccessResultInput{JobId: job.Id})
		} else {
			_, err = e.cp.PutJobFailureResult(e.ctx, &cp.PutJobFailureResultInput{JobId: job.Id,
				FailureDetails: &types.FailureDetails{Type: types.FailureTypeJobFailed, Message: aws.String("the test failed " + action)}})
		}
		if err != nil {
			e.t.Fatalf("report job of %s: %v", action, err)
		}
		served = append(served, action)
	}
	return served
}

// noJobs checks that no job of the custom action type is waiting, for a few polls.
func (e *condEnv) noJobs(why string) {
	e.t.Helper()
	id := &types.ActionTypeId{Category: types.ActionCategoryDeploy, Owner: types.ActionOwnerCustom, Provider: aws.String(workedProvider), Version: aws.String("1")}
	for range 4 {
		out, err := e.cp.PollForJobs(e.ctx, &cp.PollForJobsInput{ActionTypeId: id, MaxBatchSize: aws.Int32(5)})
		if err != nil {
			e.t.Fatal(err)
		}
		if len(out.Jobs) > 0 {
			e.t.Fatalf("%s, but a job of %s is waiting", why, aws.ToString(out.Jobs[0].Data.PipelineContext.Action.Name))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// attempts returns an outcome for work that fails each action's first n runs, then succeeds;
// actions not named always succeed.
func attempts(failFirst map[string]int) func(string) bool {
	seen := map[string]int{}
	return func(action string) bool {
		seen[action]++
		return seen[action] > failFirst[action]
	}
}

// wantAPIError checks that err is the AWS error code.
func wantAPIError(t *testing.T, err error, code string) {
	t.Helper()
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != code {
		t.Fatalf("got error %v, want %s", err, code)
	}
}

// executionsOfType returns a pipeline's executions of the given type, newest first.
func (e *condEnv) executionsOfType(pipeline string, typ types.ExecutionType) []types.PipelineExecutionSummary {
	var out []types.PipelineExecutionSummary
	for _, x := range executions(e.t, e.cp, pipeline) {
		if x.ExecutionType == typ {
			out = append(out, x)
		}
	}
	return out
}

// conditionRule returns the one rule state of a stage condition state, checking its shape.
func conditionRule(t *testing.T, what string, c *types.StageConditionState) types.RuleState {
	t.Helper()
	if c == nil || c.LatestExecution == nil || len(c.ConditionStates) != 1 || len(c.ConditionStates[0].RuleStates) != 1 {
		t.Fatalf("%s condition state %+v, want a latest execution and one condition of one rule", what, c)
	}
	r := c.ConditionStates[0].RuleStates[0]
	if r.LatestExecution == nil || aws.ToString(r.LatestExecution.RuleExecutionId) == "" {
		t.Fatalf("%s rule state %+v has no latest execution with an id", what, r)
	}
	return r
}

// TestConditionsEntryVariableCheck gates a stage on a pipeline variable: met, its actions run;
// unmet with FAIL, the stage and the execution fail before any action of it runs; unmet with
// SKIP, the stage is skipped and the next one runs. Rule runs are listed newest first, by
// execution and in pages, with their resolved configuration.
func TestConditionsEntryVariableCheck(t *testing.T) {
	bin := buildBinary(t)
	eachStoreArgs(t, func(t *testing.T, args ...string) {
		e := newCondEnv(t, bin, args...)
		gate := func(result types.Result) types.StageDeclaration {
			s := stageOf("Gate", commandsAction("Run", 1, "echo gated"))
			s.BeforeEntry = beforeEntry(result, variableCheckRule("IsOpen", "#{variables.GATE}", "EQ", "open"))
			return s
		}
		e.create(condPipeline("entry", types.ExecutionModeQueued, gate(types.ResultFail), stageOf("Last", commandsAction("After", 1, "echo after"))))

		// Met: the stage's action and the next stage run.
		open := e.start("entry", map[string]string{"GATE": "open"})
		e.waitEnd("entry", open, types.PipelineExecutionStatusSucceeded)
		runs := e.actionRuns("entry", open)
		if len(runs["Run"]) != 1 || runs["Run"][0].Status != types.ActionExecutionStatusSucceeded || len(runs["After"]) != 1 {
			t.Fatalf("with the condition met, the actions ran %v", runs)
		}
		gs := e.stages("entry")["Gate"]
		if gs.BeforeEntryConditionState == nil || gs.BeforeEntryConditionState.LatestExecution == nil ||
			gs.BeforeEntryConditionState.LatestExecution.Status != types.ConditionExecutionStatusSucceeded {
			t.Fatalf("beforeEntry condition state after it was met: %+v", gs.BeforeEntryConditionState)
		}
		rs := conditionRule(t, "met beforeEntry", gs.BeforeEntryConditionState)
		if aws.ToString(rs.RuleName) != "IsOpen" || rs.LatestExecution.Status != types.RuleExecutionStatusSucceeded {
			t.Fatalf("met rule state %s %s", aws.ToString(rs.RuleName), rs.LatestExecution.Status)
		}
		openRule := aws.ToString(rs.LatestExecution.RuleExecutionId)

		// Unmet with FAIL: nothing of the stage runs, the execution fails.
		closed := e.start("entry", map[string]string{"GATE": "closed"})
		e.waitEnd("entry", closed, types.PipelineExecutionStatusFailed)
		runs = e.actionRuns("entry", closed)
		if len(runs["Run"]) != 0 || len(runs["After"]) != 0 || len(runs["Source"]) != 1 {
			t.Fatalf("with the condition unmet, the actions ran %v; want only the source", runs)
		}
		gs = e.stages("entry")["Gate"]
		if l := gs.LatestExecution; l == nil || aws.ToString(l.PipelineExecutionId) != closed || l.Status != types.StageExecutionStatusFailed {
			t.Fatalf("Gate's latest execution %+v, want %s Failed", gs.LatestExecution, closed)
		}
		if c := gs.BeforeEntryConditionState; c == nil || c.LatestExecution == nil || c.LatestExecution.Status != types.ConditionExecutionStatusFailed {
			t.Fatalf("beforeEntry condition state after it failed: %+v", c)
		}
		rs = conditionRule(t, "unmet beforeEntry", gs.BeforeEntryConditionState)
		closedRule := aws.ToString(rs.LatestExecution.RuleExecutionId)
		if rs.LatestExecution.Status != types.RuleExecutionStatusFailed || closedRule == openRule {
			t.Fatalf("unmet rule state %s id %s (the met run's %s)", rs.LatestExecution.Status, closedRule, openRule)
		}
		if !strings.Contains(aws.ToString(rs.LatestExecution.Summary), `"closed"`) {
			t.Fatalf("unmet rule summary %q does not give the variable's value", aws.ToString(rs.LatestExecution.Summary))
		}

		// Rule runs: newest first, with the resolved value; by execution; in pages.
		all := e.ruleRuns("entry", "", 0, nil).RuleExecutionDetails
		if len(all) != 2 {
			t.Fatalf("%d rule executions, want 2", len(all))
		}
		for i, want := range []struct{ id, exec, value string }{{closedRule, closed, "closed"}, {openRule, open, "open"}} {
			r := all[i]
			status := types.RuleExecutionStatusFailed
			if want.value == "open" {
				status = types.RuleExecutionStatusSucceeded
			}
			if aws.ToString(r.RuleExecutionId) != want.id || aws.ToString(r.PipelineExecutionId) != want.exec || r.Status != status ||
				aws.ToString(r.StageName) != "Gate" || aws.ToString(r.RuleName) != "IsOpen" {
				t.Fatalf("rule execution %d: %s of %s, %s/%s %s; want %s of %s, Gate/IsOpen %s", i, aws.ToString(r.RuleExecutionId), aws.ToString(r.PipelineExecutionId),
					aws.ToString(r.StageName), aws.ToString(r.RuleName), r.Status, want.id, want.exec, status)
			}
			if r.Input == nil || r.Input.Configuration["Variable"] != "#{variables.GATE}" || r.Input.ResolvedConfiguration["Variable"] != want.value ||
				r.Input.ResolvedConfiguration["Value"] != "open" || r.Input.ResolvedConfiguration["Operator"] != "EQ" {
				t.Fatalf("rule execution %d input %+v, want the configuration with #{variables.GATE} resolved to %q", i, r.Input, want.value)
			}
			if r.StartTime == nil || r.LastUpdateTime == nil || aws.ToInt32(r.PipelineVersion) != 1 {
				t.Fatalf("rule execution %d has start %v, update %v, version %d", i, r.StartTime, r.LastUpdateTime, aws.ToInt32(r.PipelineVersion))
			}
		}
		if all[0].Output == nil || all[0].Output.ExecutionResult == nil || all[0].Output.ExecutionResult.ErrorDetails == nil {
			t.Fatalf("the failed rule execution has no error details: %+v", all[0].Output)
		}
		_, err := e.cp.ListRuleExecutions(e.ctx, &cp.ListRuleExecutionsInput{PipelineName: aws.String("entry"),
			Filter: &types.RuleExecutionFilter{PipelineExecutionId: aws.String("00000000-0000-0000-0000-000000000000")}})
		wantAPIError(t, err, "PipelineExecutionNotFoundException")
		if byExec := e.ruleRuns("entry", open, 0, nil).RuleExecutionDetails; len(byExec) != 1 || aws.ToString(byExec[0].RuleExecutionId) != openRule {
			t.Fatalf("rule executions of %s: %d, want only %s", open, len(byExec), openRule)
		}
		first := e.ruleRuns("entry", "", 1, nil)
		if len(first.RuleExecutionDetails) != 1 || aws.ToString(first.RuleExecutionDetails[0].RuleExecutionId) != closedRule || aws.ToString(first.NextToken) == "" {
			t.Fatalf("first page of one: %d rule executions, next token %q; want %s and a token", len(first.RuleExecutionDetails), aws.ToString(first.NextToken), closedRule)
		}
		second := e.ruleRuns("entry", "", 1, first.NextToken)
		if len(second.RuleExecutionDetails) != 1 || aws.ToString(second.RuleExecutionDetails[0].RuleExecutionId) != openRule {
			t.Fatalf("second page of one: %d rule executions; want %s", len(second.RuleExecutionDetails), openRule)
		}
		if second.NextToken != nil {
			if third := e.ruleRuns("entry", "", 1, second.NextToken); len(third.RuleExecutionDetails) != 0 || third.NextToken != nil {
				t.Fatalf("a third page of one holds %d rule executions", len(third.RuleExecutionDetails))
			}
		}

		// Unmet with SKIP: the stage is skipped, the next one runs, the execution succeeds.
		e.create(condPipeline("entry-skip", types.ExecutionModeQueued, gate(types.ResultSkip), stageOf("Last", commandsAction("After", 1, "echo after"))))
		skipped := e.start("entry-skip", map[string]string{"GATE": "closed"})
		e.waitEnd("entry-skip", skipped, types.PipelineExecutionStatusSucceeded)
		runs = e.actionRuns("entry-skip", skipped)
		if len(runs["Run"]) != 0 || len(runs["After"]) != 1 || runs["After"][0].Status != types.ActionExecutionStatusSucceeded {
			t.Fatalf("with the stage skipped, the actions ran %v; want After only", runs)
		}
		st := e.stages("entry-skip")
		if l := st["Gate"].LatestExecution; l == nil || l.Status != types.StageExecutionStatusSkipped {
			t.Fatalf("Gate's latest execution %+v, want Skipped", l)
		}
		if l := st["Last"].LatestExecution; l == nil || aws.ToString(l.PipelineExecutionId) != skipped || l.Status != types.StageExecutionStatusSucceeded {
			t.Fatalf("Last's latest execution %+v, want %s Succeeded", l, skipped)
		}
		if c := st["Gate"].BeforeEntryConditionState; c == nil || c.LatestExecution == nil || c.LatestExecution.Status != types.ConditionExecutionStatusFailed {
			t.Fatalf("skipping beforeEntry condition state %+v, want Failed", c)
		}
	})
}

// TestConditionsOnSuccessCommands checks a stage after its actions with a Commands rule: a rule
// that exits 1 fails the stage (result FAIL) though its action succeeded; one that exits 0 lets
// the execution go on.
func TestConditionsOnSuccessCommands(t *testing.T) {
	bin := buildBinary(t)
	eachStoreArgs(t, func(t *testing.T, args ...string) {
		e := newCondEnv(t, bin, args...)
		checked := func(command string) types.StageDeclaration {
			s := stageOf("Work", commandsAction("Run", 1, "echo work"))
			s.OnSuccess = onSuccess(types.ResultFail, commandsRule("Check", command))
			return s
		}
		e.create(condPipeline("success-fails", types.ExecutionModeQueued, checked("exit 1"), stageOf("Last", commandsAction("After", 1, "echo after"))))
		e.create(condPipeline("success-ok", types.ExecutionModeQueued, checked("test -f page.txt || true"), stageOf("Last", commandsAction("After", 1, "echo after"))))

		bad := e.start("success-fails", nil)
		e.waitEnd("success-fails", bad, types.PipelineExecutionStatusFailed)
		runs := e.actionRuns("success-fails", bad)
		if len(runs["Run"]) != 1 || runs["Run"][0].Status != types.ActionExecutionStatusSucceeded || len(runs["After"]) != 0 {
			t.Fatalf("actions of the execution failed by onSuccess: %v; want Run succeeded, After never run", runs)
		}
		ws := e.stages("success-fails")["Work"]
		if l := ws.LatestExecution; l == nil || l.Status != types.StageExecutionStatusFailed {
			t.Fatalf("Work's latest execution %+v, want Failed", l)
		}
		if c := ws.OnSuccessConditionState; c == nil || c.LatestExecution == nil || c.LatestExecution.Status != types.ConditionExecutionStatusFailed {
			t.Fatalf("onSuccess condition state %+v, want Failed", c)
		}
		rs := conditionRule(t, "failing onSuccess", ws.OnSuccessConditionState)
		if aws.ToString(rs.RuleName) != "Check" || rs.LatestExecution.Status != types.RuleExecutionStatusFailed || rs.LatestExecution.ErrorDetails == nil {
			t.Fatalf("failing rule state %s %s %+v", aws.ToString(rs.RuleName), rs.LatestExecution.Status, rs.LatestExecution.ErrorDetails)
		}
		if ws.BeforeEntryConditionState != nil || ws.OnFailureConditionState != nil {
			t.Fatalf("conditions the stage does not declare have states: %+v %+v", ws.BeforeEntryConditionState, ws.OnFailureConditionState)
		}
		rules := e.ruleRuns("success-fails", bad, 0, nil).RuleExecutionDetails
		if len(rules) != 1 || rules[0].Status != types.RuleExecutionStatusFailed || aws.ToString(rules[0].RuleName) != "Check" {
			t.Fatalf("rule executions of the failed execution: %+v", rules)
		}
		if r := rules[0].Output; r == nil || r.ExecutionResult == nil || !strings.Contains(aws.ToString(r.ExecutionResult.ExternalExecutionSummary), "exit 1") {
			t.Fatalf("the failed Commands rule's result %+v does not name the failing command", r)
		}
		logURL := aws.ToString(rules[0].Output.ExecutionResult.ExternalExecutionUrl)
		if logURL == "" || logURL != aws.ToString(rs.LatestExecution.ExternalExecutionUrl) {
			t.Fatalf("the rule's log URL is %q in its execution and %q in the stage state", logURL, aws.ToString(rs.LatestExecution.ExternalExecutionUrl))
		}
		if log := httpGet(t, logURL); !strings.Contains(log, "Running command exit 1") {
			t.Fatalf("the Commands rule's log:\n%s", log)
		}

		good := e.start("success-ok", nil)
		e.waitEnd("success-ok", good, types.PipelineExecutionStatusSucceeded)
		if runs := e.actionRuns("success-ok", good); len(runs["After"]) != 1 {
			t.Fatalf("actions after a met onSuccess condition: %v", runs)
		}
		ws = e.stages("success-ok")["Work"]
		if c := ws.OnSuccessConditionState; c == nil || c.LatestExecution == nil || c.LatestExecution.Status != types.ConditionExecutionStatusSucceeded {
			t.Fatalf("met onSuccess condition state %+v", c)
		}
		if rs := conditionRule(t, "met onSuccess", ws.OnSuccessConditionState); rs.LatestExecution.Status != types.RuleExecutionStatusSucceeded {
			t.Fatalf("met rule state %s", rs.LatestExecution.Status)
		}
	})
}

// TestRetryOnFailure retries a failed stage automatically, once: a flaky action that fails once
// then succeeds lets the execution succeed; one that fails twice fails it after exactly one
// automatic retry, after which a manual retry is counted as such. FAILED_ACTIONS reruns only
// the failed action, ALL_ACTIONS every action.
func TestRetryOnFailure(t *testing.T) {
	bin := buildBinary(t)
	eachStoreArgs(t, func(t *testing.T, args ...string) {
		e := newCondEnv(t, bin, args...)
		retried := func(mode types.StageRetryMode) types.StageDeclaration {
			s := stageOf("Work", workedAction("Steady", 1), workedAction("Flaky", 1))
			s.OnFailure = onFailure(types.ResultRetry, mode)
			return s
		}
		e.create(condPipeline("retry", types.ExecutionModeQueued, retried(types.StageRetryModeFailedActions)))

		// Fails once, then succeeds on the automatic retry; only Flaky runs again.
		once := e.start("retry", nil)
		served := e.work(3, attempts(map[string]int{"Flaky": 1}))
		e.waitEnd("retry", once, types.PipelineExecutionStatusSucceeded)
		if slices.Index(served, "Flaky") < 0 || served[2] != "Flaky" {
			t.Fatalf("jobs served %v, want Steady and Flaky, then Flaky again", served)
		}
		runs := e.actionRuns("retry", once)
		if len(runs["Steady"]) != 1 || len(runs["Flaky"]) != 2 || runs["Flaky"][0].Status != types.ActionExecutionStatusFailed || runs["Flaky"][1].Status != types.ActionExecutionStatusSucceeded {
			t.Fatalf("action runs after a FAILED_ACTIONS retry: Steady %d, Flaky %v", len(runs["Steady"]), statuses(runs["Flaky"]))
		}
		m := e.stages("retry")["Work"].RetryStageMetadata
		if m == nil || aws.ToInt32(m.AutoStageRetryAttempt) != 1 || m.ManualStageRetryAttempt != nil || m.LatestRetryTrigger != types.RetryTriggerAutomatedStageRetry {
			t.Fatalf("retry metadata after an automatic retry: %+v", m)
		}

		_, err := e.cp.RetryStageExecution(e.ctx, &cp.RetryStageExecutionInput{PipelineName: aws.String("retry"), StageName: aws.String("Work"),
			PipelineExecutionId: aws.String(once), RetryMode: types.StageRetryModeFailedActions})
		wantAPIError(t, err, "StageNotRetryableException")

		// Fails twice: one automatic retry, then the execution fails.
		twice := e.start("retry", nil)
		e.work(3, attempts(map[string]int{"Flaky": 2}))
		e.waitEnd("retry", twice, types.PipelineExecutionStatusFailed)
		e.noJobs("the execution failed after its automatic retry")
		runs = e.actionRuns("retry", twice)
		if len(runs["Steady"]) != 1 || len(runs["Flaky"]) != 2 {
			t.Fatalf("action runs after two failures: Steady %d, Flaky %v; want 1 and 2", len(runs["Steady"]), statuses(runs["Flaky"]))
		}
		ws := e.stages("retry")["Work"]
		if l := ws.LatestExecution; l == nil || aws.ToString(l.PipelineExecutionId) != twice || l.Status != types.StageExecutionStatusFailed {
			t.Fatalf("Work's latest execution %+v, want %s Failed", l, twice)
		}
		if m := ws.RetryStageMetadata; m == nil || aws.ToInt32(m.AutoStageRetryAttempt) != 1 || m.LatestRetryTrigger != types.RetryTriggerAutomatedStageRetry {
			t.Fatalf("retry metadata after the automatic retry failed: %+v", m)
		}

		// A manual retry, counted as one.
		if _, err := e.cp.RetryStageExecution(e.ctx, &cp.RetryStageExecutionInput{PipelineName: aws.String("retry"), StageName: aws.String("Work"),
			PipelineExecutionId: aws.String(twice), RetryMode: types.StageRetryModeFailedActions}); err != nil {
			t.Fatal(err)
		}
		if served := e.work(1, attempts(nil)); served[0] != "Flaky" {
			t.Fatalf("the manual FAILED_ACTIONS retry ran %v", served)
		}
		e.waitEnd("retry", twice, types.PipelineExecutionStatusSucceeded)
		m = e.stages("retry")["Work"].RetryStageMetadata
		if m == nil || aws.ToInt32(m.AutoStageRetryAttempt) != 1 || aws.ToInt32(m.ManualStageRetryAttempt) != 1 || m.LatestRetryTrigger != types.RetryTriggerManualStageRetry {
			t.Fatalf("retry metadata after a manual retry: %+v", m)
		}

		// ALL_ACTIONS reruns the action that succeeded too.
		e.create(condPipeline("retry-all", types.ExecutionModeQueued, retried(types.StageRetryModeAllActions)))
		all := e.start("retry-all", nil)
		served = e.work(4, attempts(map[string]int{"Flaky": 1}))
		e.waitEnd("retry-all", all, types.PipelineExecutionStatusSucceeded)
		runs = e.actionRuns("retry-all", all)
		if len(runs["Steady"]) != 2 || len(runs["Flaky"]) != 2 {
			t.Fatalf("action runs after an ALL_ACTIONS retry (served %v): Steady %d, Flaky %d; want 2 each", served, len(runs["Steady"]), len(runs["Flaky"]))
		}
	})
}

func statuses(runs []types.ActionExecutionDetail) []types.ActionExecutionStatus {
	var out []types.ActionExecutionStatus
	for _, r := range runs {
		out = append(out, r.Status)
	}
	return out
}

// TestConditionsOnFailureGated gates a failed stage's onFailure result on a VariableCheck rule:
// while the rule fails, the failure stands; once it succeeds, SKIP skips the stage and ROLLBACK
// rolls the stage back to the last execution that succeeded in it.
func TestConditionsOnFailureGated(t *testing.T) {
	bin := buildBinary(t)
	eachStoreArgs(t, func(t *testing.T, args ...string) {
		e := newCondEnv(t, bin, args...)
		gated := func(result types.Result) types.StageDeclaration {
			s := stageOf("Work", workedAction("Flaky", 1))
			s.OnFailure = onFailure(result, "", variableCheckRule("Allowed", "#{variables.GATE}", "EQ", "yes"))
			return s
		}
		failing := func(string) bool { return false }

		// SKIP.
		e.create(condPipeline("gated-skip", types.ExecutionModeQueued, gated(types.ResultSkip), stageOf("Last", commandsAction("After", 1, "echo after"))))
		unmet := e.start("gated-skip", map[string]string{"GATE": "no"})
		e.work(1, failing)
		e.waitEnd("gated-skip", unmet, types.PipelineExecutionStatusFailed)
		if runs := e.actionRuns("gated-skip", unmet); len(runs["After"]) != 0 {
			t.Fatalf("a stage after an unskipped failure ran: %v", runs)
		}
		ws := e.stages("gated-skip")["Work"]
		if l := ws.LatestExecution; l == nil || l.Status != types.StageExecutionStatusFailed {
			t.Fatalf("Work's latest execution with the onFailure condition unmet: %+v, want Failed", l)
		}
		if c := ws.OnFailureConditionState; c == nil || c.LatestExecution == nil || c.LatestExecution.Status != types.ConditionExecutionStatusFailed {
			t.Fatalf("unmet onFailure condition state %+v", c)
		}
		if rs := conditionRule(t, "unmet onFailure", ws.OnFailureConditionState); rs.LatestExecution.Status != types.RuleExecutionStatusFailed {
			t.Fatalf("unmet onFailure rule %s", rs.LatestExecution.Status)
		}
		met := e.start("gated-skip", map[string]string{"GATE": "yes"})
		e.work(1, failing)
		e.waitEnd("gated-skip", met, types.PipelineExecutionStatusSucceeded)
		if runs := e.actionRuns("gated-skip", met); len(runs["After"]) != 1 || len(runs["Flaky"]) != 1 || runs["Flaky"][0].Status != types.ActionExecutionStatusFailed {
			t.Fatalf("actions with the failed stage skipped: %v", runs)
		}
		st := e.stages("gated-skip")
		if l := st["Work"].LatestExecution; l == nil || aws.ToString(l.PipelineExecutionId) != met || l.Status != types.StageExecutionStatusSkipped {
			t.Fatalf("Work's latest execution with the onFailure condition met: %+v, want %s Skipped", l, met)
		}
		if c := st["Work"].OnFailureConditionState; c == nil || c.LatestExecution == nil || c.LatestExecution.Status != types.ConditionExecutionStatusSucceeded {
			t.Fatalf("met onFailure condition state %+v", c)
		}

		// ROLLBACK.
		e.create(condPipeline("gated-rollback", types.ExecutionModeQueued, gated(types.ResultRollback)))
		good := e.start("gated-rollback", nil)
		e.work(1, attempts(nil))
		e.waitEnd("gated-rollback", good, types.PipelineExecutionStatusSucceeded)
		unmet = e.start("gated-rollback", map[string]string{"GATE": "no"})
		e.work(1, failing)
		e.waitEnd("gated-rollback", unmet, types.PipelineExecutionStatusFailed)
		time.Sleep(300 * time.Millisecond)
		if rb := e.executionsOfType("gated-rollback", types.ExecutionTypeRollback); len(rb) != 0 {
			t.Fatalf("a rollback started though the onFailure condition was unmet: %s", e.describe("gated-rollback"))
		}
		e.noJobs("the onFailure condition was unmet")
		met = e.start("gated-rollback", map[string]string{"GATE": "yes"})
		e.work(1, failing)
		e.waitEnd("gated-rollback", met, types.PipelineExecutionStatusFailed)
		var rollbacks []types.PipelineExecutionSummary
		waitFor(t, "a rollback execution", func() bool {
			rollbacks = e.executionsOfType("gated-rollback", types.ExecutionTypeRollback)
			return len(rollbacks) > 0
		}, func() string { return e.describe("gated-rollback") })
		rb := aws.ToString(rollbacks[0].PipelineExecutionId)
		e.work(1, attempts(nil))
		ex := e.waitEnd("gated-rollback", rb, types.PipelineExecutionStatusSucceeded)
		if ex.Trigger == nil || ex.Trigger.TriggerType != types.TriggerTypeAutomatedRollback || aws.ToString(ex.Trigger.TriggerDetail) != met {
			t.Fatalf("rollback trigger %+v, want AutomatedRollback by %s", ex.Trigger, met)
		}
		if ex.RollbackMetadata == nil || aws.ToString(ex.RollbackMetadata.RollbackTargetPipelineExecutionId) != good {
			t.Fatalf("rollback metadata %+v, want target %s", ex.RollbackMetadata, good)
		}
		if len(e.executionsOfType("gated-rollback", types.ExecutionTypeRollback)) != 1 {
			t.Fatalf("more than one rollback: %s", e.describe("gated-rollback"))
		}
	})
}

// TestOverrideStageCondition overrides an entry condition whose rule is slow: the stage's actions
// run at once, the condition is Overridden and the rule's run Abandoned (its build killed).
// Overriding a condition not being evaluated, or in a stage that does not exist, is refused.
func TestOverrideStageCondition(t *testing.T) {
	bin := buildBinary(t)
	eachStoreArgs(t, func(t *testing.T, args ...string) {
		// An abandoned rule's build stops as soon as the step that abandoned it commits, not at
		// its next heartbeat (a quarter of the acknowledgement timeout, here far beyond the
		// test's patience).
		e := newCondEnv(t, bin, append(args, "--job-ack-timeout", "10m")...)
		slow, slowAfter := uniqueSleep(600), uniqueSleep(600)
		gate := stageOf("Gate", workedAction("Hold", 1))
		gate.BeforeEntry = beforeEntry(types.ResultFail, commandsRule("Slow", slow+" & wait"))
		gate.OnSuccess = onSuccess(types.ResultFail, commandsRule("SlowAfter", slowAfter+" & wait"))
		e.create(condPipeline("override", types.ExecutionModeQueued, gate))
		id := e.start("override", nil)
		override := func(stage string, kind types.ConditionType) error {
			_, err := e.cp.OverrideStageCondition(e.ctx, &cp.OverrideStageConditionInput{PipelineName: aws.String("override"),
				StageName: aws.String(stage), PipelineExecutionId: aws.String(id), ConditionType: kind})
			return err
		}
		waitFor(t, "the slow rule to run", func() bool {
			c := e.stages("override")["Gate"].BeforeEntryConditionState
			return c != nil && c.LatestExecution != nil && c.LatestExecution.Status == types.ConditionExecutionStatusInProgress && len(processes(slow)) > 0
		}, func() string { return e.describe("override") })

		wantAPIError(t, override("Gate", types.ConditionTypeOnSuccess), "ConditionNotOverridableException")
		wantAPIError(t, override("Nowhere", types.ConditionTypeBeforeEntry), "StageNotFoundException")
		if err := override("Gate", types.ConditionTypeBeforeEntry); err != nil {
			t.Fatalf("override the entry condition: %v", err)
		}
		// The stage's action runs; the condition is no longer evaluated.
		var job types.Job
		waitFor(t, "the Hold job", func() bool {
			out, err := e.cp.PollForJobs(e.ctx, &cp.PollForJobsInput{ActionTypeId: &types.ActionTypeId{Category: types.ActionCategoryDeploy,
				Owner: types.ActionOwnerCustom, Provider: aws.String(workedProvider), Version: aws.String("1")}})
			if err != nil {
				t.Fatal(err)
			}
			if len(out.Jobs) > 0 {
				job = out.Jobs[0]
			}
			return len(out.Jobs) > 0
		}, func() string { return e.describe("override") })
		if _, err := e.cp.AcknowledgeJob(e.ctx, &cp.AcknowledgeJobInput{JobId: job.Id, Nonce: job.Nonce}); err != nil {
			t.Fatal(err)
		}
		wantAPIError(t, override("Gate", types.ConditionTypeBeforeEntry), "ConditionNotOverridableException")

		gs := e.stages("override")["Gate"]
		c := gs.BeforeEntryConditionState
		if c == nil || c.LatestExecution == nil || c.LatestExecution.Status != types.ConditionExecutionStatusOverridden {
			t.Fatalf("the overridden condition's state %+v", c)
		}
		if rs := conditionRule(t, "overridden", c); rs.LatestExecution.Status != types.RuleExecutionStatusAbandoned {
			t.Fatalf("the overridden condition's rule is %s, want Abandoned", rs.LatestExecution.Status)
		}
		rules := e.ruleRuns("override", id, 0, nil).RuleExecutionDetails
		if len(rules) != 1 || rules[0].Status != types.RuleExecutionStatusAbandoned {
			t.Fatalf("rule executions after the override: %+v", rules)
		}
		waitFor(t, "the abandoned rule's build to be killed", func() bool { return len(processes(slow)) == 0 },
			func() string { return fmt.Sprintf("%q still runs as %v", slow, processes(slow)) })

		if _, err := e.cp.PutJobSuccessResult(e.ctx, &cp.PutJobSuccessResultInput{JobId: job.Id}); err != nil {
			t.Fatal(err)
		}

		// The success condition's slow rule runs once the action succeeded; overriding it lets the
		// stage succeed.
		waitFor(t, "the slow onSuccess rule to run", func() bool {
			c := e.stages("override")["Gate"].OnSuccessConditionState
			return c != nil && c.LatestExecution != nil && c.LatestExecution.Status == types.ConditionExecutionStatusInProgress && len(processes(slowAfter)) > 0
		}, func() string { return e.describe("override") })
		wantAPIError(t, override("Gate", types.ConditionTypeBeforeEntry), "ConditionNotOverridableException")
		if err := override("Gate", types.ConditionTypeOnSuccess); err != nil {
			t.Fatalf("override the success condition: %v", err)
		}
		e.waitEnd("override", id, types.PipelineExecutionStatusSucceeded)
		gs = e.stages("override")["Gate"]
		if l := gs.LatestExecution; l == nil || l.Status != types.StageExecutionStatusSucceeded {
			t.Fatalf("Gate's latest execution after both overrides: %+v, want Succeeded", l)
		}
		if c := gs.BeforeEntryConditionState; c == nil || c.LatestExecution == nil || c.LatestExecution.Status != types.ConditionExecutionStatusOverridden {
			t.Fatalf("the overridden entry condition's state after the execution: %+v", c)
		}
		c = gs.OnSuccessConditionState
		if c == nil || c.LatestExecution == nil || c.LatestExecution.Status != types.ConditionExecutionStatusOverridden {
			t.Fatalf("the overridden success condition's state %+v", c)
		}
		if rs := conditionRule(t, "overridden onSuccess", c); rs.LatestExecution.Status != types.RuleExecutionStatusAbandoned {
			t.Fatalf("the overridden success condition's rule is %s, want Abandoned", rs.LatestExecution.Status)
		}
		rules = e.ruleRuns("override", id, 0, nil).RuleExecutionDetails
		if len(rules) != 2 || rules[0].Status != types.RuleExecutionStatusAbandoned || rules[1].Status != types.RuleExecutionStatusAbandoned ||
			aws.ToString(rules[0].RuleName) != "SlowAfter" || aws.ToString(rules[1].RuleName) != "Slow" {
			t.Fatalf("rule executions after both overrides, newest first: %+v", rules)
		}
		waitFor(t, "the abandoned onSuccess rule's build to be killed", func() bool { return len(processes(slowAfter)) == 0 },
			func() string { return fmt.Sprintf("%q still runs as %v", slowAfter, processes(slowAfter)) })
	})
}

// rollbackSite is a QUEUED pipeline of the S3 source and one more stage, deploy: typically an S3
// deploy of the source artifact.
func rollbackSite(name string, deploy types.StageDeclaration) *types.PipelineDeclaration {
	return condPipeline(name, types.ExecutionModeQueued, deploy)
}

// TestRollbackManual rolls the deploy stage back to an earlier execution, which redeploys that
// execution's artifact; and checks RollbackStage's refusals.
func TestRollbackManual(t *testing.T) {
	bin := buildBinary(t)
	eachStoreArgs(t, func(t *testing.T, args ...string) {
		e := newCondEnv(t, bin, args...)
		// The deploy's Cache-Control is a pipeline variable, so that a rollback shows whose
		// variables it runs with.
		ship := s3DeployAction("Ship", 1, "site", "web")
		ship.Configuration["CacheControl"] = "#{variables.GATE}"
		e.create(rollbackSite("site", stageOf("Deploy", ship)))
		v1 := e.start("site", map[string]string{"GATE": "max-age=1"})
		e.waitEnd("site", v1, types.PipelineExecutionStatusSucceeded)
		if page, cache := e.siteObject("web"); page != "v1\n" || cache != "max-age=1" {
			t.Fatalf("deployed %q with Cache-Control %q after v1", page, cache)
		}
		e.putSource("v2\n")
		v2 := e.start("site", map[string]string{"GATE": "max-age=2"})
		e.waitEnd("site", v2, types.PipelineExecutionStatusSucceeded)
		if page, cache := e.siteObject("web"); page != "v2\n" || cache != "max-age=2" {
			t.Fatalf("deployed %q with Cache-Control %q after v2", page, cache)
		}

		rollback := func(stage, target string) (string, error) {
			out, err := e.cp.RollbackStage(e.ctx, &cp.RollbackStageInput{PipelineName: aws.String("site"), StageName: aws.String(stage),
				TargetPipelineExecutionId: aws.String(target)})
			if err != nil {
				return "", err
			}
			return aws.ToString(out.PipelineExecutionId), nil
		}
		rb, err := rollback("Deploy", v1)
		if err != nil {
			t.Fatalf("roll back Deploy to %s: %v", v1, err)
		}
		ex := e.waitEnd("site", rb, types.PipelineExecutionStatusSucceeded)
		if page, cache := e.siteObject("web"); page != "v1\n" || cache != "max-age=1" {
			t.Fatalf("deployed %q with Cache-Control %q after the rollback to v1, want v1's page and variables", page, cache)
		}
		if vars := ex.Variables; len(vars) != 1 || aws.ToString(vars[0].Name) != "GATE" || aws.ToString(vars[0].ResolvedValue) != "max-age=1" {
			t.Fatalf("the rollback's variables %+v, want v1's GATE=max-age=1", vars)
		}
		if ex.ExecutionType != types.ExecutionTypeRollback || ex.Trigger == nil || ex.Trigger.TriggerType != types.TriggerTypeManualRollback ||
			ex.RollbackMetadata == nil || aws.ToString(ex.RollbackMetadata.RollbackTargetPipelineExecutionId) != v1 {
			t.Fatalf("rollback execution: type %s, trigger %+v, metadata %+v; want ROLLBACK, ManualRollback, target %s", ex.ExecutionType, ex.Trigger, ex.RollbackMetadata, v1)
		}
		list := executions(t, e.cp, "site")
		if len(list) != 3 || aws.ToString(list[0].PipelineExecutionId) != rb || list[0].ExecutionType != types.ExecutionTypeRollback ||
			list[0].RollbackMetadata == nil || aws.ToString(list[0].RollbackMetadata.RollbackTargetPipelineExecutionId) != v1 ||
			list[0].Status != types.PipelineExecutionStatusSucceeded || list[0].Trigger == nil || list[0].Trigger.TriggerType != types.TriggerTypeManualRollback {
			t.Fatalf("ListPipelineExecutions after the rollback: %s", e.describe("site"))
		}
		if list[1].ExecutionType == types.ExecutionTypeRollback || list[1].RollbackMetadata != nil {
			t.Fatalf("the standard execution %s is listed as type %s with rollback metadata %+v", aws.ToString(list[1].PipelineExecutionId), list[1].ExecutionType, list[1].RollbackMetadata)
		}
		st := e.stages("site")
		if l := st["Deploy"].LatestExecution; l == nil || aws.ToString(l.PipelineExecutionId) != rb || l.Type != types.ExecutionTypeRollback || l.Status != types.StageExecutionStatusSucceeded {
			t.Fatalf("Deploy's latest execution %+v, want the rollback %s, type ROLLBACK, Succeeded", l, rb)
		}
		if l := st["Source"].LatestExecution; l == nil || aws.ToString(l.PipelineExecutionId) != v2 || l.Type == types.ExecutionTypeRollback {
			t.Fatalf("Source's latest execution %+v, want %s: a rollback runs only its stage", l, v2)
		}
		runs := e.actionRuns("site", rb)
		v1runs := e.actionRuns("site", v1)
		if len(runs) != 1 || len(runs["Ship"]) != 1 {
			t.Fatalf("the rollback ran %v, want Ship only", runs)
		}
		if in, want := runs["Ship"][0].Input.InputArtifacts[0].S3location, v1runs["Ship"][0].Input.InputArtifacts[0].S3location; aws.ToString(in.Key) != aws.ToString(want.Key) {
			t.Fatalf("the rollback deployed %s, want v1's artifact %s", aws.ToString(in.Key), aws.ToString(want.Key))
		}
		if got := runs["Ship"][0].Input.ResolvedConfiguration["CacheControl"]; got != "max-age=1" {
			t.Fatalf("the rollback's deploy resolved CacheControl to %q, want v1's max-age=1", got)
		}
		// No stage of a PARALLEL pipeline can be rolled back.
		e.create(condPipeline("site-parallel", types.ExecutionModeParallel, stageOf("Deploy", s3DeployAction("Ship", 1, "site", "parallel"))))
		par := e.start("site-parallel", nil)
		e.waitEnd("site-parallel", par, types.PipelineExecutionStatusSucceeded)
		_, err = e.cp.RollbackStage(e.ctx, &cp.RollbackStageInput{PipelineName: aws.String("site-parallel"), StageName: aws.String("Deploy"),
			TargetPipelineExecutionId: aws.String(par)})
		wantAPIError(t, err, "UnableToRollbackStageException")
		// A target that did not succeed in the stage is refused too.
		e.putSource("v3\n")
		e.create(rollbackSite("site-failing", stageOf("Deploy", s3DeployAction("Ship", 1, "nosuch", "web"))))
		failedRun := e.start("site-failing", nil)
		e.waitEnd("site-failing", failedRun, types.PipelineExecutionStatusFailed)
		_, err = e.cp.RollbackStage(e.ctx, &cp.RollbackStageInput{PipelineName: aws.String("site-failing"), StageName: aws.String("Deploy"),
			TargetPipelineExecutionId: aws.String(failedRun)})
		wantAPIError(t, err, "UnableToRollbackStageException")

		// Refusals.
		_, err = rollback("Source", v1)
		wantAPIError(t, err, "UnableToRollbackStageException")
		_, err = rollback("Deploy", "00000000-0000-0000-0000-000000000000")
		wantAPIError(t, err, "PipelineExecutionNotFoundException")
		_, err = rollback("Deploy", rb)
		wantAPIError(t, err, "UnableToRollbackStageException")
		_, err = rollback("Nowhere", v1)
		wantAPIError(t, err, "StageNotFoundException")

		got, err := e.cp.GetPipeline(e.ctx, &cp.GetPipelineInput{Name: aws.String("site")})
		if err != nil {
			t.Fatal(err)
		}
		got.Pipeline.Variables = append(got.Pipeline.Variables, types.PipelineVariableDeclaration{Name: aws.String("OTHER"), DefaultValue: aws.String("x")})
		if _, err := e.cp.UpdatePipeline(e.ctx, &cp.UpdatePipelineInput{Pipeline: got.Pipeline}); err != nil {
			t.Fatal(err)
		}
		_, err = rollback("Deploy", v1)
		wantAPIError(t, err, "PipelineExecutionOutdatedException")
		if n := len(executions(t, e.cp, "site")); n != 3 {
			t.Fatalf("%d executions after refused rollbacks, want 3", n)
		}
	})
}

// TestRollbackAutomatic deploys a broken version whose verification fails: the stage's onFailure
// ROLLBACK redeploys the last version that succeeded in it.
func TestRollbackAutomatic(t *testing.T) {
	bin := buildBinary(t)
	eachStoreArgs(t, func(t *testing.T, args ...string) {
		e := newCondEnv(t, bin, args...)
		deploy := stageOf("Deploy", s3DeployAction("Ship", 1, "site", "web"),
			commandsAction("Verify", 2, `if grep -q broken page.txt; then echo "the deployed page is broken"; exit 1; fi`))
		deploy.OnFailure = onFailure(types.ResultRollback, "")
		e.create(rollbackSite("auto", deploy))
		// With no earlier success in the stage there is nothing to roll back to: the failure stands.
		e.putSource("broken v0\n")
		v0 := e.start("auto", nil)
		if ex := e.waitEnd("auto", v0, types.PipelineExecutionStatusFailed); !strings.Contains(aws.ToString(ex.StatusSummary), "not rolled back") {
			t.Fatalf("the first failed execution's summary %q does not say why it was not rolled back", aws.ToString(ex.StatusSummary))
		}
		if rb := e.executionsOfType("auto", types.ExecutionTypeRollback); len(rb) != 0 {
			t.Fatalf("a rollback with no earlier success: %s", e.describe("auto"))
		}
		e.putSource("ok v1\n")
		v1 := e.start("auto", nil)
		e.waitEnd("auto", v1, types.PipelineExecutionStatusSucceeded)
		if got := e.sitePage("web"); got != "ok v1\n" {
			t.Fatalf("deployed %q after v1", got)
		}
		if rb := e.executionsOfType("auto", types.ExecutionTypeRollback); len(rb) != 0 {
			t.Fatalf("a rollback after a success: %s", e.describe("auto"))
		}

		e.putSource("broken v2\n")
		v2 := e.start("auto", nil)
		var rollbacks []types.PipelineExecutionSummary
		waitFor(t, "an automatic rollback", func() bool {
			rollbacks = e.executionsOfType("auto", types.ExecutionTypeRollback)
			return len(rollbacks) > 0
		}, func() string { return e.describe("auto") })
		rb := aws.ToString(rollbacks[0].PipelineExecutionId)
		ex := e.waitEnd("auto", rb, types.PipelineExecutionStatusSucceeded)
		failed := e.waitEnd("auto", v2, types.PipelineExecutionStatusFailed)
		if got := e.sitePage("web"); got != "ok v1\n" {
			t.Fatalf("deployed %q after the automatic rollback, want v1's page again", got)
		}
		if ex.Trigger == nil || ex.Trigger.TriggerType != types.TriggerTypeAutomatedRollback || aws.ToString(ex.Trigger.TriggerDetail) != v2 {
			t.Fatalf("rollback trigger %+v, want AutomatedRollback with the failed execution %s", ex.Trigger, v2)
		}
		if ex.ExecutionType != types.ExecutionTypeRollback || ex.RollbackMetadata == nil || aws.ToString(ex.RollbackMetadata.RollbackTargetPipelineExecutionId) != v1 {
			t.Fatalf("rollback type %s, metadata %+v; want ROLLBACK to %s", ex.ExecutionType, ex.RollbackMetadata, v1)
		}
		runs := e.actionRuns("auto", v2)
		if len(runs["Ship"]) != 1 || runs["Ship"][0].Status != types.ActionExecutionStatusSucceeded || len(runs["Verify"]) != 1 || runs["Verify"][0].Status != types.ActionExecutionStatusFailed {
			t.Fatalf("the broken execution's actions: %v", runs)
		}
		if failed.Status != types.PipelineExecutionStatusFailed {
			t.Fatalf("the broken execution is %s", failed.Status)
		}
		runs = e.actionRuns("auto", rb)
		if len(runs["Ship"]) != 1 || len(runs["Verify"]) != 1 || runs["Verify"][0].Status != types.ActionExecutionStatusSucceeded {
			t.Fatalf("the rollback's actions: %v", runs)
		}
		if l := e.stages("auto")["Deploy"].LatestExecution; l == nil || aws.ToString(l.PipelineExecutionId) != rb || l.Type != types.ExecutionTypeRollback {
			t.Fatalf("Deploy's latest execution %+v, want the rollback %s", l, rb)
		}
		if n := len(e.executionsOfType("auto", types.ExecutionTypeRollback)); n != 1 {
			t.Fatalf("%d rollbacks, want 1: %s", n, e.describe("auto"))
		}
		_, err := e.cp.RollbackStage(e.ctx, &cp.RollbackStageInput{PipelineName: aws.String("auto"), StageName: aws.String("Deploy"),
			TargetPipelineExecutionId: aws.String(v2)})
		wantAPIError(t, err, "UnableToRollbackStageException")

		// After an update, the last success ran another version of the pipeline: a failure is not
		// rolled back to it.
		got, err := e.cp.GetPipeline(e.ctx, &cp.GetPipelineInput{Name: aws.String("auto")})
		if err != nil {
			t.Fatal(err)
		}
		got.Pipeline.Variables = append(got.Pipeline.Variables, types.PipelineVariableDeclaration{Name: aws.String("OTHER"), DefaultValue: aws.String("x")})
		if _, err := e.cp.UpdatePipeline(e.ctx, &cp.UpdatePipelineInput{Pipeline: got.Pipeline}); err != nil {
			t.Fatal(err)
		}
		v5 := e.start("auto", nil)
		if ex := e.waitEnd("auto", v5, types.PipelineExecutionStatusFailed); !strings.Contains(aws.ToString(ex.StatusSummary), "not rolled back") {
			t.Fatalf("the failed execution of the new version has the summary %q; want why it was not rolled back", aws.ToString(ex.StatusSummary))
		}
		if n := len(e.executionsOfType("auto", types.ExecutionTypeRollback)); n != 1 {
			t.Fatalf("%d rollbacks after a failure of the new version, want still 1: %s", n, e.describe("auto"))
		}

		// An unmet onSuccess condition with ROLLBACK: a Commands rule reads the source artifact.
		healthy := commandsRule("Healthy", `if grep -q broken page.txt; then echo "the page is broken"; exit 1; fi`)
		healthy.InputArtifacts = []types.InputArtifact{{Name: aws.String("Src")}}
		checked := stageOf("Deploy", s3DeployAction("Ship", 1, "site", "checked"))
		checked.OnSuccess = onSuccess(types.ResultRollback, healthy)
		e.create(rollbackSite("auto-success", checked))
		e.putSource("ok v3\n")
		v3 := e.start("auto-success", nil)
		e.waitEnd("auto-success", v3, types.PipelineExecutionStatusSucceeded)
		e.putSource("broken v4\n")
		v4 := e.start("auto-success", nil)
		e.waitEnd("auto-success", v4, types.PipelineExecutionStatusFailed)
		waitFor(t, "a rollback after the unmet onSuccess condition", func() bool {
			rollbacks = e.executionsOfType("auto-success", types.ExecutionTypeRollback)
			return len(rollbacks) > 0
		}, func() string { return e.describe("auto-success") })
		ex = e.waitEnd("auto-success", aws.ToString(rollbacks[0].PipelineExecutionId), types.PipelineExecutionStatusSucceeded)
		if ex.Trigger == nil || ex.Trigger.TriggerType != types.TriggerTypeAutomatedRollback || aws.ToString(ex.Trigger.TriggerDetail) != v4 ||
			ex.RollbackMetadata == nil || aws.ToString(ex.RollbackMetadata.RollbackTargetPipelineExecutionId) != v3 {
			t.Fatalf("rollback after onSuccess: trigger %+v, metadata %+v; want AutomatedRollback by %s to %s", ex.Trigger, ex.RollbackMetadata, v4, v3)
		}
		if got := e.sitePage("checked"); got != "ok v3\n" {
			t.Fatalf("deployed %q after the rollback, want v3's page", got)
		}
		if rules := e.ruleRuns("auto-success", aws.ToString(rollbacks[0].PipelineExecutionId), 0, nil).RuleExecutionDetails; len(rules) != 0 {
			t.Fatalf("the rollback evaluated %d rules; a rollback runs its stage without its conditions", len(rules))
		}
	})
}

// TestDeployTargets lists the S3 deploy's bucket as its deploy target, with the target's status,
// times and events; filters by status; lists nothing for an action that reports no targets; and
// refuses an unknown action execution.
func TestDeployTargets(t *testing.T) {
	bin := buildBinary(t)
	eachStoreArgs(t, func(t *testing.T, args ...string) {
		e := newCondEnv(t, bin, args...)
		e.create(rollbackSite("targets", stageOf("Deploy", s3DeployAction("Ship", 1, "site", "web"))))
		e.create(rollbackSite("no-bucket", stageOf("Deploy", s3DeployAction("Ship", 1, "nosuch", "web"))))
		id := e.start("targets", nil)
		e.waitEnd("targets", id, types.PipelineExecutionStatusSucceeded)
		runs := e.actionRuns("targets", id)
		ship, source := aws.ToString(runs["Ship"][0].ActionExecutionId), aws.ToString(runs["Source"][0].ActionExecutionId)
		list := func(pipeline, action string, filters ...types.TargetFilter) ([]types.DeployActionExecutionTarget, error) {
			out, err := e.cp.ListDeployActionExecutionTargets(e.ctx, &cp.ListDeployActionExecutionTargetsInput{PipelineName: aws.String(pipeline),
				ActionExecutionId: aws.String(action), Filters: filters})
			if err != nil {
				return nil, err
			}
			return out.Targets, nil
		}
		targets, err := list("targets", ship)
		if err != nil {
			t.Fatal(err)
		}
		if len(targets) != 1 {
			t.Fatalf("%d deploy targets, want the site bucket", len(targets))
		}
		tg := targets[0]
		if aws.ToString(tg.TargetId) != "site" || aws.ToString(tg.TargetType) != "AWS::S3::Bucket" || aws.ToString(tg.Status) != "Succeeded" {
			t.Fatalf("deploy target %s of type %s is %s", aws.ToString(tg.TargetId), aws.ToString(tg.TargetType), aws.ToString(tg.Status))
		}
		if tg.StartTime == nil || tg.EndTime == nil || tg.EndTime.Before(*tg.StartTime) {
			t.Fatalf("deploy target times %v to %v", tg.StartTime, tg.EndTime)
		}
		var names []string
		for _, ev := range tg.Events {
			names = append(names, aws.ToString(ev.Name))
			if aws.ToString(ev.Status) != "Succeeded" || ev.StartTime == nil || ev.EndTime == nil || ev.Context == nil || aws.ToString(ev.Context.Message) == "" {
				t.Fatalf("deploy target event %s: status %s, times %v to %v, context %+v", aws.ToString(ev.Name), aws.ToString(ev.Status), ev.StartTime, ev.EndTime, ev.Context)
			}
		}
		if !slices.Equal(names, []string{"Extract", "Upload"}) {
			t.Fatalf("deploy target events %v, want Extract and Upload", names)
		}
		statusFilter := func(values ...string) types.TargetFilter {
			return types.TargetFilter{Name: types.TargetFilterNameTargetStatus, Values: values}
		}
		if got, err := list("targets", ship, statusFilter("Succeeded")); err != nil || len(got) != 1 {
			t.Fatalf("targets with status Succeeded: %d (%v), want 1", len(got), err)
		}
		if got, err := list("targets", ship, statusFilter("Failed", "InProgress")); err != nil || len(got) != 0 {
			t.Fatalf("targets with status Failed or InProgress: %d (%v), want 0", len(got), err)
		}
		if got, err := list("targets", source); err != nil || len(got) != 0 {
			t.Fatalf("targets of the source action: %d (%v), want none", len(got), err)
		}
		_, err = list("targets", "00000000-0000-0000-0000-000000000000")
		wantAPIError(t, err, "ActionExecutionNotFoundException")
		_, err = list("no-bucket", ship)
		wantAPIError(t, err, "ActionExecutionNotFoundException")

		// A deploy that fails reports its target Failed, with the failing phase.
		failedID := e.start("no-bucket", nil)
		e.waitEnd("no-bucket", failedID, types.PipelineExecutionStatusFailed)
		failedShip := aws.ToString(e.actionRuns("no-bucket", failedID)["Ship"][0].ActionExecutionId)
		targets, err = list("no-bucket", failedShip, statusFilter("Failed"))
		if err != nil || len(targets) != 1 || aws.ToString(targets[0].TargetId) != "nosuch" {
			t.Fatalf("failed targets of the failed deploy: %+v (%v)", targets, err)
		}
		last := targets[0].Events[len(targets[0].Events)-1]
		if aws.ToString(last.Name) != "Upload" || aws.ToString(last.Status) != "Failed" || !strings.Contains(aws.ToString(last.Context.Message), "nosuch") {
			t.Fatalf("the failed deploy's last event %s %s: %s", aws.ToString(last.Name), aws.ToString(last.Status), aws.ToString(last.Context.Message))
		}
	})
}

// TestConditionsValidation refuses declarations whose conditions CodePipeline would refuse.
func TestConditionsValidation(t *testing.T) {
	bin := buildBinary(t)
	eachStoreArgs(t, func(t *testing.T, args ...string) {
		e := newCondEnv(t, bin, args...)
		deploy := func() types.StageDeclaration { return stageOf("Deploy", s3DeployAction("Ship", 1, "site", "web")) }
		gate := variableCheckRule("Gate", "#{variables.GATE}", "EQ", "open")
		cases := []struct {
			name, want string
			decl       func() *types.PipelineDeclaration
		}{
			{"conditions on a V1 pipeline", "V2", func() *types.PipelineDeclaration {
				s := deploy()
				s.BeforeEntry = beforeEntry(types.ResultFail, gate)
				p := condPipeline("v1", types.ExecutionModeSuperseded, s)
				p.PipelineType, p.Variables = types.PipelineTypeV1, nil
				return p
			}},
			{"conditions on the source stage", "source", func() *types.PipelineDeclaration {
				p := condPipeline("on-source", types.ExecutionModeQueued, deploy())
				p.Stages[0].BeforeEntry = beforeEntry(types.ResultFail, gate)
				return p
			}},
			{"beforeEntry ROLLBACK", "ROLLBACK", func() *types.PipelineDeclaration {
				s := deploy()
				s.BeforeEntry = beforeEntry(types.ResultRollback, gate)
				return condPipeline("entry-rollback", types.ExecutionModeQueued, s)
			}},
			{"onSuccess SKIP", "SKIP", func() *types.PipelineDeclaration {
				s := deploy()
				s.OnSuccess = onSuccess(types.ResultSkip, gate)
				return condPipeline("success-skip", types.ExecutionModeQueued, s)
			}},
			{"retryConfiguration without RETRY", "retryConfiguration", func() *types.PipelineDeclaration {
				s := deploy()
				s.OnFailure = onFailure(types.ResultFail, types.StageRetryModeAllActions)
				return condPipeline("retry-config", types.ExecutionModeQueued, s)
			}},
			{"ROLLBACK in a PARALLEL pipeline", "PARALLEL", func() *types.PipelineDeclaration {
				s := deploy()
				s.OnFailure = onFailure(types.ResultRollback, "")
				return condPipeline("parallel-rollback", types.ExecutionModeParallel, s)
			}},
			{"onSuccess ROLLBACK in a PARALLEL pipeline", "PARALLEL", func() *types.PipelineDeclaration {
				s := deploy()
				s.OnSuccess = onSuccess(types.ResultRollback, gate)
				return condPipeline("parallel-success-rollback", types.ExecutionModeParallel, s)
			}},
		}
		for _, c := range cases {
			decl := c.decl()
			_, err := e.cp.CreatePipeline(e.ctx, &cp.CreatePipelineInput{Pipeline: decl})
			var apiErr smithy.APIError
			if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "InvalidStageDeclarationException" || !strings.Contains(apiErr.ErrorMessage(), c.want) {
				t.Errorf("%s: got %v, want InvalidStageDeclarationException mentioning %q", c.name, err, c.want)
				continue
			}
			_, err = e.cp.GetPipeline(e.ctx, &cp.GetPipelineInput{Name: decl.Name})
			wantAPIError(t, err, "PipelineNotFoundException")
		}

		// The same stage declarations are fine on a V2 pipeline in QUEUED mode, and come back as sent.
		s := deploy()
		s.BeforeEntry = beforeEntry(types.ResultSkip, gate)
		s.OnSuccess = onSuccess(types.ResultRollback, commandsRule("Check", "true"))
		s.OnFailure = onFailure(types.ResultRetry, types.StageRetryModeAllActions)
		e.create(condPipeline("valid", types.ExecutionModeQueued, s))
		got, err := e.cp.GetPipeline(e.ctx, &cp.GetPipelineInput{Name: aws.String("valid")})
		if err != nil {
			t.Fatal(err)
		}
		d := got.Pipeline.Stages[1]
		if d.BeforeEntry == nil || len(d.BeforeEntry.Conditions) != 1 || d.BeforeEntry.Conditions[0].Result != types.ResultSkip ||
			d.BeforeEntry.Conditions[0].Rules[0].Configuration["Variable"] != "#{variables.GATE}" {
			t.Fatalf("beforeEntry came back as %+v", d.BeforeEntry)
		}
		if d.OnSuccess == nil || len(d.OnSuccess.Conditions) != 1 || !slices.Equal(d.OnSuccess.Conditions[0].Rules[0].Commands, []string{"true"}) {
			t.Fatalf("onSuccess came back as %+v", d.OnSuccess)
		}
		if d.OnFailure == nil || d.OnFailure.Result != types.ResultRetry || d.OnFailure.RetryConfiguration == nil || d.OnFailure.RetryConfiguration.RetryMode != types.StageRetryModeAllActions {
			t.Fatalf("onFailure came back as %+v", d.OnFailure)
		}

		// UpdatePipeline validates the same way.
		bad := got.Pipeline
		bad.Stages[1].OnFailure = onFailure(types.ResultFail, types.StageRetryModeFailedActions)
		_, err = e.cp.UpdatePipeline(e.ctx, &cp.UpdatePipelineInput{Pipeline: bad})
		wantAPIError(t, err, "InvalidStageDeclarationException")
	})
}
