package executor

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/sluicehq/sluice/internal/engine"
	"github.com/sluicehq/sluice/internal/model"
)

// StageStates describes the stages of decl as GetPipelineState does: their inbound transitions,
// the executions waiting at them, and the latest run of each stage and action.
func (x *Executor) StageStates(ctx context.Context, pipeline string, decl *model.PipelineDeclaration) ([]model.StageState, error) {
	raw, err := x.store.State(ctx, pipeline)
	if err != nil {
		return nil, err
	}
	st := &state{}
	if raw != nil {
		if err := json.Unmarshal(raw, st); err != nil {
			return nil, fmt.Errorf("decode execution state of %s: %w", pipeline, err)
		}
	}
	out := make([]model.StageState, 0, len(decl.Stages))
	for _, stage := range decl.Stages {
		name := *stage.Name
		ss := model.StageState{
			StageName:              new(name),
			InboundTransitionState: &model.TransitionState{Enabled: new(true)},
			ActionStates:           []model.ActionState{},
			InboundExecutions:      []model.StageExecution{},
		}
		if t, disabled := st.Transitions[name]; disabled {
			ss.InboundTransitionState = &model.TransitionState{Enabled: new(false), DisabledReason: new(t.Reason),
				LastChangedBy: new(t.By), LastChangedAt: model.NewTimestamp(t.Changed)}
		}
		for _, e := range st.Engine.Executions {
			if e.Waiting && !e.Status.Done() && e.Stage < len(e.Plan) && e.Plan[e.Stage].Name == name {
				waiting := model.StageExecution{PipelineExecutionId: new(e.ID), Status: new(model.StageExecutionStatus(e.Status)), Type: new(model.ExecutionTypeStandard)}
				ss.InboundExecutions = append(ss.InboundExecutions, waiting)
			}
		}
		if len(ss.InboundExecutions) > 0 {
			ss.InboundExecution = &ss.InboundExecutions[0]
		}
		latest := st.Latest[name]
		if latest != nil {
			ss.LatestExecution = &model.StageExecution{PipelineExecutionId: new(latest.Execution),
				Status: new(stageStatus(latest.Status)), Type: new(model.ExecutionTypeStandard)}
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
