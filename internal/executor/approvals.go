package executor

import (
	"context"
	"errors"
	"time"

	"github.com/sluicehq/sluice/internal/engine"
	"github.com/sluicehq/sluice/internal/model"
)

// Errors of PutApprovalResult.
var (
	ErrInvalidApprovalToken = errors.New("invalid approval token")
	ErrApprovalCompleted    = errors.New("approval already completed")
	ErrActionNotFound       = errors.New("action not found")
	ErrStageNotFound        = errors.New("stage not found")
)

// Approve answers a Manual approval and returns when the answer was recorded.
func (x *Executor) Approve(ctx context.Context, pipeline, stage, action, token string, approved bool, summary string) (time.Time, error) {
	var at time.Time
	err := x.apply(ctx, pipeline, func(s *step) error {
		// The stages executions have run, whatever version they ran: a stage an update renamed
		// still has the approvals its executions wait on.
		l := s.st.Latest[stage]
		if l == nil {
			return ErrStageNotFound
		}
		if l.Actions[action] == nil {
			return ErrActionNotFound
		}
		// The token names the approval: the stage's latest run or, under PARALLEL, an older
		// execution's approval of the same action.
		ar, execID := l.Actions[action], l.Execution
		for id, r := range s.st.Runs {
			for _, a := range r.Actions {
				if a.Stage == stage && a.Name == action && a.Token == token {
					ar, execID = a, id
				}
			}
		}
		if ar.Token == "" || ar.Token != token {
			return ErrInvalidApprovalToken
		}
		if ar.Status != engine.InProgress {
			return ErrApprovalCompleted
		}
		status, message := engine.Succeeded, "Approved"
		if !approved {
			status, message = engine.Failed, "Rejected"
		}
		if summary != "" {
			message += ": " + summary
		}
		out := &model.ActionExecutionOutput{
			OutputArtifacts: []model.ArtifactDetail{},
			ExecutionResult: &model.ActionExecutionResult{ExternalExecutionSummary: new(summary)},
		}
		if !approved {
			out.ExecutionResult.ErrorDetails = &model.ErrorDetails{Code: new("ApprovalRejected"), Message: new(message)}
		}
		at = s.now
		return s.conclude(execID, ar.ID, status, message, out)
	})
	return at, err
}
