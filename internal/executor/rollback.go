package executor

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/sluicehq/sluice/internal/engine"
	"github.com/sluicehq/sluice/internal/model"
	"github.com/sluicehq/sluice/internal/store"
)

// rollbackSource is what a rollback takes from the execution it rolls back to: that execution's
// pipeline version, variables and artifacts, with the source revisions they came from.
type rollbackSource struct {
	Execution       string                         `json:"execution"`
	Version         int                            `json:"version"`
	Generation      string                         `json:"generation,omitempty"`
	Variables       map[string]string              `json:"variables,omitempty"`
	Outputs         map[string]map[string]string   `json:"outputs,omitempty"`
	Artifacts       map[string]artifactRef         `json:"artifacts,omitempty"`
	Revisions       []model.ArtifactRevision       `json:"revisions,omitempty"`
	SourceRevisions []model.SourceRevisionOverride `json:"sourceRevisions,omitempty"`
}

// Errors of RollbackStage.
var (
	ErrExecutionNotFound = errors.New("pipeline execution not found")
	// ErrOutdated: the target ran an earlier version of the pipeline.
	ErrOutdated = errors.New("the target execution ran an earlier pipeline version")
)

// RollbackError says why a stage cannot be rolled back to an execution.
type RollbackError struct{ Message string }

func (e *RollbackError) Error() string { return e.Message }

// source is what a rollback to the execution of r takes from it.
func (r *run) source(id string, firstStage string) *rollbackSource {
	src := &rollbackSource{
		Execution: id, Version: r.Version, Generation: r.Generation, Variables: maps.Clone(r.Variables), Outputs: maps.Clone(r.Outputs),
		Artifacts: maps.Clone(r.Artifacts), Revisions: slices.Clone(r.Revisions), SourceRevisions: slices.Clone(r.SourceRevisions),
	}
	for _, aid := range slices.Sorted(maps.Keys(r.Actions)) {
		a := r.Actions[aid]
		if a.Revision != nil && a.Revision.RevisionId != nil && a.Stage == firstStage && !overridden(r, a.Name) {
			src.SourceRevisions = append(src.SourceRevisions, model.SourceRevisionOverride{
				ActionName: new(a.Name), RevisionType: new(model.SourceRevisionTypeCommitId), RevisionValue: a.Revision.RevisionId,
			})
		}
	}
	return src
}

// stageFinished remembers, for automatic rollbacks, the latest standard execution that
// succeeded in a stage.
func (s *step) stageFinished(ev engine.StageFinished) {
	e, r := s.execution(ev.Execution, s.st.Engine.Forgotten), s.st.Runs[ev.Execution]
	if e == nil || r == nil || ev.Status != engine.Succeeded || e.Rollback {
		return
	}
	if s.st.Good == nil {
		s.st.Good = map[string]*rollbackSource{}
	}
	s.st.Good[e.Plan[ev.Stage].Name] = r.source(e.ID, e.Plan[0].Name)
}

// rollbackRequested starts the rollback a condition asked for: to the latest execution that
// succeeded in the stage, if one ran the same pipeline version; else the failure stands, and the
// failed execution's summary says why nothing rolled back.
func (s *step) rollbackRequested(ev engine.RollbackRequested) ([]engine.Event, error) {
	e, r := s.execution(ev.Execution, s.st.Engine.Forgotten), s.st.Runs[ev.Execution]
	if e == nil || r == nil {
		return nil, nil
	}
	stage := e.Plan[ev.Stage].Name
	target := s.st.Good[stage]
	if target == nil || target.Version != r.Version || target.Generation != r.Generation {
		r.Summary = fmt.Sprintf("The stage %s was not rolled back: no earlier execution of this pipeline version succeeded in it", stage)
		return nil, nil
	}
	trigger := model.ExecutionTrigger{TriggerType: new(model.TriggerTypeAutomatedRollback), TriggerDetail: new(ev.Execution)}
	_, events, err := s.startRollback(target, ev.Stage, trigger)
	return events, err
}

// startRollback starts a rollback execution of the stage at index stage to target.
func (s *step) startRollback(target *rollbackSource, stage int, trigger model.ExecutionTrigger) (string, []engine.Event, error) {
	decl, err := s.declarationAt(s.pipeline, target.Version, target.Generation)
	if err != nil {
		return "", nil, err
	}
	id := newID()
	r := &run{
		Pipeline: s.pipeline, Version: target.Version, Generation: target.Generation, Started: s.now,
		Trigger: trigger, Variables: maps.Clone(target.Variables), Outputs: maps.Clone(target.Outputs), Mode: *decl.ExecutionMode,
		SourceRevisions: target.SourceRevisions, Revisions: target.Revisions, Artifacts: maps.Clone(target.Artifacts),
		RollbackOf: target.Execution,
	}
	s.st.Runs[id] = r
	s.touched[id] = true
	events, err := s.st.Engine.StartRollback(id, plan(decl), stage, newID)
	if err != nil {
		return "", nil, err
	}
	r.Seq = s.st.Engine.NextSeq
	return id, events, nil
}

// Rollback is RollbackStage: it starts a rollback execution of a stage to an earlier execution
// that succeeded in it, and returns its id.
func (x *Executor) Rollback(ctx context.Context, pipeline string, current *store.Pipeline, stage, targetID, by string) (string, error) {
	rec, err := x.store.GetExecution(ctx, pipeline, targetID)
	if errors.Is(err, store.ErrNotFound) {
		return "", ErrExecutionNotFound
	}
	if err != nil {
		return "", err
	}
	doc, err := DecodeExecution(rec)
	if err != nil {
		return "", err
	}
	decl, err := x.declaration(ctx, pipeline, current.Version, current.Generation)
	if err != nil {
		return "", err
	}
	var id string
	err = x.apply(ctx, pipeline, func(s *step) error {
		idx := slices.IndexFunc(decl.Stages, func(st model.StageDeclaration) bool { return *st.Name == stage })
		switch {
		case idx < 0:
			return ErrStageNotFound
		case *decl.ExecutionMode == model.ExecutionModeParallel:
			return &RollbackError{"Stage rollback is not available for pipelines in PARALLEL execution mode"}
		case idx == 0:
			return &RollbackError{fmt.Sprintf("The stage %s holds the pipeline's source actions, and a source stage cannot be rolled back", stage)}
		case doc.Execution.ExecutionType != nil && *doc.Execution.ExecutionType == model.ExecutionTypeRollback:
			return &RollbackError{fmt.Sprintf("The target execution %s is a rollback execution; roll back to a standard execution", targetID)}
		case !slices.Contains(doc.Succeeded, stage) || doc.Source == nil:
			return &RollbackError{fmt.Sprintf("The target execution %s did not succeed in the stage %s", targetID, stage)}
		case doc.Source.Version != current.Version || doc.Source.Generation != current.Generation:
			return ErrOutdated
		}
		for _, e := range s.st.Engine.Executions {
			if !e.Waiting && !e.Status.Done() && e.Stage < len(e.Plan) && e.Plan[e.Stage].Name == stage {
				return &RollbackError{fmt.Sprintf("The stage %s is running the execution %s; roll back once it is done", stage, e.ID)}
			}
		}
		trigger := model.ExecutionTrigger{TriggerType: new(model.TriggerTypeManualRollback), TriggerDetail: new(by)}
		var events []engine.Event
		var err error
		if id, events, err = s.startRollback(doc.Source, idx, trigger); err != nil {
			return err
		}
		return s.handle(events)
	})
	return id, err
}
