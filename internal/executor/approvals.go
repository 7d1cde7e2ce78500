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
)

// Approve answers a Manual approval and returns when the answer was recorded.
func (x *Executor) Approve(ctx context.Context, pipeline, stage, action, token string, approved bool, summary string) (time.Time, error) {
	var at time.Time
	err := x.apply(ctx, pipeline, func(s *step) error {
		l := s.st.Latest[stage]
		if l == nil || l.Actions[action] == nil {
			return ErrActionNotFound
		}
		ar := l.Actions[action]
		if _, live := s.findAction(ar.ID); live != nil {
			ar = live
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
		s.finishAction(l.Execution, ar.ID, status, message, out)
		s.touched[l.Execution] = true
		at = s.now
		effects, err := s.st.Engine.ActionFinished(l.Execution, ar.ID, approved, message, newID)
		if err != nil {
			return err
		}
		return s.handle(effects)
	})
	return at, err
}
