package api_test

import (
	"cmp"
	"encoding/json"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	cp "github.com/aws/aws-sdk-go-v2/service/codepipeline"
	"github.com/aws/aws-sdk-go-v2/service/codepipeline/types"

	"github.com/sluicehq/sluice/internal/api"
	"github.com/sluicehq/sluice/internal/store"
)

// TestExecutionsStoredInTheEarlierFormatRunOn: executions in flight when the server is upgraded,
// stored in the format where the pipeline's document held every execution, go on running, and
// the next step stores each in a document of its own.
func TestExecutionsStoredInTheEarlierFormatRunOn(t *testing.T) {
	eachStore(t, api.Limits{}, func(t *testing.T, e *env) {
		customType(t, e, types.ActionCategorySource, "Fetch", 0, 1)
		customType(t, e, types.ActionCategoryBuild, "Make", 1, 1)
		jobPipeline(e, t, "old", types.ExecutionModeParallel)
		var ids []string
		for range 2 {
			out := must[*cp.StartPipelineExecutionOutput](t)(e.client.StartPipelineExecution(ctx, &cp.StartPipelineExecutionInput{Name: aws.String("old")}))
			ids = append(ids, *out.PipelineExecutionId)
		}
		work(t, e, types.ActionCategorySource, "Fetch", true, map[string]string{"Commit": "c1"})
		inlineExecutions(t, e.store, "old")

		work(t, e, types.ActionCategorySource, "Fetch", true, map[string]string{"Commit": "c2"})
		st, err := e.store.State(ctx, "old")
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		if err := json.Unmarshal(st.Pipeline, &doc); err != nil {
			t.Fatal(err)
		}
		if _, ok := doc["runs"]; ok || len(st.Executions) != 2 {
			t.Fatalf("after a step, the pipeline's document still holds runs (%v) or the executions have %d documents", ok, len(st.Executions))
		}

		work(t, e, types.ActionCategoryBuild, "Make", true, nil)
		work(t, e, types.ActionCategoryBuild, "Make", true, nil)
		for _, id := range ids {
			if status := executionStatus(t, e, "old", id); status != types.PipelineExecutionStatusInProgress {
				t.Fatalf("execution %s is %s at its approval", id, status)
			}
		}
		must[*cp.PutApprovalResultOutput](t)(e.client.PutApprovalResult(ctx, &cp.PutApprovalResultInput{
			PipelineName: aws.String("old"), StageName: aws.String("Approve"), ActionName: aws.String("ok"),
			Token: approvalToken(t, e, "old"), Result: &types.ApprovalResult{Status: types.ApprovalStatusApproved, Summary: aws.String("ok")}}))
		succeeded := 0
		for _, id := range ids {
			if executionStatus(t, e, "old", id) == types.PipelineExecutionStatusSucceeded {
				succeeded++
			}
		}
		if succeeded != 1 {
			t.Fatalf("%d executions succeeded after one approval, want 1", succeeded)
		}
	})
}

// inlineExecutions rewrites a pipeline's stored execution state in the earlier format: every
// execution's engine state and run in the pipeline's own document.
func inlineExecutions(t *testing.T, st store.Store, pipeline string) {
	t.Helper()
	err := st.Step(ctx, pipeline, func(cur store.Current) (store.Change, error) {
		stored, err := cur.Load()
		if err != nil {
			return store.Change{}, err
		}
		var doc map[string]any
		if err := json.Unmarshal(stored.Pipeline, &doc); err != nil {
			return store.Change{}, err
		}
		var executions []map[string]any
		runs, gone := map[string]any{}, map[string][]byte{}
		for id, raw := range stored.Executions {
			var own struct {
				Engine map[string]any `json:"engine"`
				Run    any            `json:"run"`
			}
			if err := json.Unmarshal(raw, &own); err != nil {
				return store.Change{}, err
			}
			executions = append(executions, own.Engine)
			runs[id], gone[id] = own.Run, nil
		}
		if len(executions) != 2 {
			t.Errorf("%d executions stored, want 2", len(executions))
		}
		slices.SortFunc(executions, func(a, b map[string]any) int { return cmp.Compare(a["Seq"].(float64), b["Seq"].(float64)) })
		doc["engine"].(map[string]any)["Executions"] = executions
		doc["runs"] = runs
		raw, err := json.Marshal(doc)
		return store.Change{Token: "earlier format", State: raw, ExecutionStates: gone, Active: true}, err
	})
	if err != nil {
		t.Fatal(err)
	}
}
