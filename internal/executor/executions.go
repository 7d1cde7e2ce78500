package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/sluicehq/sluice/internal/engine"
	"github.com/sluicehq/sluice/internal/model"
	"github.com/sluicehq/sluice/internal/store"
)

// Start is what starts an execution.
type Start struct {
	Pipeline   string
	Version    int
	Generation string
	Trigger    model.ExecutionTrigger
	Variables  []model.PipelineVariable
	// SourceRevisions pin source actions to revisions; the source runners fetch them.
	SourceRevisions []model.SourceRevisionOverride
	// Revisions are the revisions of source actions that started the execution (a push, an
	// upload, PutActionRevision), by action name: the actions run them, whenever they start.
	Revisions   map[string]model.ActionRevision
	ClientToken string
}

// Errors the API turns into AWS's exceptions.
var (
	ErrNotStoppable = engine.ErrNotStoppable
	ErrDuplicate    = engine.ErrDuplicateStop
	ErrNotRetryable = engine.ErrNotRetryable
	ErrNotLatest    = engine.ErrNotLatest
	// ErrNotOverridable: the condition is not being evaluated, so there is nothing to override.
	ErrNotOverridable = engine.ErrNotOverridable
)

// VariableError explains what is wrong with the variables an execution was started with.
type VariableError struct{ Message string }

func (e *VariableError) Error() string { return e.Message }

// Start starts an execution and returns its id. With a client token already used on this
// pipeline, it starts nothing and returns the first execution's id.
func (x *Executor) Start(ctx context.Context, req Start) (string, error) {
	if req.ClientToken != "" {
		if e, err := x.store.ExecutionByToken(ctx, req.Pipeline, req.ClientToken); err == nil {
			return e.ID, nil
		}
	}
	decl, err := x.declaration(ctx, req.Pipeline, req.Version, req.Generation)
	if err != nil {
		return "", err
	}
	vars, err := pipelineVariables(decl, req.Variables)
	if err != nil {
		return "", err
	}
	id := newID()
	err = x.apply(ctx, req.Pipeline, func(s *step) error {
		return s.start(id, req, decl, vars)
	})
	if errors.Is(err, store.ErrExists) && req.ClientToken != "" {
		if e, err := x.store.ExecutionByToken(ctx, req.Pipeline, req.ClientToken); err == nil {
			return e.ID, nil
		}
	}
	return id, err
}

// First prepares the first execution of a pipeline that is being created, decl at version 1, as
// a step for the store to take in the transaction that stores the pipeline; call done with
// whether that transaction committed.
func (x *Executor) First(ctx context.Context, req Start, decl *model.PipelineDeclaration) (id string, first store.StepFunc, done func(committed bool), err error) {
	vars, err := pipelineVariables(decl, req.Variables)
	if err != nil {
		return "", nil, nil, err
	}
	// The step cannot run again for what it misses: it gets all it needs now.
	failures, err := x.prepare(ctx, decl)
	if err != nil {
		return "", nil, nil, err
	}
	// The step reads the declaration, which its own transaction is writing.
	key := declarationKey(req.Pipeline, req.Version, req.Generation)
	x.declarations.Store(key, decl)
	id = newID()
	var sig signals
	first = x.stepFunc(ctx, req.Pipeline, func(s *step) error { return s.start(id, req, decl, vars) }, &sig, failures)
	done = func(committed bool) {
		if !committed {
			x.declarations.Delete(key)
			x.Forget(req.Pipeline)
			return
		}
		x.committed(sig)
	}
	return id, first, done, nil
}

// start starts execution id of req.
func (s *step) start(id string, req Start, decl *model.PipelineDeclaration, vars map[string]string) error {
	s.st.Engine.Mode = engine.Mode(*decl.ExecutionMode)
	r := &run{
		Pipeline: req.Pipeline, Version: req.Version, Generation: req.Generation, Started: s.now, ClientToken: req.ClientToken,
		Trigger: req.Trigger, Variables: vars, Mode: *decl.ExecutionMode, SourceRevisions: req.SourceRevisions, StartedBy: req.Revisions,
	}
	s.st.Runs[id] = r
	s.touched[id] = true
	events := s.st.Engine.Start(id, plan(decl), newID)
	r.Seq = s.st.Engine.NextSeq
	return s.handle(events)
}

// plan turns a declaration into the engine's view: stages of runOrder groups, and their conditions.
func plan(decl *model.PipelineDeclaration) []engine.StagePlan {
	out := make([]engine.StagePlan, len(decl.Stages))
	for i, st := range decl.Stages {
		orders := map[int][]string{}
		for _, a := range st.Actions {
			orders[*a.RunOrder] = append(orders[*a.RunOrder], *a.Name)
		}
		out[i].Name = *st.Name
		for _, k := range slices.Sorted(maps.Keys(orders)) {
			out[i].Groups = append(out[i].Groups, orders[k])
		}
		if st.BeforeEntry != nil {
			out[i].BeforeEntry = condition(st.BeforeEntry.Conditions, nil)
		}
		if st.OnSuccess != nil {
			out[i].OnSuccess = condition(st.OnSuccess.Conditions, nil)
		}
		if f := st.OnFailure; f != nil {
			c := condition(f.Conditions, f.Result)
			// Without a retry mode, a retry reruns the failed actions only.
			c.RetryFailedOnly = f.RetryConfiguration == nil || f.RetryConfiguration.RetryMode == nil ||
				*f.RetryConfiguration.RetryMode == model.StageRetryModeFailedActions
			out[i].OnFailure = c
		}
	}
	return out
}

// condition is the engine's view of a declared condition (a stage declares at most one of each
// kind): its rules and its result, the declaration's own (an onFailure's) over the condition's.
func condition(conds []model.Condition, result *model.Result) *engine.Condition {
	c := &engine.Condition{}
	if result != nil {
		c.Result = engine.Result(*result)
	}
	for _, cond := range conds {
		if c.Result == "" && cond.Result != nil {
			c.Result = engine.Result(*cond.Result)
		}
		for _, r := range cond.Rules {
			c.Rules = append(c.Rules, *r.Name)
		}
	}
	return c
}

// pipelineVariables resolves a V2 pipeline's variables: the values given at start over the
// declared defaults. Every declared variable needs a value; undeclared ones are refused.
func pipelineVariables(decl *model.PipelineDeclaration, given []model.PipelineVariable) (map[string]string, error) {
	vars := map[string]string{}
	declared := map[string]bool{}
	for _, v := range decl.Variables {
		declared[*v.Name] = true
		if v.DefaultValue != nil {
			vars[*v.Name] = *v.DefaultValue
		}
	}
	for _, v := range given {
		if !declared[*v.Name] {
			return nil, &VariableError{Message: "Variable '" + *v.Name + "' is not declared by the pipeline"}
		}
		vars[*v.Name] = *v.Value
	}
	for _, v := range decl.Variables {
		if _, ok := vars[*v.Name]; !ok {
			return nil, &VariableError{Message: "Variable '" + *v.Name + "' has no default value, so a value must be given"}
		}
	}
	return vars, nil
}

// Stop stops an execution.
func (x *Executor) Stop(ctx context.Context, pipeline, id string, abandon bool, reason string) error {
	return x.apply(ctx, pipeline, func(s *step) error {
		r := s.st.Runs[id]
		if r == nil {
			return ErrNotStoppable
		}
		events, err := s.st.Engine.Stop(id, abandon, newID)
		if err != nil {
			return err
		}
		r.StopTrigger = &model.StopExecutionTrigger{}
		if reason != "" {
			r.StopTrigger.Reason = new(reason)
		}
		s.touched[id] = true
		return s.handle(events)
	})
}

// Retry retries a stage of an execution.
func (x *Executor) Retry(ctx context.Context, pipeline, id, stage string, failedOnly bool) error {
	return x.apply(ctx, pipeline, func(s *step) error {
		if s.st.Runs[id] == nil {
			return ErrNotLatest
		}
		events, err := s.st.Engine.Retry(id, stage, failedOnly, newID)
		if err != nil {
			return err
		}
		s.touched[id] = true
		return s.handle(events)
	})
}

// Override lets an execution past a stage condition it evaluates (OverrideStageCondition).
func (x *Executor) Override(ctx context.Context, pipeline, id, stage string, kind engine.Kind) error {
	return x.apply(ctx, pipeline, func(s *step) error {
		// Only the stage's latest execution can be evaluating its conditions; if it is, and
		// the engine finds nothing to override, the condition is not being evaluated.
		if l := s.st.Latest[stage]; l == nil || l.Execution != id {
			return ErrNotLatest
		}
		if s.st.Runs[id] == nil {
			return ErrNotOverridable
		}
		events, err := s.st.Engine.Override(id, stage, kind, newID)
		if errors.Is(err, engine.ErrNotLatest) {
			return ErrNotOverridable
		}
		if err != nil {
			return err
		}
		return s.handle(events)
	})
}

// SetTransition enables or disables a stage's inbound transition.
func (x *Executor) SetTransition(ctx context.Context, pipeline, stage string, enabled bool, reason, by string) error {
	return x.apply(ctx, pipeline, func(s *step) error {
		if s.st.Transitions == nil {
			s.st.Transitions = map[string]transition{}
		}
		if enabled {
			delete(s.st.Transitions, stage)
		} else {
			s.st.Transitions[stage] = transition{Reason: reason, By: by, Changed: s.now}
		}
		return s.handle(s.st.Engine.SetTransition(stage, enabled, newID))
	})
}

// execution finds an execution in the engine's state, or among those it forgot during the step
// (an execution that ended, whose events the step still handles).
func (s *step) execution(id string, forgotten []*engine.Execution) *engine.Execution {
	if e := s.st.Engine.Find(id); e != nil {
		return e
	}
	for _, f := range forgotten {
		if f.ID == id {
			return f
		}
	}
	return nil
}

// recordExecutions writes the records of the executions this step changed, and lets go of those
// the engine forgot.
func (s *step) recordExecutions() error {
	for _, e := range s.st.Engine.Forgotten {
		s.touched[e.ID] = true
	}
	forgotten := s.st.Engine.Forgotten
	s.st.Engine.Forgotten = nil
	for id := range s.touched {
		if id == "" {
			continue
		}
		e := s.execution(id, forgotten)
		r := s.st.Runs[id]
		if e == nil || r == nil {
			continue
		}
		s.trackStages(e, r)
		rec, err := s.executionRecord(e, r)
		if err != nil {
			return err
		}
		s.change.Executions = append(s.change.Executions, rec)
	}
	for _, f := range forgotten {
		delete(s.st.Runs, f.ID)
	}
	return nil
}

// trackStages keeps the per-stage latest runs and the stages an execution succeeded in.
func (s *step) trackStages(e *engine.Execution, r *run) {
	for i, status := range e.StageStatus {
		if status == "" {
			continue
		}
		name := e.Plan[i].Name
		if l := s.st.Latest[name]; l != nil && l.Execution == e.ID {
			l.Status = status
		}
		if status == engine.Succeeded && !slices.Contains(r.Succeeded, name) {
			r.Succeeded = append(r.Succeeded, name)
		}
	}
}

// ExecutionDoc is what an execution's record holds: the execution as GetPipelineExecution and
// ListPipelineExecutions describe it, and the stages it succeeded in.
type ExecutionDoc struct {
	Execution model.PipelineExecution        `json:"execution"`
	Summary   model.PipelineExecutionSummary `json:"summary"`
	Succeeded []string                       `json:"succeededStages,omitempty"`
	// Source is what a rollback to this execution takes from it, kept once it succeeded in a
	// stage (standard executions only).
	Source *rollbackSource `json:"source,omitempty"`
}

// DecodeExecution reads an execution's record.
func DecodeExecution(rec store.Execution) (*ExecutionDoc, error) {
	var doc ExecutionDoc
	if err := json.Unmarshal(rec.Doc, &doc); err != nil {
		return nil, fmt.Errorf("decode execution %s: %w", rec.ID, err)
	}
	return &doc, nil
}

func (s *step) executionRecord(e *engine.Execution, r *run) (store.Execution, error) {
	status := model.PipelineExecutionStatus(e.Status)
	execType := model.ExecutionTypeStandard
	var rollback *model.PipelineRollbackMetadata
	if r.RollbackOf != "" {
		execType = model.ExecutionTypeRollback
		rollback = &model.PipelineRollbackMetadata{RollbackTargetPipelineExecutionId: new(r.RollbackOf)}
	}
	exec := model.PipelineExecution{
		PipelineName:        new(r.Pipeline),
		PipelineVersion:     new(r.Version),
		PipelineExecutionId: new(e.ID),
		Status:              new(status),
		ArtifactRevisions:   []model.ArtifactRevision{},
		Trigger:             &r.Trigger,
		ExecutionMode:       new(r.Mode),
		ExecutionType:       new(execType),
		RollbackMetadata:    rollback,
	}
	if r.Summary != "" {
		exec.StatusSummary = new(r.Summary)
	}
	for _, name := range slices.Sorted(maps.Keys(r.Variables)) {
		exec.Variables = append(exec.Variables, model.ResolvedPipelineVariable{Name: new(name), ResolvedValue: new(r.Variables[name])})
	}
	summary := model.PipelineExecutionSummary{
		PipelineExecutionId: new(e.ID),
		Status:              new(status),
		StartTime:           model.NewTimestamp(r.Started),
		LastUpdateTime:      model.NewTimestamp(s.now),
		SourceRevisions:     []model.SourceRevision{},
		Trigger:             &r.Trigger,
		StopTrigger:         r.StopTrigger,
		ExecutionMode:       new(r.Mode),
		ExecutionType:       new(execType),
		RollbackMetadata:    rollback,
	}
	exec.ArtifactRevisions = append(exec.ArtifactRevisions, r.Revisions...)
	for _, o := range r.SourceRevisions {
		summary.SourceRevisions = append(summary.SourceRevisions, model.SourceRevision{ActionName: o.ActionName, RevisionId: o.RevisionValue})
	}
	reported := map[string]bool{}
	for _, a := range r.Actions {
		if a.Revision != nil && len(e.Plan) > 0 && a.Stage == e.Plan[0].Name && !overridden(r, a.Name) {
			summary.SourceRevisions = append(summary.SourceRevisions, model.SourceRevision{ActionName: new(a.Name), RevisionId: a.Revision.RevisionId})
			reported[a.Name] = true
		}
	}
	// A source action that has not started yet runs the revision that started the execution.
	for _, name := range slices.Sorted(maps.Keys(r.StartedBy)) {
		if !reported[name] && !overridden(r, name) {
			summary.SourceRevisions = append(summary.SourceRevisions, model.SourceRevision{ActionName: new(name), RevisionId: r.StartedBy[name].RevisionId})
		}
	}
	var source *rollbackSource
	if r.RollbackOf == "" && len(r.Succeeded) > 0 {
		source = r.source(e.ID, e.Plan[0].Name)
	}
	doc, err := json.Marshal(ExecutionDoc{Execution: exec, Summary: summary, Succeeded: r.Succeeded, Source: source})
	if err != nil {
		return store.Execution{}, err
	}
	return store.Execution{
		ID: e.ID, Pipeline: r.Pipeline, Seq: r.Seq, Version: r.Version, Status: string(status),
		ClientToken: r.ClientToken, Doc: doc, Started: r.Started, Updated: s.now,
	}, nil
}

func overridden(r *run, action string) bool {
	return slices.ContainsFunc(r.SourceRevisions, func(o model.SourceRevisionOverride) bool { return *o.ActionName == action })
}
