// Package runners holds the providers Sluice runs itself: S3 and Git sources, CodeBuild
// buildspecs, Commands and the S3 deploy, and the rules of stage conditions (VariableCheck,
// DeploymentWindow, Commands, CodeBuild, CloudWatchAlarm, LambdaInvoke). Their action and rule
// runs are jobs like those of custom actions, polled from the same queue by runners inside the server, so a crash loses none: a
// runner never acknowledges its job but keeps it alive with heartbeats, and the sweeper hands it
// out again once the heartbeats stop. Each run writes a log that the server serves.
package runners

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/sluicehq/sluice/internal/archive"
	"github.com/sluicehq/sluice/internal/artifacts"
	"github.com/sluicehq/sluice/internal/executor"
	"github.com/sluicehq/sluice/internal/gitrepo"
	"github.com/sluicehq/sluice/internal/logs"
	"github.com/sluicehq/sluice/internal/model"
	"github.com/sluicehq/sluice/internal/notify"
	"github.com/sluicehq/sluice/internal/store"
)

// Config configures the runners.
type Config struct {
	Executor  *executor.Executor
	Artifacts artifacts.Store
	Logs      *logs.Store
	// Git resolves the repositories of Git sources.
	Git *gitrepo.Remotes
	// WorkDir holds a fresh directory for each run attempt.
	WorkDir string
	// Isolation is how builds run: IsolationSandbox (the default) or IsolationNone.
	Isolation string
	// ArtifactLimits bound the input artifacts runs extract and the output artifacts builds
	// collect; zero means archive.DefaultLimits.
	ArtifactLimits archive.Limits
	// BuildTimeout bounds a CodeBuild or Commands run that its project does not bound.
	BuildTimeout time.Duration
	// BuildProjects is a directory of CodeBuild project definitions, <ProjectName>.json.
	BuildProjects string
	// Heartbeat is how often a runner tells the sweeper it is still at its job; it must be
	// well under the job acknowledgement timeout.
	Heartbeat time.Duration
	// PublicURL is where clients reach the server, for messages that tell them where to push.
	PublicURL string
	// Slots bounds how many runs go at once.
	Slots     int
	AccountID string
	// Region is the server's region: the one rules that call AWS services use when their
	// declaration names none.
	Region string
	// CloudWatchEndpoint is where CloudWatchAlarm rules read alarms: "aws" for Amazon CloudWatch
	// itself, or the URL of a CloudWatch-compatible service; empty, those rules fail and say so.
	CloudWatchEndpoint string
	// LambdaEndpoint is where LambdaInvoke rules invoke functions: "aws" for AWS Lambda itself,
	// or the URL of a Lambda-compatible service; empty, those rules fail and say so.
	LambdaEndpoint string
	// Now is the clock DeploymentWindow rules and deploy targets read; time.Now by default.
	Now    func() time.Time
	Logger *slog.Logger
}

// provider runs the jobs of one action type.
type provider interface {
	run(ctx context.Context, j *job) executor.Result
}

// job is one run of a built-in provider.
type job struct {
	// id is the job's id, which a LambdaInvoke rule passes on to its function.
	id   string
	data *model.JobData
	run  executor.LocalRun
	// dir is a fresh directory for the run attempt, removed afterwards. A build sees work, a
	// directory in it, and nothing else of it.
	dir, work string
	log       io.Writer
}

// logf writes a line to the run's log, stamped as CodeBuild stamps its own.
func (j *job) logf(format string, args ...any) {
	fmt.Fprintf(j.log, "[Sluice] %s %s\n", time.Now().UTC().Format("2006/01/02 15:04:05.000"), fmt.Sprintf(format, args...))
	// Sluice's own lines say how the run goes: a log that keeps what it is given for a while
	// (PostgreSQL's) writes them out at once, so that a crash right after does not lose them.
	if f, ok := j.log.(interface{ Flush() error }); ok {
		_ = f.Flush()
	}
}

// registration is a provider Sluice runs itself: the action or rule type it serves (the
// catalog describes the type) and how to make its runner. One entry per kind.
type registration struct {
	category, owner, provider string
	make                      func(cfg *Config, build *builder) provider
}

func (r registration) key() string { return executor.TypeKey(r.category, r.owner, r.provider, "1") }

// registry lists the built-in providers: the actions, then the rules of stage conditions (each
// rule in a file rule_<provider>.go).
var registry = []registration{
	{"Source", "AWS", "S3", func(cfg *Config, _ *builder) provider { return s3Source{arts: cfg.Artifacts} }},
	{"Source", "AWS", "CodeCommit", newGitSource},
	{"Source", "AWS", "CodeStarSourceConnection", newGitSource},
	{"Source", "ThirdParty", "GitHub", newGitSource},
	{"Build", "AWS", "CodeBuild", func(_ *Config, b *builder) provider { return codeBuild{b} }},
	{"Test", "AWS", "CodeBuild", func(_ *Config, b *builder) provider { return codeBuild{b} }},
	{"Compute", "AWS", "Commands", func(_ *Config, b *builder) provider { return commands{b} }},
	{"Deploy", "AWS", "S3", func(cfg *Config, _ *builder) provider {
		return s3Deploy{arts: cfg.Artifacts, limits: cfg.ArtifactLimits, now: cfg.Now}
	}},

	{"Rule", "AWS", "VariableCheck", func(*Config, *builder) provider { return variableCheck{} }},
	{"Rule", "AWS", "DeploymentWindow", func(cfg *Config, _ *builder) provider { return newDeploymentWindow(cfg.Now) }},
	{"Rule", "AWS", "Commands", func(_ *Config, b *builder) provider { return commandsRule{b} }},
	{"Rule", "AWS", "CodeBuild", func(_ *Config, b *builder) provider { return codeBuildRule{codeBuild{b}} }},
	{"Rule", "AWS", "CloudWatchAlarm", func(cfg *Config, _ *builder) provider {
		return newCloudWatchAlarm(newServiceEndpoint(cloudWatchService, cfg.CloudWatchEndpoint, cfg.Region))
	}},
	{"Rule", "AWS", "LambdaInvoke", func(cfg *Config, _ *builder) provider {
		return newLambdaInvoke(newServiceEndpoint(lambdaService, cfg.LambdaEndpoint, cfg.Region), cfg.AccountID)
	}},
}

func newGitSource(cfg *Config, _ *builder) provider {
	return gitSource{arts: cfg.Artifacts, remotes: cfg.Git, publicURL: cfg.PublicURL}
}

// Providers lists the action and rule types Sluice runs itself, by executor.TypeKey.
func Providers() map[string]bool {
	out := map[string]bool{}
	for _, reg := range registry {
		out[reg.key()] = true
	}
	return out
}

// Runners run the jobs of the built-in providers.
type Runners struct {
	cfg       Config
	exec      *executor.Executor
	providers map[string]provider
	logger    *slog.Logger
	work      *workArea
	// slots bounds how many jobs run at once.
	slots chan struct{}
	wg    sync.WaitGroup
	// running holds the cancel function of each job being run, by job id.
	mu      sync.Mutex
	running map[string]context.CancelCauseFunc
}

// New returns runners configured by cfg. It removes what runs of servers no longer running left
// in the work directory, and checks that builds can be isolated as cfg asks.
func New(ctx context.Context, cfg Config) (*Runners, error) {
	if cfg.Slots <= 0 {
		cfg.Slots = 8
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = 10 * time.Second
	}
	if cfg.BuildTimeout <= 0 {
		cfg.BuildTimeout = time.Hour
	}
	if cfg.Isolation == "" {
		cfg.Isolation = IsolationSandbox
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	for _, e := range []struct{ flag, value string }{{cloudWatchService.flag, cfg.CloudWatchEndpoint}, {lambdaService.flag, cfg.LambdaEndpoint}} {
		if err := checkEndpoint(e.value); err != nil {
			return nil, fmt.Errorf("%s %q: %w", e.flag, e.value, err)
		}
	}
	if cfg.ArtifactLimits == (archive.Limits{}) {
		cfg.ArtifactLimits = archive.DefaultLimits
	}
	if cfg.ArtifactLimits.Bytes <= 0 || cfg.ArtifactLimits.Files <= 0 {
		return nil, fmt.Errorf("the artifact limits must be positive: --max-artifact-bytes %d, --max-artifact-files %d", cfg.ArtifactLimits.Bytes, cfg.ArtifactLimits.Files)
	}
	work, err := openWorkArea(cfg.WorkDir, cfg.Logger)
	if err != nil {
		return nil, err
	}
	sb, err := newSandbox(ctx, cfg.Isolation, work.dir)
	if err != nil {
		work.close()
		return nil, err
	}
	if sb.bwrap == "" {
		cfg.Logger.Warn("builds are not isolated (--build-isolation none): a build runs as the server's user, sees all it sees (its files, its processes and their environment), and its background processes may outlive the server")
	}
	r := &Runners{cfg: cfg, exec: cfg.Executor, logger: cfg.Logger, work: work, slots: make(chan struct{}, cfg.Slots), running: map[string]context.CancelCauseFunc{}}
	build := &builder{cfg: &r.cfg, sandbox: sb}
	r.providers = map[string]provider{}
	for _, reg := range registry {
		r.providers[reg.key()] = reg.make(&r.cfg, build)
	}
	return r, nil
}

// releaseTimeout bounds how long a stopping server may take to hand back one job.
const releaseTimeout = 5 * time.Second

// pollInterval is how often runners look for jobs of every type when no notification woke them:
// a safety net for a notification that was lost, since every queued job is notified.
const pollInterval = 30 * time.Second

// Run takes and runs jobs until ctx ends, then waits for those running and removes the work
// directory.
func (r *Runners) Run(ctx context.Context) {
	defer func() {
		r.wg.Wait()
		if err := r.work.close(); err != nil {
			r.logger.Warn("remove the work directory", "err", err)
		}
	}()
	ticker := time.NewTicker(pollInterval)
	defer ticker.Stop()
	queued, stopQueued := r.exec.ListenJobs()
	defer stopQueued()
	ended, stopEnded := r.exec.ListenEnded()
	defer stopEnded()
	// pending are the types that may have jobs queued: those a step on any replica queued, and
	// every type when a notification may have been missed and at each tick.
	pending := map[string]bool{}
	all := func() {
		for key := range r.providers {
			pending[key] = true
		}
	}
	all()
	for {
		r.dispatch(ctx, pending)
		select {
		case <-ctx.Done():
			return
		case <-ended:
			r.stopEnded(ctx)
		case key := <-queued:
			switch {
			case key == notify.Resync:
				all()
			case r.providers[key] != nil:
				pending[key] = true
			}
		case <-ticker.C:
			all()
		}
	}
}

// dispatch starts the jobs of the pending types while there are free slots; a type stays
// pending until a poll finds none of its jobs.
func (r *Runners) dispatch(ctx context.Context, pending map[string]bool) {
	for key := range pending {
		p := r.providers[key]
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
				if err == nil {
					delete(pending, key)
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

// errJobEnded stops a run whose job ended without it: the action was stopped and abandoned,
// timed out, or its pipeline deleted.
var errJobEnded = errors.New("the job ended")

func (r *Runners) runJob(ctx context.Context, p provider, sj store.Job) {
	data, err := r.exec.JobData(sj)
	if err != nil {
		r.logger.Error("read built-in job", "job", sj.ID, "err", err)
		return
	}
	run, err := r.exec.LocalRun(ctx, sj)
	if errors.Is(err, executor.ErrJobNotFound) {
		return // its execution ended since
	}
	if err != nil {
		r.logger.Error("read built-in job", "job", sj.ID, "err", err)
		return
	}
	logw, err := r.cfg.Logs.Create(sj.ActionExecutionID)
	if err != nil {
		r.logger.Error("open the log of a built-in job", "job", sj.ID, "err", err)
		return
	}
	// The log is closed, which writes out what it holds, before the job is reported or handed
	// back: whoever reads the log once the action ended, or continues it on another replica,
	// finds all of it.
	closeLog := sync.OnceFunc(func() {
		if err := logw.Close(); err != nil {
			r.logger.Warn("close the log of a built-in job", "job", sj.ID, "err", err)
		}
	})
	defer closeLog()
	dir, err := r.work.newRun(sj.ID)
	if err != nil {
		r.logger.Error("prepare the work directory of a built-in job", "job", sj.ID, "err", err)
		return
	}
	defer func() {
		if err := os.RemoveAll(dir); err != nil {
			r.logger.Warn("remove the work directory of a built-in job", "job", sj.ID, "err", err)
		}
	}()

	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if !run.Deadline.IsZero() {
		var stop context.CancelFunc
		runCtx, stop = context.WithDeadline(runCtx, run.Deadline)
		defer stop()
	}
	go r.heartbeat(runCtx, sj.ID, cancel)
	r.mu.Lock()
	r.running[sj.ID] = cancel
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.running, sj.ID)
		r.mu.Unlock()
	}()

	j := &job{id: sj.ID, data: data, run: run, dir: dir, work: filepath.Join(dir, "build"), log: logw}
	res := p.run(runCtx, j)
	switch {
	case ctx.Err() != nil:
		j.logf("The server is stopping: the run will be taken up again")
		// The run has stopped: hand its job back for another replica, or this server when it
		// starts again, to take up at once.
		closeLog()
		releaseCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
		defer cancel()
		if err := r.exec.Release(releaseCtx, sj); err != nil {
			r.logger.Warn("hand back a built-in job", "job", sj.ID, "err", err)
		}
		return
	case errors.Is(context.Cause(runCtx), errJobEnded):
		j.logf("Stopped: the action was stopped or abandoned, or it timed out")
		return
	}
	if res.Succeeded {
		j.logf("Succeeded: %s", res.Summary)
	} else {
		j.logf("Failed: %s", res.Summary)
	}
	closeLog()
	if err := r.exec.Finish(ctx, sj.ID, res); err != nil {
		r.logger.Warn("report built-in job", "job", sj.ID, "err", err)
	}
}

// stopEnded stops, at once, the runs whose jobs a step just ended (abandoned, timed out) rather
// than at their next heartbeat.
func (r *Runners) stopEnded(ctx context.Context) {
	r.mu.Lock()
	running := maps.Clone(r.running)
	r.mu.Unlock()
	for id, cancel := range running {
		if alive, err := r.exec.Heartbeat(ctx, id); err == nil && !alive {
			cancel(errJobEnded)
		}
	}
}

// heartbeat keeps a running job from being handed out again, and cancels the run when its job
// ends without it.
func (r *Runners) heartbeat(ctx context.Context, jobID string, cancel context.CancelCauseFunc) {
	ticker := time.NewTicker(r.cfg.Heartbeat)
	defer ticker.Stop()
	// The first beat is at once: a job a runner took is never counted as one no worker takes,
	// however often a crash of the server hands it out again.
	for first := true; ; first = false {
		if !first {
			select {
			case <-ctx.Done():
				return
			case <-ticker.C:
			}
		}
		alive, err := r.exec.Heartbeat(ctx, jobID)
		if err != nil {
			if ctx.Err() == nil {
				r.logger.Warn("heartbeat of a built-in job", "job", jobID, "err", err)
			}
			continue
		}
		if !alive {
			cancel(errJobEnded)
			return
		}
	}
}

// failed is the result of a job that failed for reason.
func failed(reason string) executor.Result {
	return executor.Result{Summary: reason, FailureType: string(model.FailureTypeJobFailed)}
}

// failedErr is the result of a job that failed with err, said as a sentence.
func failedErr(err error) executor.Result {
	msg := err.Error()
	r, size := utf8.DecodeRuneInString(msg)
	return failed(string(unicode.ToUpper(r)) + msg[size:])
}
