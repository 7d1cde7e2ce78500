package executor

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/sluicehq/sluice/internal/engine"
)

// Sweep does what the passing of time asks for: jobs handed out but not acknowledged within
// ackTimeout go back to the queue (their worker, or the answer to its poll, was lost), and
// actions and approvals past their deadline fail.
func (x *Executor) Sweep(ctx context.Context, ackTimeout time.Duration) error {
	now := x.cfg.Now()
	if _, err := x.store.RequeueJobs(ctx, now.Add(-ackTimeout)); err != nil {
		return fmt.Errorf("requeue unacknowledged jobs: %w", err)
	}
	names, err := x.store.ActivePipelines(ctx)
	if err != nil {
		return fmt.Errorf("list active pipelines: %w", err)
	}
	for _, name := range names {
		expired, err := x.hasExpired(ctx, name, now)
		if err != nil {
			return err
		}
		if !expired {
			continue
		}
		if err := x.apply(ctx, name, (*step).expire); err != nil {
			return fmt.Errorf("expire actions of %s: %w", name, err)
		}
	}
	return nil
}

// hasExpired reads a pipeline's state to see whether any of its actions is past its deadline,
// so that sweeping a busy installation writes only where there is something to do.
func (x *Executor) hasExpired(ctx context.Context, pipeline string, now time.Time) (bool, error) {
	raw, err := x.store.State(ctx, pipeline)
	if err != nil || raw == nil {
		return false, err
	}
	var st state
	if err := json.Unmarshal(raw, &st); err != nil {
		return false, fmt.Errorf("decode execution state of %s: %w", pipeline, err)
	}
	for _, r := range st.Runs {
		for _, ar := range r.Actions {
			if ar.Status == engine.InProgress && !ar.Deadline.IsZero() && now.After(ar.Deadline) {
				return true, nil
			}
		}
	}
	return false, nil
}

// expire fails the actions past their deadline.
func (s *step) expire() error {
	for execID, r := range s.st.Runs {
		for _, ar := range r.Actions {
			if ar.Status != engine.InProgress || ar.Deadline.IsZero() || !s.now.After(ar.Deadline) {
				continue
			}
			message := fmt.Sprintf("The action timed out: it did not finish within %s", ar.Deadline.Sub(ar.Started).Round(time.Second))
			if ar.Token != "" {
				message = fmt.Sprintf("The approval timed out: nobody answered it within %s", ar.Deadline.Sub(ar.Started).Round(time.Second))
			}
			if ar.JobID != "" {
				if err := s.endJob(ar.JobID, jobFailed); err != nil {
					return err
				}
			}
			s.finishAction(execID, ar.ID, engine.Failed, message, nil)
			s.touched[execID] = true
			effects, err := s.st.Engine.ActionFinished(execID, ar.ID, false, message, newID)
			if err != nil {
				return err
			}
			if err := s.handle(effects); err != nil {
				return err
			}
		}
	}
	return nil
}
