package api_test

import (
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	cp "github.com/aws/aws-sdk-go-v2/service/codepipeline"
	"github.com/aws/aws-sdk-go-v2/service/codepipeline/types"

	"github.com/sluicehq/sluice/internal/api"
)

// deployPipeline: a custom source and a Deploy stage of one custom action, with onFailure.
func deployPipeline(t *testing.T, e *env, name string, onFailure *types.FailureConditions) {
	t.Helper()
	p := minimal(name)
	p.PipelineType = types.PipelineTypeV2
	p.Stages[0].Actions[0] = types.ActionDeclaration{
		Name: aws.String("src"), ActionTypeId: typeID(types.ActionCategorySource, types.ActionOwnerCustom, "Fetch"),
		OutputArtifacts: []types.OutputArtifact{{Name: aws.String("code")}},
	}
	p.Stages[1] = types.StageDeclaration{Name: aws.String("Deploy"), OnFailure: onFailure, Actions: []types.ActionDeclaration{{
		Name: aws.String("ship"), ActionTypeId: typeID(types.ActionCategoryDeploy, types.ActionOwnerCustom, "Ship"),
		InputArtifacts: []types.InputArtifact{{Name: aws.String("code")}},
	}}}
	must[*cp.CreatePipelineOutput](t)(e.client.CreatePipeline(ctx, &cp.CreatePipelineInput{Pipeline: p}))
}

func start(t *testing.T, e *env, pipeline string) string {
	t.Helper()
	return *must[*cp.StartPipelineExecutionOutput](t)(e.client.StartPipelineExecution(ctx, &cp.StartPipelineExecutionInput{Name: aws.String(pipeline)})).PipelineExecutionId
}

func deployState(t *testing.T, e *env, pipeline string) types.StageState {
	t.Helper()
	return must[*cp.GetPipelineStateOutput](t)(e.client.GetPipelineState(ctx, &cp.GetPipelineStateInput{Name: aws.String(pipeline)})).StageStates[1]
}

func inputKey(j types.Job) string { return *j.Data.InputArtifacts[0].Location.S3Location.ObjectKey }

func TestAutomaticRetryCountsItsAttempt(t *testing.T) {
	eachStoreWith(t, func(c *api.Config) { c.StartOnCreate = false }, func(t *testing.T, e *env) {
		customType(t, e, types.ActionCategorySource, "Fetch", 0, 1)
		customType(t, e, types.ActionCategoryDeploy, "Ship", 1, 0)
		deployPipeline(t, e, "retry", &types.FailureConditions{Result: types.ResultRetry, RetryConfiguration: &types.RetryConfiguration{RetryMode: types.StageRetryModeFailedActions}})

		first := start(t, e, "retry")
		work(t, e, types.ActionCategorySource, "Fetch", true, nil)
		work(t, e, types.ActionCategoryDeploy, "Ship", false, nil)
		work(t, e, types.ActionCategoryDeploy, "Ship", true, nil)
		if s := executionStatus(t, e, "retry", first); s != types.PipelineExecutionStatusSucceeded {
			t.Fatalf("execution after one automatic retry: %s", s)
		}
		meta := deployState(t, e, "retry").RetryStageMetadata
		if meta == nil || aws.ToInt32(meta.AutoStageRetryAttempt) != 1 || meta.ManualStageRetryAttempt != nil || meta.LatestRetryTrigger != types.RetryTriggerAutomatedStageRetry {
			t.Fatalf("retryStageMetadata %+v", meta)
		}

		// Once retried automatically, a stage that fails again fails its execution; a manual
		// retry is counted apart.
		second := start(t, e, "retry")
		work(t, e, types.ActionCategorySource, "Fetch", true, nil)
		work(t, e, types.ActionCategoryDeploy, "Ship", false, nil)
		work(t, e, types.ActionCategoryDeploy, "Ship", false, nil)
		if s := executionStatus(t, e, "retry", second); s != types.PipelineExecutionStatusFailed {
			t.Fatalf("execution failing twice: %s", s)
		}
		must[*cp.RetryStageExecutionOutput](t)(e.client.RetryStageExecution(ctx, &cp.RetryStageExecutionInput{PipelineName: aws.String("retry"),
			PipelineExecutionId: aws.String(second), StageName: aws.String("Deploy"), RetryMode: types.StageRetryModeFailedActions}))
		meta = deployState(t, e, "retry").RetryStageMetadata
		if meta == nil || aws.ToInt32(meta.AutoStageRetryAttempt) != 1 || aws.ToInt32(meta.ManualStageRetryAttempt) != 1 || meta.LatestRetryTrigger != types.RetryTriggerManualStageRetry {
			t.Fatalf("retryStageMetadata after a manual retry %+v", meta)
		}
		work(t, e, types.ActionCategoryDeploy, "Ship", true, nil)
		if s := executionStatus(t, e, "retry", second); s != types.PipelineExecutionStatusSucceeded {
			t.Fatalf("execution after the manual retry: %s", s)
		}

		// The engine's events are stored in order with the state.
		events, err := e.store.ListEvents(ctx, "retry", 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		var kinds []string
		for _, ev := range events {
			if ev.ExecutionID == first {
				kinds = append(kinds, ev.Kind)
			}
		}
		want := []string{"ExecutionStarted", "StageEntered", "ActionStarted", "ActionFinished", "StageFinished", "StageEntered", "ActionStarted",
			"ActionFinished", "StageRetried", "ActionStarted", "ActionFinished", "StageFinished", "ExecutionFinished"}
		if !slices.Equal(kinds, want) {
			t.Fatalf("events of the first execution\n got %v\nwant %v", kinds, want)
		}
	})
}

func TestRollbackRedeploysTheTargetsArtifacts(t *testing.T) {
	eachStoreWith(t, func(c *api.Config) { c.StartOnCreate = false }, func(t *testing.T, e *env) {
		customType(t, e, types.ActionCategorySource, "Fetch", 0, 1)
		customType(t, e, types.ActionCategoryDeploy, "Ship", 1, 0)
		deployPipeline(t, e, "auto", &types.FailureConditions{Result: types.ResultRollback})

		// No earlier success: the failure stands and says why.
		doomed := start(t, e, "auto")
		work(t, e, types.ActionCategorySource, "Fetch", true, nil)
		work(t, e, types.ActionCategoryDeploy, "Ship", false, nil)
		exec := must[*cp.GetPipelineExecutionOutput](t)(e.client.GetPipelineExecution(ctx, &cp.GetPipelineExecutionInput{PipelineName: aws.String("auto"), PipelineExecutionId: aws.String(doomed)})).PipelineExecution
		if exec.Status != types.PipelineExecutionStatusFailed || aws.ToString(exec.StatusSummary) == "" {
			t.Fatalf("failed execution without a target to roll back to: %s %q", exec.Status, aws.ToString(exec.StatusSummary))
		}

		good := start(t, e, "auto")
		work(t, e, types.ActionCategorySource, "Fetch", true, nil)
		shipped := work(t, e, types.ActionCategoryDeploy, "Ship", true, nil)
		bad := start(t, e, "auto")
		work(t, e, types.ActionCategorySource, "Fetch", true, nil)
		if failed := work(t, e, types.ActionCategoryDeploy, "Ship", false, nil); inputKey(failed) == inputKey(shipped) {
			t.Fatal("the second execution deployed the first one's artifact")
		}
		// The failure started an automatic rollback to the good execution, with its artifact.
		redeploy := work(t, e, types.ActionCategoryDeploy, "Ship", true, nil)
		if inputKey(redeploy) != inputKey(shipped) {
			t.Fatalf("the rollback deployed %s, want the good execution's %s", inputKey(redeploy), inputKey(shipped))
		}
		summaries := must[*cp.ListPipelineExecutionsOutput](t)(e.client.ListPipelineExecutions(ctx, &cp.ListPipelineExecutionsInput{PipelineName: aws.String("auto")})).PipelineExecutionSummaries
		rollback := summaries[0]
		if rollback.ExecutionType != types.ExecutionTypeRollback || rollback.Trigger.TriggerType != types.TriggerTypeAutomatedRollback ||
			aws.ToString(rollback.Trigger.TriggerDetail) != bad || aws.ToString(rollback.RollbackMetadata.RollbackTargetPipelineExecutionId) != good ||
			rollback.Status != types.PipelineExecutionStatusSucceeded {
			t.Fatalf("rollback execution %+v", rollback)
		}
		if s := executionStatus(t, e, "auto", bad); s != types.PipelineExecutionStatusFailed {
			t.Fatalf("the failed execution is %s", s)
		}
		if latest := deployState(t, e, "auto").LatestExecution; latest.Type != types.ExecutionTypeRollback || aws.ToString(latest.PipelineExecutionId) != *rollback.PipelineExecutionId {
			t.Fatalf("Deploy's latest execution %+v", latest)
		}

		// A manual rollback to the good execution, and the refusals.
		manual := must[*cp.RollbackStageOutput](t)(e.client.RollbackStage(ctx, &cp.RollbackStageInput{PipelineName: aws.String("auto"),
			StageName: aws.String("Deploy"), TargetPipelineExecutionId: aws.String(good)}))
		again := work(t, e, types.ActionCategoryDeploy, "Ship", true, nil)
		if inputKey(again) != inputKey(shipped) {
			t.Fatalf("the manual rollback deployed %s, want %s", inputKey(again), inputKey(shipped))
		}
		got := must[*cp.GetPipelineExecutionOutput](t)(e.client.GetPipelineExecution(ctx, &cp.GetPipelineExecutionInput{PipelineName: aws.String("auto"), PipelineExecutionId: manual.PipelineExecutionId})).PipelineExecution
		if got.ExecutionType != types.ExecutionTypeRollback || got.Trigger.TriggerType != types.TriggerTypeManualRollback || got.Status != types.PipelineExecutionStatusSucceeded {
			t.Fatalf("manual rollback %+v", got)
		}
		rollbackTo := func(stage, target string) error {
			_, err := e.client.RollbackStage(ctx, &cp.RollbackStageInput{PipelineName: aws.String("auto"), StageName: aws.String(stage), TargetPipelineExecutionId: aws.String(target)})
			return err
		}
		wantError(t, rollbackTo("Source", good), "UnableToRollbackStageException", "source stage")
		wantError(t, rollbackTo("Deploy", *manual.PipelineExecutionId), "UnableToRollbackStageException", "is a rollback execution")
		wantError(t, rollbackTo("Deploy", bad), "UnableToRollbackStageException", "did not succeed in the stage Deploy")
		wantError(t, rollbackTo("Deploy", "00000000-0000-0000-0000-000000000000"), "PipelineExecutionNotFoundException", "00000000-0000-0000-0000-000000000000")
		wantError(t, rollbackTo("Nope", good), "StageNotFoundException", "Nope")
	})
}
