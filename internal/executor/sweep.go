package executor

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/sluicehq/sluice/internal/engine"
)

// maxDispatches is how often a job is handed out without being acknowledged before its action
// fails: often enough to survive a lost answer to a poll, few enough to tell a missing worker.
const maxDispatches = 3

// Sweep does what the passing of time asks for: jobs handed out but not acknowledged within
// ackTimeout go back to the queue (their worker, or the answer to its poll, was lost) until they
// were handed out maxDispatches times, when their action fails; actions and approvals past their
// deadline fail.
func (x *Executor) Sweep(ctx context.Context, ackTimeout time.Duration) error {
	now := x.cfg.Now()
	// The server's own runners take every job of their types, so a job of theirs handed out
	// again and again is one that crashes of the server interrupted, not one nobody takes.
	requeued, exhausted, err := x.store.RequeueJobs(ctx, now.Add(-ackTimeout), maxDispatches, slices.Sorted(maps.Keys(x.cfg.LocalProviders)))
	if err != nil {
		return fmt.Errorf("requeue unacknowledged jobs: %w", err)
	}
	// The runners of every replica hear of the jobs back in the queue, as of those a step queued.
	x.committed(signals{queued: requeued})
	for _, j := range exhausted {
		message := fmt.Sprintf("The job was handed out %d times and never acknowledged within %s: no job worker took it", j.Dispatches, ackTimeout)
		if err := x.apply(ctx, j.Pipeline, func(s *step) error { return s.abandonUnacknowledged(j.ID, message) }); err != nil {
			return fmt.Errorf("fail unacknowledged job %s: %w", j.ID, err)
		}
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
	st, err := x.stored(ctx, pipeline)
	if err != nil {
		return false, err
	}
	for _, r := range st.Runs {
		for _, ar := range r.Actions {
			if ar.Status == engine.InProgress && !ar.Deadline.IsZero() && now.After(ar.Deadline) {
				return true, nil
			}
		}
		for _, rr := range r.Rules {
			if rr.Status == engine.InProgress && !rr.Deadline.IsZero() && now.After(rr.Deadline) {
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
			if err := s.conclude(execID, ar.ID, engine.Failed, message, nil); err != nil {
				return err
			}
		}
		for _, rr := range r.Rules {
			if rr.Status != engine.InProgress || rr.Deadline.IsZero() || !s.now.After(rr.Deadline) {
				continue
			}
			if rr.JobID != "" {
				if err := s.endJob(rr.JobID, jobFailed); err != nil {
					return err
				}
			}
			message := fmt.Sprintf("The rule timed out: it did not finish within %s", rr.Deadline.Sub(rr.Started).Round(time.Second))
			if err := s.concludeRule(execID, rr.ID, engine.Failed, message, nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// abandonUnacknowledged fails the action of a job no worker acknowledged, if it is still waiting.
func (s *step) abandonUnacknowledged(jobID, message string) error {
	j, err := s.cur.Job(jobID)
	if err != nil || j.Status != jobDispatched {
		return err
	}
	if execID, rr := s.findRuleRun(j.ActionExecutionID); rr != nil && rr.Status == engine.InProgress {
		if err := s.endJob(jobID, jobFailed); err != nil {
			return err
		}
		return s.concludeRule(execID, rr.ID, engine.Failed, message, nil)
	}
	execID, ar := s.findAction(j.ActionExecutionID)
	if ar == nil || ar.Status != engine.InProgress {
		return s.endJob(jobID, jobFailed)
	}
	if err := s.endJob(jobID, jobFailed); err != nil {
		return err
	}
	return s.conclude(execID, ar.ID, engine.Failed, message, nil)
}
