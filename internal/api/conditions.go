package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/sluicehq/sluice/internal/engine"
	"github.com/sluicehq/sluice/internal/executor"
	"github.com/sluicehq/sluice/internal/model"
	"github.com/sluicehq/sluice/internal/store"
)

// OverrideStageCondition lets an execution past a stage condition it is evaluating.
func (s *Service) OverrideStageCondition(ctx context.Context, in *model.OverrideStageConditionInput) error {
	p, err := s.store.GetPipeline(ctx, *in.PipelineName, 0)
	if errors.Is(err, store.ErrNotFound) {
		return s.errPipelineNotFound(*in.PipelineName)
	}
	if err != nil {
		return internal("read pipeline", err)
	}
	if err := s.stageExists(ctx, *in.PipelineName, p.Version, *in.StageName); err != nil {
		return err
	}
	err = s.exec.Override(ctx, *in.PipelineName, *in.PipelineExecutionId, *in.StageName, engine.Kind(*in.ConditionType))
	switch {
	case errors.Is(err, executor.ErrNotLatest):
		return model.ErrNotLatestPipelineExecution("Execution '%s' is not evaluating a condition of stage '%s': it is not the latest execution in the stage", *in.PipelineExecutionId, *in.StageName)
	case errors.Is(err, executor.ErrNotOverridable):
		return model.ErrConditionNotOverridable("The %s condition of stage '%s' is not being evaluated for execution '%s', so there is nothing to override", *in.ConditionType, *in.StageName, *in.PipelineExecutionId)
	case errors.Is(err, store.ErrConflict):
		return errBusy(*in.PipelineName)
	case err != nil:
		return internal("override stage condition", err)
	}
	return nil
}

// RollbackStage starts a rollback execution of a stage to an earlier execution that succeeded
// in it.
func (s *Service) RollbackStage(ctx context.Context, in *model.RollbackStageInput) (*model.RollbackStageOutput, error) {
	p, err := s.store.GetPipeline(ctx, *in.PipelineName, 0)
	if errors.Is(err, store.ErrNotFound) {
		return nil, s.errPipelineNotFound(*in.PipelineName)
	}
	if err != nil {
		return nil, internal("read pipeline", err)
	}
	id, err := s.exec.Rollback(ctx, *in.PipelineName, &p, *in.StageName, *in.TargetPipelineExecutionId, s.caller(ctx))
	var rollbackErr *executor.RollbackError
	switch {
	case errors.Is(err, executor.ErrExecutionNotFound):
		return nil, model.ErrPipelineExecutionNotFound("Pipeline execution '%s' for pipeline '%s' was not found in account '%s'", *in.TargetPipelineExecutionId, *in.PipelineName, s.cfg.AccountID)
	case errors.Is(err, executor.ErrStageNotFound):
		return nil, errStageNotFound(*in.PipelineName, *in.StageName)
	case errors.Is(err, executor.ErrOutdated):
		return nil, model.ErrPipelineExecutionOutdated("Pipeline execution '%s' ran an earlier version of pipeline '%s' than the current version %d; a stage can only be rolled back to an execution of the current version", *in.TargetPipelineExecutionId, *in.PipelineName, p.Version)
	case errors.As(err, &rollbackErr):
		return nil, model.ErrUnableToRollbackStage("%s", rollbackErr.Message)
	case errors.Is(err, store.ErrConflict):
		return nil, errBusy(*in.PipelineName)
	case err != nil:
		return nil, internal("roll back stage", err)
	}
	return &model.RollbackStageOutput{PipelineExecutionId: new(id)}, nil
}

// ListRuleExecutions lists the runs of a pipeline's condition rules, newest first.
func (s *Service) ListRuleExecutions(ctx context.Context, in *model.ListRuleExecutionsInput) (*model.ListRuleExecutionsOutput, error) {
	if _, err := s.store.GetPipeline(ctx, *in.PipelineName, 0); errors.Is(err, store.ErrNotFound) {
		return nil, s.errPipelineNotFound(*in.PipelineName)
	} else if err != nil {
		return nil, internal("read pipeline", err)
	}
	execID, latestOnly := "", false
	if f := in.Filter; f != nil {
		if f.PipelineExecutionId != nil {
			execID = *f.PipelineExecutionId
		}
		if l := f.LatestInPipelineExecution; l != nil && l.PipelineExecutionId != nil {
			execID = *l.PipelineExecutionId
			latestOnly = l.StartTimeRange != nil && *l.StartTimeRange == model.StartTimeRangeLatest
		}
	}
	if execID != "" {
		if _, err := s.executionDoc(ctx, *in.PipelineName, execID); err != nil {
			return nil, err
		}
	}
	size := 100
	if in.MaxResults != nil {
		size = *in.MaxResults
	}
	list := "ListRuleExecutions:" + *in.PipelineName + ":" + execID + ":" + strconv.FormatBool(latestOnly)
	recs, next, err := page(s.tokens, list, in.NextToken, size, store.RuleKey,
		func(after string, n int) ([]store.RuleExecution, error) {
			if !latestOnly {
				return s.store.ListRuleExecutions(ctx, *in.PipelineName, execID, store.Page{After: after, Limit: n})
			}
			// The latest run of each rule: all of the execution's runs, newest first, the
			// first of each stage and rule kept.
			all, err := s.store.ListRuleExecutions(ctx, *in.PipelineName, execID, store.Page{})
			if err != nil {
				return nil, err
			}
			seen := map[string]bool{}
			var out []store.RuleExecution
			for _, r := range all {
				key := r.Stage + "\x00" + r.Rule
				if seen[key] {
					continue
				}
				seen[key] = true
				if after == "" || store.RuleKey(r) < after {
					out = append(out, r)
				}
			}
			return out[:min(n, len(out))], nil
		})
	if err != nil {
		return nil, err
	}
	out := &model.ListRuleExecutionsOutput{RuleExecutionDetails: make([]model.RuleExecutionDetail, len(recs)), NextToken: next}
	for i, rec := range recs {
		if err := json.Unmarshal(rec.Doc, &out.RuleExecutionDetails[i]); err != nil {
			return nil, internal("decode rule execution "+rec.ID, err)
		}
	}
	return out, nil
}

// ListDeployActionExecutionTargets lists the targets a deploy action's run reported.
func (s *Service) ListDeployActionExecutionTargets(ctx context.Context, in *model.ListDeployActionExecutionTargetsInput) (*model.ListDeployActionExecutionTargetsOutput, error) {
	if in.PipelineName != nil {
		if _, err := s.store.GetPipeline(ctx, *in.PipelineName, 0); errors.Is(err, store.ErrNotFound) {
			return nil, s.errPipelineNotFound(*in.PipelineName)
		} else if err != nil {
			return nil, internal("read pipeline", err)
		}
	}
	rec, err := s.store.GetActionExecution(ctx, *in.ActionExecutionId)
	if errors.Is(err, store.ErrNotFound) || (err == nil && in.PipelineName != nil && rec.Pipeline != *in.PipelineName) {
		return nil, model.ErrActionExecutionNotFound("Action execution '%s' was not found in account '%s'", *in.ActionExecutionId, s.cfg.AccountID)
	}
	if err != nil {
		return nil, internal("read action execution", err)
	}
	targets := []model.DeployActionExecutionTarget{}
	if rec.Targets != nil {
		if err := json.Unmarshal(rec.Targets, &targets); err != nil {
			return nil, internal("decode deploy targets of "+rec.ID, err)
		}
	}
	for _, f := range in.Filters {
		if f.Name != nil && *f.Name == model.TargetFilterNameTargetStatus && len(f.Values) > 0 {
			targets = slices.DeleteFunc(targets, func(t model.DeployActionExecutionTarget) bool {
				return t.Status == nil || !slices.Contains(f.Values, *t.Status)
			})
		}
	}
	size := 100
	if in.MaxResults != nil {
		size = *in.MaxResults
	}
	// Targets are listed in the order the action reported them; the key is their position.
	filters, err := json.Marshal(in.Filters)
	if err != nil {
		return nil, internal("encode filters", err)
	}
	list := "ListDeployActionExecutionTargets:" + rec.ID + ":" + string(filters)
	keyed := make([]int, len(targets))
	for i := range keyed {
		keyed[i] = i
	}
	positions, next, err := page(s.tokens, list, in.NextToken, size, func(i int) string { return fmt.Sprintf("%09d", i) },
		func(after string, n int) ([]int, error) {
			start := 0
			if after != "" {
				i, err := strconv.Atoi(after)
				if err != nil {
					return nil, err
				}
				start = i + 1
			}
			start = min(start, len(keyed))
			return keyed[start:min(start+n, len(keyed))], nil
		})
	if err != nil {
		return nil, err
	}
	out := &model.ListDeployActionExecutionTargetsOutput{Targets: make([]model.DeployActionExecutionTarget, 0, len(positions)), NextToken: next}
	for _, i := range positions {
		out.Targets = append(out.Targets, targets[i])
	}
	return out, nil
}
