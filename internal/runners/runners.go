// Package runners holds the providers Sluice runs itself. Their action runs are jobs like those of
// custom actions, polled from the same queue by runners inside the server, so a crash loses none:
// a job a runner took is never acknowledged, and the sweeper hands it out again if the runner
// does not finish it.
package runners

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/sluicehq/sluice/internal/artifacts"
	"github.com/sluicehq/sluice/internal/executor"
	"github.com/sluicehq/sluice/internal/model"
	"github.com/sluicehq/sluice/internal/store"
)

// provider runs the jobs of one action type.
type provider interface {
	run(ctx context.Context, job *model.JobData) executor.Result
}

// providers are the action types Sluice runs itself, by executor.TypeKey.
func providers(arts artifacts.Store) map[string]provider {
	return map[string]provider{
		executor.TypeKey("Source", "AWS", "S3", "1"): s3Source{arts: arts},
	}
}

// Providers lists the action types Sluice runs itself, by executor.TypeKey.
func Providers() map[string]bool {
	out := map[string]bool{}
	for key := range providers(nil) {
		out[key] = true
	}
	return out
}

// Runners run the jobs of the built-in providers.
type Runners struct {
	exec      *executor.Executor
	providers map[string]provider
	logger    *slog.Logger
	// slots bounds how many jobs run at once.
	slots chan struct{}
	wg    sync.WaitGroup
}

// New returns runners that take jobs from exec and keep artifacts in arts.
func New(exec *executor.Executor, arts artifacts.Store, logger *slog.Logger) *Runners {
	return &Runners{exec: exec, providers: providers(arts), logger: logger, slots: make(chan struct{}, 8)}
}

// pollInterval is how often runners look for jobs when no new job woke them.
const pollInterval = time.Second

// Run takes and runs jobs until ctx ends, then waits for those running.
func (r *Runners) Run(ctx context.Context) {
	defer r.wg.Wait()
	ticker := time.NewTicker(pollInterval)
	defer ticker.Stop()
	for {
		r.dispatch(ctx)
		select {
		case <-ctx.Done():
			return
		case <-r.exec.JobsQueued():
		case <-ticker.C:
		}
	}
}

// dispatch starts every job that waits for a free slot.
func (r *Runners) dispatch(ctx context.Context) {
	for key, p := range r.providers {
		for {
			select {
			case r.slots <- struct{}{}:
			case <-ctx.Done():
				return
			}
			jobs, err := r.exec.Poll(ctx, key, "", 1)
			if err != nil || len(jobs) == 0 {
				<-r.slots
				if err != nil && ctx.Err() == nil {
					r.logger.Error("poll built-in jobs", "type", key, "err", err)
				}
				break
			}
			r.wg.Add(1)
			go func(j store.Job) {
				defer r.wg.Done()
				defer func() { <-r.slots }()
				r.runJob(ctx, p, j)
			}(jobs[0])
		}
	}
}

func (r *Runners) runJob(ctx context.Context, p provider, j store.Job) {
	data, err := r.exec.JobData(j)
	if err != nil {
		r.logger.Error("read built-in job", "job", j.ID, "err", err)
		return
	}
	res := p.run(ctx, data)
	if ctx.Err() != nil {
		return // the server is stopping; the sweeper hands the job out again after a restart
	}
	if err := r.exec.Finish(ctx, j.ID, res); err != nil {
		r.logger.Warn("report built-in job", "job", j.ID, "err", err)
	}
}

// failed is the result of a job that failed for reason.
func failed(reason string) executor.Result {
	return executor.Result{Summary: reason, FailureType: string(model.FailureTypeJobFailed)}
}
