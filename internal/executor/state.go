package executor

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/sluicehq/sluice/internal/engine"
	"github.com/sluicehq/sluice/internal/model"
	"github.com/sluicehq/sluice/internal/store"
)

// executionDoc is what an execution's own state document holds.
type executionDoc struct {
	Engine *engine.Execution `json:"engine,omitempty"`
	Run    *run              `json:"run,omitempty"`
}

// encode returns the state as the store keeps it: the pipeline's own document, and the documents
// of the executions in changed, nil for those the state no longer holds.
func (st *state) encode(changed map[string]bool) ([]byte, map[string][]byte, error) {
	own := *st
	own.Engine.Executions, own.Runs = nil, nil
	doc, err := json.Marshal(own)
	if err != nil {
		return nil, nil, err
	}
	executions := make(map[string][]byte, len(changed))
	for id := range changed {
		if id == "" {
			continue
		}
		e, r := st.Engine.Find(id), st.Runs[id]
		if e == nil && r == nil {
			executions[id] = nil
			continue
		}
		if executions[id], err = json.Marshal(executionDoc{Engine: e, Run: r}); err != nil {
			return nil, nil, err
		}
	}
	return doc, executions, nil
}

// decodeState reads a pipeline's stored state. inline reports a pipeline document in the format
// from before executions had documents of their own, which holds its executions itself.
func decodeState(pipeline string, stored store.State) (st *state, inline bool, err error) {
	st = &state{}
	if stored.Pipeline != nil {
		if err := json.Unmarshal(stored.Pipeline, st); err != nil {
			return nil, false, fmt.Errorf("decode execution state of %s: %w", pipeline, err)
		}
	}
	inline = len(st.Engine.Executions) > 0 || len(st.Runs) > 0
	if st.Runs == nil {
		st.Runs = map[string]*run{}
	}
	if st.Latest == nil {
		st.Latest = map[string]*stageRun{}
	}
	for id, raw := range stored.Executions {
		var doc executionDoc
		if err := json.Unmarshal(raw, &doc); err != nil {
			return nil, false, fmt.Errorf("decode execution state of %s, execution %s: %w", pipeline, id, err)
		}
		if doc.Engine != nil {
			st.Engine.Executions = append(st.Engine.Executions, doc.Engine)
		}
		if doc.Run != nil {
			st.Runs[id] = doc.Run
		}
	}
	// The engine keeps executions in the order they started.
	slices.SortFunc(st.Engine.Executions, func(a, b *engine.Execution) int { return cmp.Compare(a.Seq, b.Seq) })
	return st, inline, nil
}

// stored reads a pipeline's execution state, outside any step.
func (x *Executor) stored(ctx context.Context, pipeline string) (*state, error) {
	stored, err := x.store.State(ctx, pipeline)
	if err != nil {
		return nil, fmt.Errorf("read execution state of %s: %w", pipeline, err)
	}
	st, _, err := decodeState(pipeline, stored)
	return st, err
}

// StageStates describes the stages of decl as GetPipelineState does: their inbound transitions,
// the executions waiting at them, and the latest run of each stage and action.
func (x *Executor) StageStates(ctx context.Context, pipeline string, decl *model.PipelineDeclaration) ([]model.StageState, error) {
	st, err := x.stored(ctx, pipeline)
	if err != nil {
		return nil, err
	}
	out := make([]model.StageState, 0, len(decl.Stages))
	for i, stage := range decl.Stages {
		name := *stage.Name
		ss := model.StageState{
			StageName:         new(name),
			ActionStates:      []model.ActionState{},
			InboundExecutions: []model.StageExecution{},
		}
		if i > 0 { // nothing transitions into the first stage
			ss.InboundTransitionState = &model.TransitionState{Enabled: new(true)}
		}
		if t, disabled := st.Transitions[name]; disabled && i > 0 {
			ss.InboundTransitionState = &model.TransitionState{Enabled: new(false), DisabledReason: new(t.Reason),
				LastChangedBy: new(t.By), LastChangedAt: model.NewTimestamp(t.Changed)}
		}
		for _, e := range st.Engine.Executions {
			if e.Waiting && !e.Status.Done() && e.Stage < len(e.Plan) && e.Plan[e.Stage].Name == name {
				waiting := model.StageExecution{PipelineExecutionId: new(e.ID), Status: new(model.StageExecutionStatus(e.Status))}
				ss.InboundExecutions = append(ss.InboundExecutions, waiting)
			}
		}
		if len(ss.InboundExecutions) > 0 {
			ss.InboundExecution = &ss.InboundExecutions[0]
		}
		latest := st.Latest[name]
		if latest != nil {
			ss.LatestExecution = &model.StageExecution{PipelineExecutionId: new(latest.Execution), Status: new(stageStatus(latest.Status))}
			// AWS names the type of a stage's run only for a rollback.
			if latest.Rollback {
				ss.LatestExecution.Type = new(model.ExecutionTypeRollback)
			}
			ss.BeforeEntryConditionState = conditionState(latest.Conditions[engine.BeforeEntry], &stage, engine.BeforeEntry)
			ss.OnSuccessConditionState = conditionState(latest.Conditions[engine.OnSuccess], &stage, engine.OnSuccess)
			ss.OnFailureConditionState = conditionState(latest.Conditions[engine.OnFailure], &stage, engine.OnFailure)
			if r := latest.Retries; r != nil {
				ss.RetryStageMetadata = &model.RetryStageMetadata{LatestRetryTrigger: new(model.RetryTrigger(r.Latest))}
				if r.Auto > 0 {
					ss.RetryStageMetadata.AutoStageRetryAttempt = new(r.Auto)
				}
				if r.Manual > 0 {
					ss.RetryStageMetadata.ManualStageRetryAttempt = new(r.Manual)
				}
			}
		}
		for _, a := range stage.Actions {
			as := model.ActionState{ActionName: a.Name}
			if latest != nil {
				if ar := latest.Actions[*a.Name]; ar != nil {
					as.LatestExecution = &model.ActionExecution{
						ActionExecutionId: new(ar.ID),
						Status:            new(model.ActionExecutionStatus(ar.Status)),
						LastStatusChange:  model.NewTimestamp(ar.Changed),
					}
					if ar.Summary != "" {
						as.LatestExecution.Summary = new(ar.Summary)
					}
					if ar.ExternalID != "" {
						as.LatestExecution.ExternalExecutionId = new(ar.ExternalID)
					}
					if ar.ExternalURL != "" {
						as.LatestExecution.ExternalExecutionUrl = new(ar.ExternalURL)
					}
					as.LatestExecution.PercentComplete = ar.Percent
					if ar.Token != "" && ar.Status == engine.InProgress {
						as.LatestExecution.Token = new(ar.Token)
					}
					as.CurrentRevision = ar.Revision
					if ar.Status == engine.Failed {
						as.LatestExecution.ErrorDetails = &model.ErrorDetails{Code: new("JobFailed"), Message: new(ar.Summary)}
					}
				}
			}
			ss.ActionStates = append(ss.ActionStates, as)
		}
		out = append(out, ss)
	}
	return out, nil
}

func stageStatus(s engine.Status) model.StageExecutionStatus {
	if s == engine.StatusSuperseded {
		return model.StageExecutionStatusCancelled
	}
	return model.StageExecutionStatus(s)
}

// conditionState describes the latest evaluation of a stage's condition of the given kind as
// GetPipelineState does, if the stage declares the condition and the condition was evaluated.
func conditionState(c *conditionRun, stage *model.StageDeclaration, kind engine.Kind) *model.StageConditionState {
	if c == nil || len(declaredConditions(stage, kind)) == 0 {
		return nil
	}
	cs := model.ConditionState{
		LatestExecution: &model.ConditionExecution{Status: new(conditionStatus(c.Status)), LastStatusChange: model.NewTimestamp(c.Changed)},
		RuleStates:      []model.RuleState{},
	}
	if c.Summary != "" {
		cs.LatestExecution.Summary = new(c.Summary)
	}
	for _, name := range slices.Sorted(maps.Keys(c.Rules)) {
		rr := c.Rules[name]
		re := &model.RuleExecution{
			RuleExecutionId:  new(rr.ID),
			Status:           new(model.RuleExecutionStatus(rr.Status)),
			LastStatusChange: model.NewTimestamp(rr.Changed),
		}
		if rr.Summary != "" {
			re.Summary = new(rr.Summary)
		}
		if rr.ExternalID != "" {
			re.ExternalExecutionId = new(rr.ExternalID)
		}
		if rr.ExternalURL != "" {
			re.ExternalExecutionUrl = new(rr.ExternalURL)
		}
		if rr.Status == engine.Failed {
			re.ErrorDetails = &model.ErrorDetails{Code: new("RuleFailed"), Message: new(rr.Summary)}
		}
		cs.RuleStates = append(cs.RuleStates, model.RuleState{RuleName: new(name), LatestExecution: re})
	}
	return &model.StageConditionState{
		LatestExecution: &model.StageConditionsExecution{Status: new(conditionStatus(c.Status)), Summary: cs.LatestExecution.Summary},
		ConditionStates: []model.ConditionState{cs},
	}
}

// conditionStatus is a condition's status as AWS names it.
func conditionStatus(s engine.Status) model.ConditionExecutionStatus {
	if s == engine.Overridden {
		return model.ConditionExecutionStatusOverridden
	}
	return model.ConditionExecutionStatus(s)
}
