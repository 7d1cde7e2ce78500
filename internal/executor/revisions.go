package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/sluicehq/sluice/internal/model"
	"github.com/sluicehq/sluice/internal/store"
)

// keptRevisions bounds how many recorded revisions per source action are remembered for telling
// new revisions from old.
const keptRevisions = 100

// PutRevision records a revision of a source action, as PutActionRevision does: a revision that
// is neither the action's current one nor one recorded before becomes the action's current revision and starts an execution of the pipeline's
// latest version. It returns whether the revision was new and the execution that runs it.
func (x *Executor) PutRevision(ctx context.Context, pipeline string, version int, generation, stage, action string, rev model.ActionRevision, trigger model.ExecutionTrigger) (bool, string, error) {
	decl, err := x.declaration(ctx, pipeline, version, generation)
	if err != nil {
		return false, "", err
	}
	vars, err := pipelineVariables(decl, nil)
	if err != nil {
		return false, "", err
	}
	key := stage + "/" + action
	var isNew bool
	var execID string
	err = x.apply(ctx, pipeline, func(s *step) error {
		isNew, execID = false, ""
		if l := s.st.Latest[stage]; l != nil {
			if ar := l.Actions[action]; ar != nil && ar.Revision != nil && ar.Revision.RevisionId != nil && *ar.Revision.RevisionId == *rev.RevisionId {
				execID = l.Execution
				return nil
			}
		}
		for _, seen := range s.st.Revisions[key] {
			if *seen.Revision.RevisionId == *rev.RevisionId {
				execID = seen.Execution
				return nil
			}
		}
		isNew, execID = true, newID()
		if s.st.Revisions == nil {
			s.st.Revisions = map[string][]putRevision{}
		}
		kept := append(s.st.Revisions[key], putRevision{Revision: rev, Execution: execID})
		s.st.Revisions[key] = kept[max(0, len(kept)-keptRevisions):]
		return s.start(execID, Start{Pipeline: pipeline, Version: version, Generation: generation, Trigger: trigger,
			Revisions: map[string]model.ActionRevision{action: rev}}, decl, vars)
	})
	return isNew, execID, err
}

// SourceAction is a source action of the latest version of a pipeline.
type SourceAction struct {
	Pipeline   string
	Version    int
	Generation string
	Stage      string
	Action     *model.ActionDeclaration
	// Declaration is the pipeline's, for its triggers.
	Declaration *model.PipelineDeclaration
}

// SourceActions lists the source actions of every pipeline's latest version.
func (x *Executor) SourceActions(ctx context.Context) ([]SourceAction, error) {
	var out []SourceAction
	page := store.Page{Limit: 1000}
	for {
		pipelines, err := x.store.ListPipelines(ctx, page)
		if err != nil {
			return nil, fmt.Errorf("list pipelines: %w", err)
		}
		for _, p := range pipelines {
			decl, err := x.declaration(ctx, p.Name, p.Version, p.Generation)
			if errors.Is(err, store.ErrNotFound) {
				continue // deleted since it was listed
			}
			if err != nil {
				return nil, err
			}
			for _, st := range decl.Stages {
				for i, a := range st.Actions {
					if *a.ActionTypeId.Category == model.ActionCategorySource {
						out = append(out, SourceAction{Pipeline: p.Name, Version: p.Version, Generation: p.Generation, Stage: *st.Name, Action: &st.Actions[i], Declaration: decl})
					}
				}
			}
		}
		if len(pipelines) < page.Limit {
			return out, nil
		}
		page.After = pipelines[len(pipelines)-1].Name
	}
}

// CurrentRevision is the revision a source action last ran with or was last given, "" if none.
func (x *Executor) CurrentRevision(ctx context.Context, pipeline, stage, action string) (string, error) {
	stored, err := x.store.State(ctx, pipeline)
	if err != nil || stored.Pipeline == nil {
		return "", err
	}
	// What it needs is in the pipeline's own document.
	var st state
	if err := json.Unmarshal(stored.Pipeline, &st); err != nil {
		return "", fmt.Errorf("decode the execution state of %s: %w", pipeline, err)
	}
	if l := st.Latest[stage]; l != nil {
		if ar := l.Actions[action]; ar != nil && ar.Revision != nil && ar.Revision.RevisionId != nil {
			return *ar.Revision.RevisionId, nil
		}
	}
	if seen := st.Revisions[stage+"/"+action]; len(seen) > 0 {
		return *seen[len(seen)-1].Revision.RevisionId, nil
	}
	return "", nil
}
