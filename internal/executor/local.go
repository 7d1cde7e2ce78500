package executor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sluicehq/sluice/internal/model"
	"github.com/sluicehq/sluice/internal/store"
)

// LocalRun is what a built-in runner needs to know of a job beyond its job data.
type LocalRun struct {
	// Action is the action's declaration, for what job data does not carry (commands, output
	// variables, the files of output artifacts); nil for a rule's run.
	Action *model.ActionDeclaration
	// Rule is the rule's declaration when the job is the run of a stage condition's rule (its
	// type key has category "Rule"); nil for an action's run.
	Rule *model.RuleDeclaration
	// Pins are the revisions the execution pins a source action to: those of the sourceRevisions
	// it was started with (an S3 source may have a key and a version), or else the revision that
	// started it (PutActionRevision, a push, an upload), without a type: the source's own kind.
	Pins []model.SourceRevisionOverride
	// Deadline is when the action times out.
	Deadline time.Time
	// Variables are the execution's pipeline-level variables.
	Variables map[string]string
}

// LocalRun reads what a built-in runner needs to know of a job.
func (x *Executor) LocalRun(ctx context.Context, j store.Job) (LocalRun, error) {
	st, err := x.stored(ctx, j.Pipeline)
	if err != nil {
		return LocalRun{}, err
	}
	r := st.Runs[j.ExecutionID]
	if r == nil {
		return LocalRun{}, ErrJobNotFound
	}
	if rr := r.Rules[j.ActionExecutionID]; rr != nil {
		return x.localRule(ctx, r, rr)
	}
	if r.Actions[j.ActionExecutionID] == nil {
		return LocalRun{}, ErrJobNotFound
	}
	ar := r.Actions[j.ActionExecutionID]
	decl, err := x.declaration(ctx, r.Pipeline, r.Version, r.Generation)
	if err != nil {
		return LocalRun{}, err
	}
	out := LocalRun{Deadline: ar.Deadline, Variables: r.Variables}
	for _, stage := range decl.Stages {
		for i, a := range stage.Actions {
			if *stage.Name == ar.Stage && *a.Name == ar.Name {
				out.Action = &stage.Actions[i]
			}
		}
	}
	for _, o := range r.SourceRevisions {
		if *o.ActionName == ar.Name {
			out.Pins = append(out.Pins, o)
		}
	}
	if len(out.Pins) == 0 && ar.Revision != nil && ar.Revision.RevisionId != nil {
		out.Pins = []model.SourceRevisionOverride{{ActionName: new(ar.Name), RevisionValue: ar.Revision.RevisionId}}
	}
	if out.Action == nil {
		return LocalRun{}, ErrJobNotFound
	}
	return out, nil
}

// Heartbeat tells the sweeper that a built-in runner is still at a job, and reports whether the
// job still runs: false once it was stopped, abandoned, timed out or deleted.
func (x *Executor) Heartbeat(ctx context.Context, jobID string) (bool, error) {
	return x.store.TouchJob(ctx, jobID, x.cfg.Now())
}

// Release puts a built-in job that a runner took but will not finish back in the queue at once,
// for a runner on any replica to take up: a server that stops gracefully hands back the runs it
// stops rather than leave them until the sweeper finds them unattended. A job that ended
// meanwhile stays as it is.
func (x *Executor) Release(ctx context.Context, job store.Job) error {
	err := x.store.SetJobStatus(ctx, job.ID, jobDispatched, jobQueued, x.cfg.Now())
	if errors.Is(err, store.ErrConflict) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("release job %s: %w", job.ID, err)
	}
	x.committed(signals{queued: []string{job.TypeKey}})
	return nil
}

// localRule is what a built-in runner needs to know of a rule's job.
func (x *Executor) localRule(ctx context.Context, r *run, rr *ruleRun) (LocalRun, error) {
	decl, err := x.declaration(ctx, r.Pipeline, r.Version, r.Generation)
	if err != nil {
		return LocalRun{}, err
	}
	for i := range decl.Stages {
		if *decl.Stages[i].Name == rr.Stage {
			if rd := findRule(&decl.Stages[i], rr.Kind, rr.Name); rd != nil {
				return LocalRun{Rule: rd, Deadline: rr.Deadline, Variables: r.Variables}, nil
			}
		}
	}
	return LocalRun{}, ErrJobNotFound
}
