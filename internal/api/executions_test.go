package api_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cp "github.com/aws/aws-sdk-go-v2/service/codepipeline"
	"github.com/aws/aws-sdk-go-v2/service/codepipeline/types"

	"github.com/sluicehq/sluice/internal/api"
)

// customType registers a custom action type for the execution tests.
func customType(t *testing.T, e *env, category types.ActionCategory, provider string, inputs, outputs int32) {
	t.Helper()
	must[*cp.CreateCustomActionTypeOutput](t)(e.client.CreateCustomActionType(ctx, &cp.CreateCustomActionTypeInput{
		Category: category, Provider: aws.String(provider), Version: aws.String("1"),
		ConfigurationProperties: []types.ActionConfigurationProperty{{Name: aws.String("Target"), Required: false, Key: true, Secret: false}},
		InputArtifactDetails:    &types.ArtifactDetails{MinimumCount: 0, MaximumCount: inputs},
		OutputArtifactDetails:   &types.ArtifactDetails{MinimumCount: 0, MaximumCount: outputs},
	}))
}

// jobPipeline: a custom source, a custom build whose configuration uses the source's output
// variable, and a manual approval.
func jobPipeline(e *env, t *testing.T, name string, mode types.ExecutionMode) {
	t.Helper()
	p := minimal(name)
	p.PipelineType, p.ExecutionMode = types.PipelineTypeV2, mode
	p.Stages[0].Actions[0] = types.ActionDeclaration{
		Name: aws.String("src"), ActionTypeId: typeID(types.ActionCategorySource, types.ActionOwnerCustom, "Fetch"),
		Namespace: aws.String("SRC"), OutputArtifacts: []types.OutputArtifact{{Name: aws.String("code")}},
	}
	p.Stages = append(p.Stages[:1], types.StageDeclaration{Name: aws.String("Build"), Actions: []types.ActionDeclaration{{
		Name: aws.String("make"), ActionTypeId: typeID(types.ActionCategoryBuild, types.ActionOwnerCustom, "Make"),
		Configuration:  map[string]string{"Target": "build-#{SRC.Commit}-#{codepipeline.PipelineExecutionId}"},
		InputArtifacts: []types.InputArtifact{{Name: aws.String("code")}},
	}}}, p.Stages[1])
	must[*cp.CreatePipelineOutput](t)(e.client.CreatePipeline(ctx, &cp.CreatePipelineInput{Pipeline: p}))
}

// work polls one job of a custom type and finishes it.
func work(t *testing.T, e *env, category types.ActionCategory, provider string, ok bool, vars map[string]string) types.Job {
	t.Helper()
	id := typeID(category, types.ActionOwnerCustom, provider)
	var jobs []types.Job
	for deadline := time.Now().Add(5 * time.Second); len(jobs) == 0; {
		jobs = must[*cp.PollForJobsOutput](t)(e.client.PollForJobs(ctx, &cp.PollForJobsInput{ActionTypeId: id, MaxBatchSize: aws.Int32(1)})).Jobs
		if time.Now().After(deadline) {
			t.Fatalf("no %s job to poll", provider)
		}
	}
	job := jobs[0]
	ack := must[*cp.AcknowledgeJobOutput](t)(e.client.AcknowledgeJob(ctx, &cp.AcknowledgeJobInput{JobId: job.Id, Nonce: job.Nonce}))
	if ack.Status != types.JobStatusInProgress {
		t.Fatalf("acknowledged job is %s", ack.Status)
	}
	if ok {
		must[*cp.PutJobSuccessResultOutput](t)(e.client.PutJobSuccessResult(ctx, &cp.PutJobSuccessResultInput{JobId: job.Id,
			ExecutionDetails: &types.ExecutionDetails{Summary: aws.String("done"), ExternalExecutionId: aws.String("ext-1")}, OutputVariables: vars}))
	} else {
		must[*cp.PutJobFailureResultOutput](t)(e.client.PutJobFailureResult(ctx, &cp.PutJobFailureResultInput{JobId: job.Id,
			FailureDetails: &types.FailureDetails{Type: types.FailureTypeJobFailed, Message: aws.String("it broke")}}))
	}
	return job
}

func executionStatus(t *testing.T, e *env, pipeline, id string) types.PipelineExecutionStatus {
	t.Helper()
	return must[*cp.GetPipelineExecutionOutput](t)(e.client.GetPipelineExecution(ctx, &cp.GetPipelineExecutionInput{
		PipelineName: aws.String(pipeline), PipelineExecutionId: aws.String(id)})).PipelineExecution.Status
}

func approvalToken(t *testing.T, e *env, pipeline string) *string {
	t.Helper()
	state := must[*cp.GetPipelineStateOutput](t)(e.client.GetPipelineState(ctx, &cp.GetPipelineStateInput{Name: aws.String(pipeline)}))
	approve := state.StageStates[2].ActionStates[0].LatestExecution
	if approve == nil || approve.Token == nil {
		t.Fatalf("the approval has no token: %+v", approve)
	}
	return approve.Token
}

func TestExecutionRunsJobsAndApproval(t *testing.T) {
	eachStore(t, api.Limits{}, func(t *testing.T, e *env) {
		customType(t, e, types.ActionCategorySource, "Fetch", 0, 1)
		customType(t, e, types.ActionCategoryBuild, "Make", 1, 1)
		jobPipeline(e, t, "jobs", types.ExecutionModeQueued)
		start := must[*cp.StartPipelineExecutionOutput](t)(e.client.StartPipelineExecution(ctx, &cp.StartPipelineExecutionInput{Name: aws.String("jobs"), ClientRequestToken: aws.String("tok-1")}))
		again := must[*cp.StartPipelineExecutionOutput](t)(e.client.StartPipelineExecution(ctx, &cp.StartPipelineExecutionInput{Name: aws.String("jobs"), ClientRequestToken: aws.String("tok-1")}))
		if *again.PipelineExecutionId != *start.PipelineExecutionId {
			t.Fatal("the same clientRequestToken started a second execution")
		}
		id := *start.PipelineExecutionId

		work(t, e, types.ActionCategorySource, "Fetch", true, map[string]string{"Commit": "abc123"})
		build := work(t, e, types.ActionCategoryBuild, "Make", true, nil)
		if got := build.Data.ActionConfiguration.Configuration["Target"]; got != "build-abc123-"+id {
			t.Fatalf("the build job's Target is %q: variables not resolved", got)
		}
		if *build.Data.PipelineContext.PipelineExecutionId != id || *build.Data.PipelineContext.Stage.Name != "Build" {
			t.Fatalf("pipeline context %+v", build.Data.PipelineContext)
		}
		_, err := e.client.PutJobSuccessResult(ctx, &cp.PutJobSuccessResultInput{JobId: build.Id})
		wantError(t, err, "InvalidJobStateException", "not in progress")

		token := approvalToken(t, e, "jobs")
		_, err = e.client.PutApprovalResult(ctx, &cp.PutApprovalResultInput{PipelineName: aws.String("jobs"), StageName: aws.String("Approve"), ActionName: aws.String("ok"),
			Token: aws.String("00000000-0000-0000-0000-000000000000"), Result: &types.ApprovalResult{Status: types.ApprovalStatusApproved, Summary: aws.String("lgtm")}})
		wantError(t, err, "InvalidApprovalTokenException", "")
		must[*cp.PutApprovalResultOutput](t)(e.client.PutApprovalResult(ctx, &cp.PutApprovalResultInput{PipelineName: aws.String("jobs"), StageName: aws.String("Approve"), ActionName: aws.String("ok"),
			Token: token, Result: &types.ApprovalResult{Status: types.ApprovalStatusApproved, Summary: aws.String("lgtm")}}))
		_, err = e.client.PutApprovalResult(ctx, &cp.PutApprovalResultInput{PipelineName: aws.String("jobs"), StageName: aws.String("Approve"), ActionName: aws.String("ok"),
			Token: token, Result: &types.ApprovalResult{Status: types.ApprovalStatusApproved, Summary: aws.String("again")}})
		wantError(t, err, "ApprovalAlreadyCompletedException", "")

		if status := executionStatus(t, e, "jobs", id); status != types.PipelineExecutionStatusSucceeded {
			t.Fatalf("execution %s, want Succeeded", status)
		}
		list := must[*cp.ListPipelineExecutionsOutput](t)(e.client.ListPipelineExecutions(ctx, &cp.ListPipelineExecutionsInput{PipelineName: aws.String("jobs")}))
		if len(list.PipelineExecutionSummaries) != 1 || list.PipelineExecutionSummaries[0].Trigger.TriggerType != types.TriggerTypeStartPipelineExecution {
			t.Fatalf("executions %+v", list.PipelineExecutionSummaries)
		}
		actions := must[*cp.ListActionExecutionsOutput](t)(e.client.ListActionExecutions(ctx, &cp.ListActionExecutionsInput{PipelineName: aws.String("jobs"),
			Filter: &types.ActionExecutionFilter{PipelineExecutionId: aws.String(id)}}))
		if len(actions.ActionExecutionDetails) != 3 {
			t.Fatalf("%d action executions, want 3", len(actions.ActionExecutionDetails))
		}
		var sawResolved, sawOutputs bool
		for _, a := range actions.ActionExecutionDetails {
			if a.Status != types.ActionExecutionStatusSucceeded {
				t.Fatalf("action %s is %s", *a.ActionName, a.Status)
			}
			if *a.ActionName == "make" {
				sawResolved = a.Input.ResolvedConfiguration["Target"] == "build-abc123-"+id && a.Input.Configuration["Target"] == "build-#{SRC.Commit}-#{codepipeline.PipelineExecutionId}"
			}
			if *a.ActionName == "src" {
				sawOutputs = a.Output.OutputVariables["Commit"] == "abc123"
			}
		}
		if !sawResolved || !sawOutputs {
			t.Fatalf("resolved configuration %v, output variables %v", sawResolved, sawOutputs)
		}
	})
}

func TestRejectAndRetryFailedActions(t *testing.T) {
	eachStore(t, api.Limits{}, func(t *testing.T, e *env) {
		customType(t, e, types.ActionCategorySource, "Fetch", 0, 1)
		customType(t, e, types.ActionCategoryBuild, "Make", 1, 1)
		jobPipeline(e, t, "retry", types.ExecutionModeSuperseded)
		id := *must[*cp.StartPipelineExecutionOutput](t)(e.client.StartPipelineExecution(ctx, &cp.StartPipelineExecutionInput{Name: aws.String("retry")})).PipelineExecutionId
		work(t, e, types.ActionCategorySource, "Fetch", true, map[string]string{"Commit": "c1"})
		work(t, e, types.ActionCategoryBuild, "Make", false, nil)
		if status := executionStatus(t, e, "retry", id); status != types.PipelineExecutionStatusFailed {
			t.Fatalf("execution %s, want Failed", status)
		}
		must[*cp.RetryStageExecutionOutput](t)(e.client.RetryStageExecution(ctx, &cp.RetryStageExecutionInput{PipelineName: aws.String("retry"),
			PipelineExecutionId: aws.String(id), StageName: aws.String("Build"), RetryMode: types.StageRetryModeFailedActions}))
		work(t, e, types.ActionCategoryBuild, "Make", true, nil)
		token := approvalToken(t, e, "retry")
		must[*cp.PutApprovalResultOutput](t)(e.client.PutApprovalResult(ctx, &cp.PutApprovalResultInput{PipelineName: aws.String("retry"), StageName: aws.String("Approve"), ActionName: aws.String("ok"),
			Token: token, Result: &types.ApprovalResult{Status: types.ApprovalStatusRejected, Summary: aws.String("no")}}))
		if status := executionStatus(t, e, "retry", id); status != types.PipelineExecutionStatusFailed {
			t.Fatalf("after the rejection the execution is %s, want Failed", status)
		}
	})
}

func TestStopWithAndWithoutAbandon(t *testing.T) {
	eachStore(t, api.Limits{}, func(t *testing.T, e *env) {
		customType(t, e, types.ActionCategorySource, "Fetch", 0, 1)
		customType(t, e, types.ActionCategoryBuild, "Make", 1, 1)
		jobPipeline(e, t, "stops", types.ExecutionModeParallel)
		ids := [2]string{}
		for i := range ids {
			ids[i] = *must[*cp.StartPipelineExecutionOutput](t)(e.client.StartPipelineExecution(ctx, &cp.StartPipelineExecutionInput{Name: aws.String("stops")})).PipelineExecutionId
		}
		// Both source jobs are in flight: stop one politely, abandon the other.
		src := typeID(types.ActionCategorySource, types.ActionOwnerCustom, "Fetch")
		jobs := must[*cp.PollForJobsOutput](t)(e.client.PollForJobs(ctx, &cp.PollForJobsInput{ActionTypeId: src, MaxBatchSize: aws.Int32(2)})).Jobs
		if len(jobs) != 2 {
			t.Fatalf("%d jobs polled, want 2", len(jobs))
		}
		must[*cp.StopPipelineExecutionOutput](t)(e.client.StopPipelineExecution(ctx, &cp.StopPipelineExecutionInput{PipelineName: aws.String("stops"), PipelineExecutionId: aws.String(ids[0]), Reason: aws.String("enough")}))
		if status := executionStatus(t, e, "stops", ids[0]); status != types.PipelineExecutionStatusStopping {
			t.Fatalf("polite stop: %s, want Stopping", status)
		}
		_, err := e.client.StopPipelineExecution(ctx, &cp.StopPipelineExecutionInput{PipelineName: aws.String("stops"), PipelineExecutionId: aws.String(ids[0])})
		wantError(t, err, "DuplicatedStopRequestException", "")
		must[*cp.StopPipelineExecutionOutput](t)(e.client.StopPipelineExecution(ctx, &cp.StopPipelineExecutionInput{PipelineName: aws.String("stops"), PipelineExecutionId: aws.String(ids[1]), Abandon: true}))
		if status := executionStatus(t, e, "stops", ids[1]); status != types.PipelineExecutionStatusStopped {
			t.Fatalf("abandon: %s, want Stopped", status)
		}
		for _, j := range jobs {
			if *j.Data.PipelineContext.PipelineExecutionId == ids[1] {
				_, err := e.client.PutJobSuccessResult(ctx, &cp.PutJobSuccessResultInput{JobId: j.Id})
				wantError(t, err, "InvalidJobStateException", "")
			} else {
				must[*cp.PutJobSuccessResultOutput](t)(e.client.PutJobSuccessResult(ctx, &cp.PutJobSuccessResultInput{JobId: j.Id}))
			}
		}
		if status := executionStatus(t, e, "stops", ids[0]); status != types.PipelineExecutionStatusStopped {
			t.Fatalf("after its job finished the polite stop is %s, want Stopped", status)
		}
		_, err = e.client.StopPipelineExecution(ctx, &cp.StopPipelineExecutionInput{PipelineName: aws.String("stops"), PipelineExecutionId: aws.String(ids[0])})
		wantError(t, err, "PipelineExecutionNotStoppableException", "")
	})
}

func TestDisabledTransitionHoldsQueuedExecutions(t *testing.T) {
	eachStore(t, api.Limits{}, func(t *testing.T, e *env) {
		customType(t, e, types.ActionCategorySource, "Fetch", 0, 1)
		customType(t, e, types.ActionCategoryBuild, "Make", 1, 1)
		jobPipeline(e, t, "held", types.ExecutionModeQueued)
		must[*cp.DisableStageTransitionOutput](t)(e.client.DisableStageTransition(ctx, &cp.DisableStageTransitionInput{PipelineName: aws.String("held"),
			StageName: aws.String("Build"), TransitionType: types.StageTransitionTypeInbound, Reason: aws.String("freeze")}))
		for range 2 {
			must[*cp.StartPipelineExecutionOutput](t)(e.client.StartPipelineExecution(ctx, &cp.StartPipelineExecutionInput{Name: aws.String("held")}))
			work(t, e, types.ActionCategorySource, "Fetch", true, map[string]string{"Commit": "c"})
		}
		state := must[*cp.GetPipelineStateOutput](t)(e.client.GetPipelineState(ctx, &cp.GetPipelineStateInput{Name: aws.String("held")}))
		build := state.StageStates[1]
		if build.InboundTransitionState.Enabled || *build.InboundTransitionState.DisabledReason != "freeze" || len(build.InboundExecutions) != 2 {
			t.Fatalf("Build stage state %+v", build)
		}
		// Nothing transitions into the first stage: it shows no transition, and has none to disable.
		if source := state.StageStates[0]; source.InboundTransitionState != nil {
			t.Fatalf("the first stage shows an inbound transition %+v", source.InboundTransitionState)
		}
		_, err := e.client.DisableStageTransition(ctx, &cp.DisableStageTransitionInput{PipelineName: aws.String("held"),
			StageName: aws.String("Source"), TransitionType: types.StageTransitionTypeInbound, Reason: aws.String("freeze")})
		wantError(t, err, "ValidationException", "Stage 'Source' is the first stage of pipeline 'held' and has no inbound transition")
		must[*cp.EnableStageTransitionOutput](t)(e.client.EnableStageTransition(ctx, &cp.EnableStageTransitionInput{PipelineName: aws.String("held"),
			StageName: aws.String("Build"), TransitionType: types.StageTransitionTypeInbound}))
		work(t, e, types.ActionCategoryBuild, "Make", true, nil)
		state = must[*cp.GetPipelineStateOutput](t)(e.client.GetPipelineState(ctx, &cp.GetPipelineStateInput{Name: aws.String("held")}))
		if n := len(state.StageStates[1].InboundExecutions); n != 0 {
			t.Fatalf("%d executions still wait at Build", n)
		}
		_, err = e.client.DisableStageTransition(ctx, &cp.DisableStageTransitionInput{PipelineName: aws.String("held"),
			StageName: aws.String("Nope"), TransitionType: types.StageTransitionTypeInbound, Reason: aws.String("x")})
		wantError(t, err, "StageNotFoundException", "")
	})
}

func TestTimeouts(t *testing.T) {
	eachStore(t, api.Limits{}, func(t *testing.T, e *env) {
		customType(t, e, types.ActionCategorySource, "Fetch", 0, 1)
		customType(t, e, types.ActionCategoryBuild, "Make", 1, 1)
		jobPipeline(e, t, "slow", types.ExecutionModeParallel)
		id := *must[*cp.StartPipelineExecutionOutput](t)(e.client.StartPipelineExecution(ctx, &cp.StartPipelineExecutionInput{Name: aws.String("slow")})).PipelineExecutionId

		// A job polled and never acknowledged is handed out again once the ack timeout passes.
		src := typeID(types.ActionCategorySource, types.ActionOwnerCustom, "Fetch")
		first := must[*cp.PollForJobsOutput](t)(e.client.PollForJobs(ctx, &cp.PollForJobsInput{ActionTypeId: src})).Jobs
		if len(first) != 1 {
			t.Fatalf("%d jobs", len(first))
		}
		if again := must[*cp.PollForJobsOutput](t)(e.client.PollForJobs(ctx, &cp.PollForJobsInput{ActionTypeId: src})).Jobs; len(again) != 0 {
			t.Fatal("a dispatched job was handed out twice before its ack timeout")
		}
		e.clock.advance(2 * time.Minute)
		if err := e.svc.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
		second := must[*cp.PollForJobsOutput](t)(e.client.PollForJobs(ctx, &cp.PollForJobsInput{ActionTypeId: src})).Jobs
		if len(second) != 1 || *second[0].Id != *first[0].Id || *second[0].Nonce == *first[0].Nonce {
			t.Fatalf("after the ack timeout the job came back as %+v", second)
		}
		_, err := e.client.AcknowledgeJob(ctx, &cp.AcknowledgeJobInput{JobId: first[0].Id, Nonce: first[0].Nonce})
		wantError(t, err, "InvalidNonceException", "")
		must[*cp.AcknowledgeJobOutput](t)(e.client.AcknowledgeJob(ctx, &cp.AcknowledgeJobInput{JobId: second[0].Id, Nonce: second[0].Nonce}))
		must[*cp.PutJobSuccessResultOutput](t)(e.client.PutJobSuccessResult(ctx, &cp.PutJobSuccessResultInput{JobId: second[0].Id, OutputVariables: map[string]string{"Commit": "c"}}))

		// A job nobody acknowledges is handed out three times, then its action fails.
		idle := *must[*cp.StartPipelineExecutionOutput](t)(e.client.StartPipelineExecution(ctx, &cp.StartPipelineExecutionInput{Name: aws.String("slow")})).PipelineExecutionId
		for round := range 3 {
			if got := must[*cp.PollForJobsOutput](t)(e.client.PollForJobs(ctx, &cp.PollForJobsInput{ActionTypeId: src})).Jobs; len(got) != 1 {
				t.Fatalf("hand-out %d: %d jobs", round+1, len(got))
			}
			e.clock.advance(2 * time.Minute)
			if err := e.svc.Sweep(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if status := executionStatus(t, e, "slow", idle); status != types.PipelineExecutionStatusFailed {
			t.Fatalf("a never-acknowledged job left its execution %s, want Failed", status)
		}
		state := must[*cp.GetPipelineStateOutput](t)(e.client.GetPipelineState(ctx, &cp.GetPipelineStateInput{Name: aws.String("slow")}))
		if msg := aws.ToString(state.StageStates[0].ActionStates[0].LatestExecution.ErrorDetails.Message); !strings.Contains(msg, "never acknowledged") {
			t.Fatalf("error details %q", msg)
		}

		// A job action that outlives its hour fails, and its late result is refused.
		work(t, e, types.ActionCategoryBuild, "Make", true, nil)
		id2 := *must[*cp.StartPipelineExecutionOutput](t)(e.client.StartPipelineExecution(ctx, &cp.StartPipelineExecutionInput{Name: aws.String("slow")})).PipelineExecutionId
		work(t, e, types.ActionCategorySource, "Fetch", true, map[string]string{"Commit": "d"})
		late := must[*cp.PollForJobsOutput](t)(e.client.PollForJobs(ctx, &cp.PollForJobsInput{ActionTypeId: typeID(types.ActionCategoryBuild, types.ActionOwnerCustom, "Make")})).Jobs
		must[*cp.AcknowledgeJobOutput](t)(e.client.AcknowledgeJob(ctx, &cp.AcknowledgeJobInput{JobId: late[0].Id, Nonce: late[0].Nonce}))
		e.clock.advance(61 * time.Minute)
		if err := e.svc.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
		if status := executionStatus(t, e, "slow", id2); status != types.PipelineExecutionStatusFailed {
			t.Fatalf("timed-out build: execution %s, want Failed", status)
		}
		_, err = e.client.PutJobSuccessResult(ctx, &cp.PutJobSuccessResultInput{JobId: late[0].Id})
		wantError(t, err, "InvalidJobStateException", "")

		// The first execution's approval times out after the default 7 days.
		e.clock.advance(7 * 24 * time.Hour)
		if err := e.svc.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
		if status := executionStatus(t, e, "slow", id); status != types.PipelineExecutionStatusFailed {
			t.Fatalf("unanswered approval: execution %s, want Failed", status)
		}
		actions := must[*cp.ListActionExecutionsOutput](t)(e.client.ListActionExecutions(ctx, &cp.ListActionExecutionsInput{PipelineName: aws.String("slow"),
			Filter: &types.ActionExecutionFilter{PipelineExecutionId: aws.String(id)}}))
		approvalFailed := false
		for _, a := range actions.ActionExecutionDetails {
			if *a.ActionName == "ok" && a.Status == types.ActionExecutionStatusFailed && strings.Contains(*a.Output.ExecutionResult.ErrorDetails.Message, "approval timed out") {
				approvalFailed = true
			}
		}
		if !approvalFailed {
			t.Fatalf("the approval's action execution does not say it timed out: %+v", actions.ActionExecutionDetails)
		}
	})
}

func TestContinuationTokensAndDeleteWhileRunning(t *testing.T) {
	eachStore(t, api.Limits{}, func(t *testing.T, e *env) {
		customType(t, e, types.ActionCategorySource, "Fetch", 0, 1)
		customType(t, e, types.ActionCategoryBuild, "Make", 1, 1)
		jobPipeline(e, t, "long", types.ExecutionModeQueued)
		id := *must[*cp.StartPipelineExecutionOutput](t)(e.client.StartPipelineExecution(ctx, &cp.StartPipelineExecutionInput{Name: aws.String("long")})).PipelineExecutionId
		src := typeID(types.ActionCategorySource, types.ActionOwnerCustom, "Fetch")
		// The worker reports progress twice with a continuation token, then finishes.
		var jobID *string
		for round := range 3 {
			jobs := must[*cp.PollForJobsOutput](t)(e.client.PollForJobs(ctx, &cp.PollForJobsInput{ActionTypeId: src})).Jobs
			if len(jobs) != 1 {
				t.Fatalf("round %d: %d jobs", round, len(jobs))
			}
			j := jobs[0]
			if jobID != nil && *j.Id != *jobID {
				t.Fatal("a continued job came back under another id")
			}
			jobID = j.Id
			if want := fmt.Sprintf("step-%d", round); round > 0 && aws.ToString(j.Data.ContinuationToken) != want {
				t.Fatalf("round %d: continuation token %q, want %q", round, aws.ToString(j.Data.ContinuationToken), want)
			}
			must[*cp.AcknowledgeJobOutput](t)(e.client.AcknowledgeJob(ctx, &cp.AcknowledgeJobInput{JobId: j.Id, Nonce: j.Nonce}))
			in := &cp.PutJobSuccessResultInput{JobId: j.Id, OutputVariables: map[string]string{"Commit": "c"}}
			if round < 2 {
				in.ContinuationToken = aws.String(fmt.Sprintf("step-%d", round+1))
				in.OutputVariables = nil
				in.ExecutionDetails = &types.ExecutionDetails{Summary: aws.String("halfway"), PercentComplete: aws.Int32(50), ExternalExecutionId: aws.String("run-7")}
			}
			must[*cp.PutJobSuccessResultOutput](t)(e.client.PutJobSuccessResult(ctx, in))
			if round < 2 && executionStatus(t, e, "long", id) != types.PipelineExecutionStatusInProgress {
				t.Fatal("a continued job finished its action")
			}
			if round == 0 {
				le := must[*cp.GetPipelineStateOutput](t)(e.client.GetPipelineState(ctx, &cp.GetPipelineStateInput{Name: aws.String("long")})).StageStates[0].ActionStates[0].LatestExecution
				if aws.ToInt32(le.PercentComplete) != 50 || aws.ToString(le.Summary) != "halfway" || aws.ToString(le.ExternalExecutionId) != "run-7" {
					t.Fatalf("progress of a continued job: %+v", le)
				}
			}
		}
		build := typeID(types.ActionCategoryBuild, types.ActionOwnerCustom, "Make")
		jobs := must[*cp.PollForJobsOutput](t)(e.client.PollForJobs(ctx, &cp.PollForJobsInput{ActionTypeId: build})).Jobs
		if len(jobs) != 1 {
			t.Fatalf("the build job did not follow: %d jobs", len(jobs))
		}

		// Deleting the pipeline ends its executions: their jobs are gone, their history too.
		must[*cp.DeletePipelineOutput](t)(e.client.DeletePipeline(ctx, &cp.DeletePipelineInput{Name: aws.String("long")}))
		_, err := e.client.PutJobSuccessResult(ctx, &cp.PutJobSuccessResultInput{JobId: jobs[0].Id})
		wantError(t, err, "JobNotFoundException", "")
		jobPipeline(e, t, "long", types.ExecutionModeQueued)
		list := must[*cp.ListPipelineExecutionsOutput](t)(e.client.ListPipelineExecutions(ctx, &cp.ListPipelineExecutionsInput{PipelineName: aws.String("long")}))
		if len(list.PipelineExecutionSummaries) != 0 {
			t.Fatalf("a re-created pipeline has %d old executions", len(list.PipelineExecutionSummaries))
		}
	})
}

// TestManyPipelinesUnderConcurrentWorkers runs executions of several pipelines at once while
// workers poll concurrently; run it with -race.
func TestManyPipelinesUnderConcurrentWorkers(t *testing.T) {
	eachStore(t, api.Limits{}, func(t *testing.T, e *env) {
		customType(t, e, types.ActionCategorySource, "Fetch", 0, 1)
		customType(t, e, types.ActionCategoryBuild, "Make", 1, 1)
		const pipelines, each = 4, 3
		var ids [][2]string
		for p := range pipelines {
			name := fmt.Sprintf("many-%d", p)
			// QUEUED: GetPipelineState shows the approval token of a stage's latest execution only,
			// so under PARALLEL older executions' approvals would have no visible token.
			jobPipeline(e, t, name, types.ExecutionModeQueued)
			for range each {
				id := must[*cp.StartPipelineExecutionOutput](t)(e.client.StartPipelineExecution(ctx, &cp.StartPipelineExecutionInput{Name: aws.String(name)}))
				ids = append(ids, [2]string{name, *id.PipelineExecutionId})
			}
		}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for w := range 6 {
			wg.Go(func() {
				id := typeID([]types.ActionCategory{types.ActionCategorySource, types.ActionCategoryBuild}[w%2], types.ActionOwnerCustom, []string{"Fetch", "Make"}[w%2])
				for {
					select {
					case <-stop:
						return
					default:
					}
					out, err := e.client.PollForJobs(ctx, &cp.PollForJobsInput{ActionTypeId: id, MaxBatchSize: aws.Int32(2)})
					if err != nil {
						t.Error(err)
						return
					}
					for _, j := range out.Jobs {
						if _, err := e.client.AcknowledgeJob(ctx, &cp.AcknowledgeJobInput{JobId: j.Id, Nonce: j.Nonce}); err != nil {
							t.Error(err)
							return
						}
						if _, err := e.client.PutJobSuccessResult(ctx, &cp.PutJobSuccessResultInput{JobId: j.Id, OutputVariables: map[string]string{"Commit": "c"}}); err != nil {
							t.Error(err)
							return
						}
					}
				}
			})
		}
		// Approvals are answered as they come up.
		deadline := time.Now().Add(30 * time.Second)
		for {
			waiting := 0
			for _, pe := range ids {
				switch executionStatus(t, e, pe[0], pe[1]) {
				case types.PipelineExecutionStatusSucceeded:
				case types.PipelineExecutionStatusInProgress:
					waiting++
				default:
					t.Fatalf("execution %s of %s did not succeed", pe[1], pe[0])
				}
			}
			if waiting == 0 {
				break
			}
			for p := range pipelines {
				name := fmt.Sprintf("many-%d", p)
				state := must[*cp.GetPipelineStateOutput](t)(e.client.GetPipelineState(ctx, &cp.GetPipelineStateInput{Name: aws.String(name)}))
				if le := state.StageStates[2].ActionStates[0].LatestExecution; le != nil && le.Token != nil {
					e.client.PutApprovalResult(ctx, &cp.PutApprovalResultInput{PipelineName: aws.String(name), StageName: aws.String("Approve"), ActionName: aws.String("ok"),
						Token: le.Token, Result: &types.ApprovalResult{Status: types.ApprovalStatusApproved, Summary: aws.String("ok")}})
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d executions still running", waiting)
			}
			time.Sleep(10 * time.Millisecond)
		}
		close(stop)
		wg.Wait()
	})
}

func TestSupersedeAndVariablesThroughTheAPI(t *testing.T) {
	eachStore(t, api.Limits{}, func(t *testing.T, e *env) {
		customType(t, e, types.ActionCategorySource, "Fetch", 0, 1)
		customType(t, e, types.ActionCategoryBuild, "Make", 1, 1)
		p := minimal("sup")
		p.PipelineType = types.PipelineTypeV2
		p.Variables = []types.PipelineVariableDeclaration{{Name: aws.String("env"), DefaultValue: aws.String("dev")}}
		p.Stages[0].Actions[0] = types.ActionDeclaration{Name: aws.String("src"), ActionTypeId: typeID(types.ActionCategorySource, types.ActionOwnerCustom, "Fetch"),
			OutputArtifacts: []types.OutputArtifact{{Name: aws.String("code")}}}
		p.Stages[1].Actions[0] = types.ActionDeclaration{Name: aws.String("make"), ActionTypeId: typeID(types.ActionCategoryBuild, types.ActionOwnerCustom, "Make"),
			Configuration: map[string]string{"Target": "deploy-#{variables.env}"}, InputArtifacts: []types.InputArtifact{{Name: aws.String("code")}}}
		must[*cp.CreatePipelineOutput](t)(e.client.CreatePipeline(ctx, &cp.CreatePipelineInput{Pipeline: p}))

		_, err := e.client.StartPipelineExecution(ctx, &cp.StartPipelineExecutionInput{Name: aws.String("sup"),
			Variables: []types.PipelineVariable{{Name: aws.String("nope"), Value: aws.String("x")}}})
		wantError(t, err, "ValidationException", "'nope' is not declared")

		// e1 takes Build; e2 then e3 arrive at Build's entrance: e3 supersedes e2.
		var ids []string
		for _, env := range []string{"prod", "stage", "qa"} {
			out := must[*cp.StartPipelineExecutionOutput](t)(e.client.StartPipelineExecution(ctx, &cp.StartPipelineExecutionInput{Name: aws.String("sup"),
				Variables: []types.PipelineVariable{{Name: aws.String("env"), Value: aws.String(env)}}}))
			ids = append(ids, *out.PipelineExecutionId)
			work(t, e, types.ActionCategorySource, "Fetch", true, nil)
		}
		if got := executionStatus(t, e, "sup", ids[1]); got != types.PipelineExecutionStatusSuperseded {
			t.Fatalf("the middle execution is %s, want Superseded", got)
		}
		first := work(t, e, types.ActionCategoryBuild, "Make", true, nil)
		if got := first.Data.ActionConfiguration.Configuration["Target"]; got != "deploy-prod" {
			t.Fatalf("e1's build Target %q, want the start-time variable", got)
		}
		third := work(t, e, types.ActionCategoryBuild, "Make", true, nil)
		if *third.Data.PipelineContext.PipelineExecutionId != ids[2] || third.Data.ActionConfiguration.Configuration["Target"] != "deploy-qa" {
			t.Fatalf("after e1, Build ran %s with %v", *third.Data.PipelineContext.PipelineExecutionId, third.Data.ActionConfiguration.Configuration)
		}
		got := must[*cp.GetPipelineExecutionOutput](t)(e.client.GetPipelineExecution(ctx, &cp.GetPipelineExecutionInput{PipelineName: aws.String("sup"), PipelineExecutionId: aws.String(ids[2])}))
		if len(got.PipelineExecution.Variables) != 1 || *got.PipelineExecution.Variables[0].ResolvedValue != "qa" {
			t.Fatalf("variables %+v", got.PipelineExecution.Variables)
		}

		// An update while an execution runs: the run keeps its version, the next uses the new one.
		running := *must[*cp.StartPipelineExecutionOutput](t)(e.client.StartPipelineExecution(ctx, &cp.StartPipelineExecutionInput{Name: aws.String("sup")})).PipelineExecutionId
		p.Stages[1].Actions[0].Configuration["Target"] = "v2-#{variables.env}"
		must[*cp.UpdatePipelineOutput](t)(e.client.UpdatePipeline(ctx, &cp.UpdatePipelineInput{Pipeline: p}))
		work(t, e, types.ActionCategorySource, "Fetch", true, nil)
		old := work(t, e, types.ActionCategoryBuild, "Make", true, nil)
		if *old.Data.PipelineContext.PipelineExecutionId != running || old.Data.ActionConfiguration.Configuration["Target"] != "deploy-dev" {
			t.Fatalf("the running execution took the update: %v", old.Data.ActionConfiguration.Configuration)
		}
		if v := must[*cp.GetPipelineExecutionOutput](t)(e.client.GetPipelineExecution(ctx, &cp.GetPipelineExecutionInput{PipelineName: aws.String("sup"), PipelineExecutionId: aws.String(running)})).PipelineExecution.PipelineVersion; *v != 1 {
			t.Fatalf("the running execution reports version %d, want 1", *v)
		}
	})
}

func TestSourceRevisionOverrides(t *testing.T) {
	eachStore(t, api.Limits{}, func(t *testing.T, e *env) {
		must[*cp.CreatePipelineOutput](t)(e.client.CreatePipeline(ctx, &cp.CreatePipelineInput{Pipeline: minimal("pinned")}))
		start := func(name string, kind types.SourceRevisionType) (*cp.StartPipelineExecutionOutput, error) {
			return e.client.StartPipelineExecution(ctx, &cp.StartPipelineExecutionInput{Name: aws.String("pinned"),
				SourceRevisions: []types.SourceRevisionOverride{{ActionName: aws.String(name), RevisionType: kind, RevisionValue: aws.String("v123")}}})
		}
		_, err := start("nope", types.SourceRevisionTypeS3ObjectVersionId)
		wantError(t, err, "ValidationException", "'nope', which is not a source action")
		_, err = start("src", types.SourceRevisionTypeCommitId)
		wantError(t, err, "ValidationException", "does not take a revision override of type COMMIT_ID")
		out := must[*cp.StartPipelineExecutionOutput](t)(start("src", types.SourceRevisionTypeS3ObjectVersionId))
		list := must[*cp.ListPipelineExecutionsOutput](t)(e.client.ListPipelineExecutions(ctx, &cp.ListPipelineExecutionsInput{PipelineName: aws.String("pinned")}))
		got := list.PipelineExecutionSummaries[0]
		if *got.PipelineExecutionId != *out.PipelineExecutionId || len(got.SourceRevisions) != 1 || *got.SourceRevisions[0].RevisionId != "v123" {
			t.Fatalf("summary %+v", got)
		}
	})
}

func TestRevisionsAndExecutionPaging(t *testing.T) {
	eachStore(t, api.Limits{}, func(t *testing.T, e *env) {
		customType(t, e, types.ActionCategorySource, "Fetch", 0, 1)
		customType(t, e, types.ActionCategoryBuild, "Make", 1, 1)
		jobPipeline(e, t, "revs", types.ExecutionModeParallel)
		var ids []string
		for range 5 {
			ids = append(ids, *must[*cp.StartPipelineExecutionOutput](t)(e.client.StartPipelineExecution(ctx, &cp.StartPipelineExecutionInput{Name: aws.String("revs")})).PipelineExecutionId)
		}
		src := typeID(types.ActionCategorySource, types.ActionOwnerCustom, "Fetch")
		// The newest execution's source job reports a revision.
		jobs := must[*cp.PollForJobsOutput](t)(e.client.PollForJobs(ctx, &cp.PollForJobsInput{ActionTypeId: src, MaxBatchSize: aws.Int32(5)})).Jobs
		first := ids[4]
		var job types.Job
		for _, j := range jobs {
			if *j.Data.PipelineContext.PipelineExecutionId == first {
				job = j
			}
		}
		must[*cp.AcknowledgeJobOutput](t)(e.client.AcknowledgeJob(ctx, &cp.AcknowledgeJobInput{JobId: job.Id, Nonce: job.Nonce}))
		created := time.Unix(1700000000, 0)
		must[*cp.PutJobSuccessResultOutput](t)(e.client.PutJobSuccessResult(ctx, &cp.PutJobSuccessResultInput{JobId: job.Id,
			CurrentRevision: &types.CurrentRevision{Revision: aws.String("rev-42"), ChangeIdentifier: aws.String("chg-42"), Created: &created, RevisionSummary: aws.String("fix things")},
			OutputVariables: map[string]string{"Commit": "c"}}))
		exec := must[*cp.GetPipelineExecutionOutput](t)(e.client.GetPipelineExecution(ctx, &cp.GetPipelineExecutionInput{PipelineName: aws.String("revs"), PipelineExecutionId: aws.String(first)}))
		if revs := exec.PipelineExecution.ArtifactRevisions; len(revs) != 1 || *revs[0].Name != "code" || *revs[0].RevisionId != "rev-42" || *revs[0].RevisionChangeIdentifier != "chg-42" || !revs[0].Created.Equal(created) {
			t.Fatalf("artifact revisions %+v", revs)
		}
		state := must[*cp.GetPipelineStateOutput](t)(e.client.GetPipelineState(ctx, &cp.GetPipelineStateInput{Name: aws.String("revs")}))
		if cur := state.StageStates[0].ActionStates[0].CurrentRevision; cur == nil || aws.ToString(cur.RevisionId) != "rev-42" || aws.ToString(cur.RevisionChangeId) != "chg-42" {
			t.Fatalf("current revision %+v", cur)
		}

		// Paging: newest first, two at a time, tokens bound to the pipeline.
		var listed []string
		var token *string
		for {
			page := must[*cp.ListPipelineExecutionsOutput](t)(e.client.ListPipelineExecutions(ctx, &cp.ListPipelineExecutionsInput{PipelineName: aws.String("revs"), MaxResults: aws.Int32(2), NextToken: token}))
			for _, s := range page.PipelineExecutionSummaries {
				listed = append(listed, *s.PipelineExecutionId)
			}
			if token = page.NextToken; token == nil {
				break
			}
		}
		want := []string{ids[4], ids[3], ids[2], ids[1], ids[0]}
		if fmt.Sprint(listed) != fmt.Sprint(want) {
			t.Fatalf("listed %v, want newest first %v", listed, want)
		}
		succeeded := must[*cp.ListPipelineExecutionsOutput](t)(e.client.ListPipelineExecutions(ctx, &cp.ListPipelineExecutionsInput{PipelineName: aws.String("revs"),
			Filter: &types.PipelineExecutionFilter{SucceededInStage: &types.SucceededInStageFilter{StageName: aws.String("Source")}}}))
		if len(succeeded.PipelineExecutionSummaries) != 1 || *succeeded.PipelineExecutionSummaries[0].PipelineExecutionId != first ||
			len(succeeded.PipelineExecutionSummaries[0].SourceRevisions) != 1 || *succeeded.PipelineExecutionSummaries[0].SourceRevisions[0].RevisionId != "rev-42" {
			t.Fatalf("succeededInStage Source: %+v", succeeded.PipelineExecutionSummaries)
		}
	})
}

// TestRecreatedPipelineRunsItsNewDeclaration deletes a pipeline that ran and creates another
// under its name: runs of the new one follow the new declaration, though both are version 1.
func TestRecreatedPipelineRunsItsNewDeclaration(t *testing.T) {
	eachStore(t, api.Limits{}, func(t *testing.T, e *env) {
		customType(t, e, types.ActionCategorySource, "Fetch", 0, 1)
		customType(t, e, types.ActionCategoryBuild, "Make", 1, 1)
		jobPipeline(e, t, "again", types.ExecutionModeQueued)
		must[*cp.StartPipelineExecutionOutput](t)(e.client.StartPipelineExecution(ctx, &cp.StartPipelineExecutionInput{Name: aws.String("again")}))
		work(t, e, types.ActionCategorySource, "Fetch", true, map[string]string{"Commit": "c1"})
		must[*cp.DeletePipelineOutput](t)(e.client.DeletePipeline(ctx, &cp.DeletePipelineInput{Name: aws.String("again")}))

		p := minimal("again")
		p.Stages[0].Actions[0] = types.ActionDeclaration{
			Name: aws.String("fetch"), ActionTypeId: typeID(types.ActionCategorySource, types.ActionOwnerCustom, "Fetch"),
			OutputArtifacts: []types.OutputArtifact{{Name: aws.String("code")}},
		}
		must[*cp.CreatePipelineOutput](t)(e.client.CreatePipeline(ctx, &cp.CreatePipelineInput{Pipeline: p}))
		must[*cp.StartPipelineExecutionOutput](t)(e.client.StartPipelineExecution(ctx, &cp.StartPipelineExecutionInput{Name: aws.String("again")}))
		work(t, e, types.ActionCategorySource, "Fetch", true, nil)
		state := must[*cp.GetPipelineStateOutput](t)(e.client.GetPipelineState(ctx, &cp.GetPipelineStateInput{Name: aws.String("again")}))
		if le := state.StageStates[1].ActionStates[0].LatestExecution; le == nil || le.Status != types.ActionExecutionStatusInProgress {
			t.Fatalf("the new pipeline's approval is not running: %+v", le)
		}
		jobs := must[*cp.PollForJobsOutput](t)(e.client.PollForJobs(ctx, &cp.PollForJobsInput{ActionTypeId: typeID(types.ActionCategoryBuild, types.ActionOwnerCustom, "Make")})).Jobs
		if len(jobs) != 0 {
			t.Fatalf("the deleted pipeline's build ran: %d jobs", len(jobs))
		}
	})
}

// TestAnswersOfRetriesApprovalsAndJobs checks the exceptions AWS documents for a stage that
// cannot be retried, a stage that does not exist, jobs polled for types that are not custom, and
// a job result that gives output variables with a continuation token.
func TestAnswersOfRetriesApprovalsAndJobs(t *testing.T) {
	eachStore(t, api.Limits{}, func(t *testing.T, e *env) {
		customType(t, e, types.ActionCategorySource, "Fetch", 0, 1)
		customType(t, e, types.ActionCategoryBuild, "Make", 1, 1)
		jobPipeline(e, t, "answers", types.ExecutionModeSuperseded)
		id := *must[*cp.StartPipelineExecutionOutput](t)(e.client.StartPipelineExecution(ctx, &cp.StartPipelineExecutionInput{Name: aws.String("answers")})).PipelineExecutionId

		src := typeID(types.ActionCategorySource, types.ActionOwnerCustom, "Fetch")
		job := must[*cp.PollForJobsOutput](t)(e.client.PollForJobs(ctx, &cp.PollForJobsInput{ActionTypeId: src})).Jobs[0]
		_, err := e.client.PutJobSuccessResult(ctx, &cp.PutJobSuccessResultInput{JobId: job.Id,
			ContinuationToken: aws.String("later"), OutputVariables: map[string]string{"Commit": "c1"}})
		wantError(t, err, "ValidationException", "outputVariables can be included only when there is no continuation token on the request")
		must[*cp.PutJobSuccessResultOutput](t)(e.client.PutJobSuccessResult(ctx, &cp.PutJobSuccessResultInput{JobId: job.Id, OutputVariables: map[string]string{"Commit": "c1"}}))
		work(t, e, types.ActionCategoryBuild, "Make", false, nil)
		if status := executionStatus(t, e, "answers", id); status != types.PipelineExecutionStatusFailed {
			t.Fatalf("execution %s, want Failed", status)
		}

		retry := func(stage string) error {
			_, err := e.client.RetryStageExecution(ctx, &cp.RetryStageExecutionInput{PipelineName: aws.String("answers"),
				PipelineExecutionId: aws.String(id), StageName: aws.String(stage), RetryMode: types.StageRetryModeFailedActions})
			return err
		}
		wantError(t, retry("Source"), "StageNotRetryableException", "it contains no failed actions")
		wantError(t, retry("Nowhere"), "StageNotFoundException", "Pipeline 'answers' has no stage named 'Nowhere'")
		_, err = e.client.PutApprovalResult(ctx, &cp.PutApprovalResultInput{PipelineName: aws.String("answers"), StageName: aws.String("Nowhere"), ActionName: aws.String("ok"),
			Token: aws.String("00000000-0000-0000-0000-000000000000"), Result: &types.ApprovalResult{Status: types.ApprovalStatusApproved, Summary: aws.String("lgtm")}})
		wantError(t, err, "StageNotFoundException", "Pipeline 'answers' has no stage named 'Nowhere'")

		// A newer execution runs the failed stage: the older one is no longer the latest there.
		must[*cp.StartPipelineExecutionOutput](t)(e.client.StartPipelineExecution(ctx, &cp.StartPipelineExecutionInput{Name: aws.String("answers")}))
		work(t, e, types.ActionCategorySource, "Fetch", true, nil)
		wantError(t, retry("Build"), "NotLatestPipelineExecutionException", "not the latest execution of stage 'Build'")

		poll := func(owner types.ActionOwner, category types.ActionCategory, provider string) error {
			_, err := e.client.PollForJobs(ctx, &cp.PollForJobsInput{ActionTypeId: typeID(category, owner, provider)})
			return err
		}
		must[*cp.PollForJobsOutput](t)(e.client.PollForJobs(ctx, &cp.PollForJobsInput{ActionTypeId: typeID(types.ActionCategoryDeploy, types.ActionOwnerAws, "CloudFormation")})) // routed to workers
		wantError(t, poll(types.ActionOwnerAws, types.ActionCategoryDeploy, "CodeDeploy"), "ValidationException", "PollForJobs is valid only for action types with owner Custom")
		wantError(t, poll(types.ActionOwnerThirdParty, types.ActionCategorySource, "GitHub"), "ValidationException", "PollForJobs is valid only for action types with owner Custom")
		wantError(t, poll(types.ActionOwnerCustom, types.ActionCategoryBuild, "Nope"), "ActionTypeNotFoundException",
			"ActionType (Category: 'Build', Owner: 'Custom', Provider: 'Nope', Version: '1') is not available")

		_, err = e.client.StartPipelineExecution(ctx, &cp.StartPipelineExecutionInput{Name: aws.String("gone")})
		wantError(t, err, "PipelineNotFoundException", "Pipeline with name gone does not exist in account "+account+".")

		_, err = e.client.RegisterWebhookWithThirdParty(ctx, &cp.RegisterWebhookWithThirdPartyInput{})
		wantError(t, err, "ValidationException", "1 validation error detected: Value null at 'webhookName' failed to satisfy constraint: Member must not be null")
	})
}

// TestApprovalAfterAnUpdateRenamesItsStage: an execution answers its approval in the stage it
// runs, whatever the pipeline's latest version calls its stages.
func TestApprovalAfterAnUpdateRenamesItsStage(t *testing.T) {
	eachStore(t, api.Limits{}, func(t *testing.T, e *env) {
		customType(t, e, types.ActionCategorySource, "Fetch", 0, 1)
		customType(t, e, types.ActionCategoryBuild, "Make", 1, 1)
		jobPipeline(e, t, "renamed", types.ExecutionModeSuperseded)
		id := *must[*cp.StartPipelineExecutionOutput](t)(e.client.StartPipelineExecution(ctx, &cp.StartPipelineExecutionInput{Name: aws.String("renamed")})).PipelineExecutionId
		work(t, e, types.ActionCategorySource, "Fetch", true, map[string]string{"Commit": "c1"})
		work(t, e, types.ActionCategoryBuild, "Make", true, nil)
		token := approvalToken(t, e, "renamed")

		got := must[*cp.GetPipelineOutput](t)(e.client.GetPipeline(ctx, &cp.GetPipelineInput{Name: aws.String("renamed")})).Pipeline
		got.Stages[2].Name = aws.String("Sign-off")
		must[*cp.UpdatePipelineOutput](t)(e.client.UpdatePipeline(ctx, &cp.UpdatePipelineInput{Pipeline: got}))

		must[*cp.PutApprovalResultOutput](t)(e.client.PutApprovalResult(ctx, &cp.PutApprovalResultInput{PipelineName: aws.String("renamed"), StageName: aws.String("Approve"), ActionName: aws.String("ok"),
			Token: token, Result: &types.ApprovalResult{Status: types.ApprovalStatusApproved, Summary: aws.String("lgtm")}}))
		if status := executionStatus(t, e, "renamed", id); status != types.PipelineExecutionStatusSucceeded {
			t.Fatalf("execution %s, want Succeeded", status)
		}
	})
}
