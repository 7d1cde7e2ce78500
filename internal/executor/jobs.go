package executor

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/sluicehq/sluice/internal/engine"
	"github.com/sluicehq/sluice/internal/model"
	"github.com/sluicehq/sluice/internal/store"
)

// Job statuses, as the job protocol names them where it names them at all.
const (
	jobQueued     = "Queued"
	jobDispatched = "Dispatched"
	jobInProgress = "InProgress"
	jobSucceeded  = "Succeeded"
	jobFailed     = "Failed"
	jobAbandoned  = "Abandoned"
)

// Errors of the job protocol.
var (
	ErrJobNotFound     = errors.New("job not found")
	ErrInvalidNonce    = errors.New("invalid nonce")
	ErrInvalidJobState = errors.New("job is not in progress")
)

// Poll hands out up to max jobs of an action type, matching query (QueryValue) if not empty.
func (x *Executor) Poll(ctx context.Context, typeKey, query string, batch int) ([]store.Job, error) {
	return x.store.DispatchJobs(ctx, typeKey, query, batch, newID)
}

// Job returns a job.
func (x *Executor) Job(ctx context.Context, id string) (store.Job, error) {
	j, err := x.store.GetJob(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return j, ErrJobNotFound
	}
	return j, err
}

// Acknowledge confirms that a worker took a job it polled.
func (x *Executor) Acknowledge(ctx context.Context, id, nonce string) (string, error) {
	j, err := x.Job(ctx, id)
	if err != nil {
		return "", err
	}
	if j.Nonce != nonce {
		return "", ErrInvalidNonce
	}
	switch j.Status {
	case jobInProgress:
		return jobInProgress, nil
	case jobDispatched:
		err := x.store.SetJobStatus(ctx, id, jobDispatched, jobInProgress, x.cfg.Now())
		if errors.Is(err, store.ErrConflict) {
			return x.Acknowledge(ctx, id, nonce)
		}
		return jobInProgress, err
	}
	return "", ErrInvalidJobState
}

// Result is what a worker reports for a job.
type Result struct {
	Succeeded         bool
	Summary           string
	ExternalID        string
	Percent           *int
	ContinuationToken string
	OutputVariables   map[string]string
	Revision          *model.CurrentRevision
	FailureType       string
	// Targets are the deploy targets a deploy action reports (ListDeployActionExecutionTargets).
	Targets []model.DeployActionExecutionTarget
}

// Finish records a job's result: the action it ran succeeds or fails, or, with a continuation
// token, the job goes back to the queue to be continued.
func (x *Executor) Finish(ctx context.Context, jobID string, res Result) error {
	j, err := x.Job(ctx, jobID)
	if err != nil {
		return err
	}
	return x.apply(ctx, j.Pipeline, func(s *step) error {
		// The job is read again under the pipeline's lock: a concurrent result or stop may have
		// finished it since.
		cur, err := s.cur.Job(jobID)
		if err != nil {
			return err
		}
		if cur.Status != jobInProgress && cur.Status != jobDispatched {
			return ErrInvalidJobState
		}
		if _, rr := s.findRuleRun(cur.ActionExecutionID); rr != nil {
			return s.finishRuleJob(cur, rr, res)
		}
		_, ar := s.findAction(cur.ActionExecutionID)
		if ar == nil || ar.Status != engine.InProgress || s.st.Runs[cur.ExecutionID] == nil {
			return ErrInvalidJobState
		}
		ar.Percent, ar.ExternalID, ar.Changed = res.Percent, res.ExternalID, s.now
		s.touched[cur.ExecutionID] = true
		if res.Summary != "" {
			ar.Summary = res.Summary
		}
		s.mirror(cur.ExecutionID, ar)
		if res.ContinuationToken != "" && res.Succeeded {
			var data model.JobData
			if err := json.Unmarshal(cur.Data, &data); err != nil {
				return err
			}
			data.ContinuationToken = new(res.ContinuationToken)
			raw, err := json.Marshal(data)
			if err != nil {
				return err
			}
			cur.Data, cur.Status, cur.Nonce, cur.Updated = raw, jobQueued, "", s.now
			s.change.Jobs = append(s.change.Jobs, cur)
			return nil
		}
		cur.Status, cur.Updated = jobFailed, s.now
		status := engine.Failed
		if res.Succeeded {
			cur.Status, status = jobSucceeded, engine.Succeeded
		}
		s.change.Jobs = append(s.change.Jobs, cur)
		produced := []model.ArtifactDetail{}
		if res.Succeeded {
			if produced, err = s.recordArtifacts(cur.ExecutionID, cur, res.Revision); err != nil {
				return err
			}
		}
		out := &model.ActionExecutionOutput{
			OutputArtifacts: produced,
			ExecutionResult: &model.ActionExecutionResult{},
			OutputVariables: res.OutputVariables,
		}
		if out.OutputVariables == nil {
			out.OutputVariables = map[string]string{} // an action without variables shows {}, as in AWS
		}
		if res.ExternalID != "" {
			out.ExecutionResult.ExternalExecutionId = new(res.ExternalID)
		}
		if ar.ExternalURL != "" {
			out.ExecutionResult.ExternalExecutionUrl = new(ar.ExternalURL)
		}
		if res.Summary != "" {
			out.ExecutionResult.ExternalExecutionSummary = new(res.Summary)
		}
		if !res.Succeeded {
			out.ExecutionResult.ErrorDetails = &model.ErrorDetails{Code: new(res.FailureType), Message: new(res.Summary)}
		}
		if res.Succeeded && res.Revision != nil {
			if err := s.recordRevision(cur.ExecutionID, cur.ActionExecutionID, res.Revision); err != nil {
				return err
			}
		}
		if len(res.Targets) > 0 {
			raw, err := json.Marshal(res.Targets)
			if err != nil {
				return err
			}
			s.targets = map[string][]byte{cur.ActionExecutionID: raw}
		}
		if res.Succeeded && len(res.OutputVariables) > 0 {
			s.recordOutputs(cur.ExecutionID, cur.ActionExecutionID, res.OutputVariables)
		}
		return s.conclude(cur.ExecutionID, cur.ActionExecutionID, status, res.Summary, out)
	})
}

// finishRuleJob records the result of a rule's job: the rule succeeds or fails.
func (s *step) finishRuleJob(j store.Job, rr *ruleRun, res Result) error {
	if rr.Status != engine.InProgress || s.st.Runs[j.ExecutionID] == nil {
		return ErrInvalidJobState
	}
	j.Status, j.Updated = jobFailed, s.now
	status := engine.Failed
	if res.Succeeded {
		j.Status, status = jobSucceeded, engine.Succeeded
	}
	s.change.Jobs = append(s.change.Jobs, j)
	rr.ExternalID = res.ExternalID
	result := &model.RuleExecutionResult{}
	if res.ExternalID != "" {
		result.ExternalExecutionId = new(res.ExternalID)
	}
	return s.concludeRule(j.ExecutionID, rr.ID, status, res.Summary, result)
}

// recordOutputs makes an action's output variables available under its namespace.
func (s *step) recordOutputs(execID, actionID string, vars map[string]string) {
	r := s.st.Runs[execID]
	e := s.st.Engine.Find(execID)
	if r == nil || e == nil {
		return
	}
	_, ar := s.findAction(actionID)
	if ar == nil {
		return
	}
	stage, name := ar.Stage, ar.Name
	decl, err := s.declarationOf(r)
	if err != nil {
		return
	}
	for _, st := range decl.Stages {
		for _, a := range st.Actions {
			if *st.Name == stage && *a.Name == name && a.Namespace != nil {
				if r.Outputs == nil {
					r.Outputs = map[string]map[string]string{}
				}
				r.Outputs[*a.Namespace] = vars
			}
		}
	}
}

// endJob gives a job a final status, so that a worker's late result is refused.
func (s *step) endJob(jobID, status string) error {
	j, err := s.cur.Job(jobID)
	if err != nil {
		return err
	}
	j.Status, j.Updated = status, s.now
	s.change.Jobs = append(s.change.Jobs, j)
	return nil
}

// recordRevision keeps the revision an action reported: as the action's current revision and as
// the revision of each artifact it produced.
func (s *step) recordRevision(execID, actionID string, rev *model.CurrentRevision) error {
	r := s.st.Runs[execID]
	_, ar := s.findAction(actionID)
	if r == nil || ar == nil {
		return nil
	}
	created := rev.Created
	if created == nil {
		created = model.NewTimestamp(s.now)
	}
	ar.Revision = &model.ActionRevision{RevisionId: rev.Revision, RevisionChangeId: rev.ChangeIdentifier, Created: created}
	decl, err := s.declarationOf(r)
	if err != nil {
		return err
	}
	for _, st := range decl.Stages {
		for _, a := range st.Actions {
			if *st.Name != ar.Stage || *a.Name != ar.Name {
				continue
			}
			for _, out := range a.OutputArtifacts {
				r.Revisions = append(r.Revisions, model.ArtifactRevision{Name: out.Name, RevisionId: rev.Revision,
					RevisionChangeIdentifier: rev.ChangeIdentifier, RevisionSummary: rev.RevisionSummary, Created: created})
			}
		}
	}
	return nil
}
