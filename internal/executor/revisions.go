package executor

import (
	"context"

	"github.com/sluicehq/sluice/internal/model"
)

// keptRevisions bounds how many recorded revisions per source action are remembered for telling
// new revisions from old.
const keptRevisions = 100

// PutRevision records a revision of a source action, as PutActionRevision does: a revision that
// is neither the action's current one nor one recorded before becomes the action's current revision and starts an execution of the pipeline's
// latest version. It returns whether the revision was new and the execution that runs it.
func (x *Executor) PutRevision(ctx context.Context, pipeline string, version int, stage, action string, rev model.ActionRevision, trigger model.ExecutionTrigger) (bool, string, error) {
	decl, err := x.declaration(ctx, pipeline, version)
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
		if err := s.start(execID, Start{Pipeline: pipeline, Version: version, Trigger: trigger}, decl, vars); err != nil {
			return err
		}
		for _, ar := range s.st.Runs[execID].Actions {
			if ar.Stage == stage && ar.Name == action {
				ar.Revision = &rev
				s.mirror(execID, ar)
			}
		}
		return nil
	})
	return isNew, execID, err
}
