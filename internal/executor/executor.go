// Package executor runs pipeline executions. Each event — an execution starts, a job or an
// approval finishes, a stop, a retry, a transition change — is one store step: it reads the
// pipeline's execution state, lets the engine's state machine compute what follows, and writes
// the new state with every record that follows from it (execution and action histories, jobs,
// approval tokens) in the same transaction. The actions this package starts — Manual approvals
// and jobs for job workers — are themselves records, so a crash at any point loses nothing and
// nothing happens twice.
package executor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/sluicehq/sluice/internal/arn"
	"github.com/sluicehq/sluice/internal/artifacts"
	"github.com/sluicehq/sluice/internal/engine"
	"github.com/sluicehq/sluice/internal/model"
	"github.com/sluicehq/sluice/internal/notify"
	"github.com/sluicehq/sluice/internal/store"
)

// Config configures an Executor.
type Config struct {
	AccountID string
	Region    string
	// ApprovalTimeout is how long a Manual approval waits when its action sets no timeout.
	ApprovalTimeout time.Duration
	Now             func() time.Time
	// Artifacts keeps the artifacts actions hand each other.
	Artifacts artifacts.Store
	// LocalProviders are the AWS action types (TypeKey) that Sluice's own runners serve; their
	// runs are jobs like any other, polled by runners inside the server.
	LocalProviders map[string]bool
	// WorkerProviders are the AWS providers whose runs go to job workers (PollForJobs with owner
	// AWS); "*" routes every AWS provider that has no local runner.
	WorkerProviders map[string]bool
	// LogURL, if set, is where the log of a built-in runner's action execution can be read; it
	// becomes the action's external execution URL.
	LogURL func(actionExecutionID string) string
	// CheckStateCache, for tests: a step that takes the state the pipeline's previous step left
	// also decodes the stored state and fails if the two differ, which they do when a step
	// changed an execution without marking it touched, so that its document was not written.
	CheckStateCache bool
	// Notifier carries what committed steps did to jobs to the runners of every replica; nil
	// means an in-process one, for a single server.
	Notifier notify.Notifier
}

// Topics of the executor's notifications.
const (
	// topicJobs carries the type key of jobs a step queued.
	topicJobs = "jobs"
	// topicEnded carries nothing: a step ended jobs that were handed out.
	topicEnded = "ended"
)

// Executor runs executions on a store.
type Executor struct {
	cfg   Config
	store store.Store
	// declarations caches pipeline versions, which never change once written; customTypes caches
	// the definitions of custom action types, which keep theirs for life; readyBuckets the
	// artifact buckets found ready.
	declarations sync.Map
	customTypes  sync.Map
	readyBuckets sync.Map
	// states holds, per pipeline, the state its last step here wrote and that step's token: a
	// step that finds the same token stored takes the state instead of reading and decoding it.
	states sync.Map
}

// ListenJobs hears of the jobs steps queue, on any replica: each message is the type key of
// queued jobs, or notify.Resync when the listener may have missed some (always first), when it
// should look for jobs of every type. Stop ends the listening.
func (x *Executor) ListenJobs() (keys <-chan string, stop func()) {
	return x.cfg.Notifier.Listen(topicJobs)
}

// ListenEnded hears that steps ended jobs that were handed out, on any replica: a runner running
// one should stop it (Heartbeat tells which).
func (x *Executor) ListenEnded() (ended <-chan string, stop func()) {
	return x.cfg.Notifier.Listen(topicEnded)
}

// New returns an Executor.
func New(cfg Config, st store.Store) *Executor {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ApprovalTimeout == 0 {
		cfg.ApprovalTimeout = 7 * 24 * time.Hour
	}
	if cfg.Notifier == nil {
		cfg.Notifier = notify.NewInProcess(0)
	}
	return &Executor{cfg: cfg, store: st}
}

// state is what a pipeline's execution state holds besides the engine's: what the history and
// GetPipelineState need of executions that run or ran.
type state struct {
	Engine engine.Pipeline `json:"engine"`
	// Runs are the executions the engine still holds, by id.
	Runs map[string]*run `json:"runs,omitempty"`
	// Latest is, per stage, the latest execution to enter it and its actions' latest runs.
	Latest map[string]*stageRun `json:"latest"`
	// Transitions holds the disabled inbound transitions, by stage.
	Transitions map[string]transition `json:"transitions,omitempty"`
	// Revisions are, per source action ("stage/action"), the revisions PutActionRevision
	// recorded, newest last, with the executions they started.
	Revisions map[string][]putRevision `json:"revisions,omitempty"`
	// Good is, per stage, the latest standard execution that succeeded in it: where an automatic
	// rollback of the stage goes back to.
	Good map[string]*rollbackSource `json:"good,omitempty"`
}

type putRevision struct {
	Revision  model.ActionRevision `json:"revision"`
	Execution string               `json:"execution"`
}

type run struct {
	Pipeline    string                       `json:"pipeline"`
	Version     int                          `json:"version"`
	Generation  string                       `json:"generation,omitempty"`
	Seq         int64                        `json:"seq"`
	Started     time.Time                    `json:"started"`
	ClientToken string                       `json:"clientToken,omitempty"`
	Trigger     model.ExecutionTrigger       `json:"trigger"`
	Variables   map[string]string            `json:"variables,omitempty"`
	Mode        model.ExecutionMode          `json:"mode"`
	StopTrigger *model.StopExecutionTrigger  `json:"stopTrigger,omitempty"`
	Summary     string                       `json:"summary,omitempty"`
	Outputs     map[string]map[string]string `json:"outputs,omitempty"`
	Succeeded   []string                     `json:"succeeded,omitempty"`
	// Revisions are the artifact revisions its actions reported.
	Revisions []model.ArtifactRevision `json:"revisions,omitempty"`
	// SourceRevisions are the revisions the execution's source actions were pinned to.
	SourceRevisions []model.SourceRevisionOverride `json:"sourceRevisions,omitempty"`
	// StartedBy are the revisions of source actions that started the execution, by action name.
	StartedBy map[string]model.ActionRevision `json:"startedBy,omitempty"`
	// Actions are this execution's action runs, by action execution id.
	Actions map[string]*actionRun `json:"actions,omitempty"`
	// Rules are this execution's rule runs, by rule execution id.
	Rules map[string]*ruleRun `json:"rules,omitempty"`
	// RollbackOf is, for a rollback execution, the execution it rolls back to.
	RollbackOf string `json:"rollbackOf,omitempty"`
	// Artifacts are where the artifacts its actions produced are, by name.
	Artifacts map[string]artifactRef `json:"artifacts,omitempty"`
}

// artifactRef is a stored artifact and the revision it came from.
type artifactRef struct {
	Bucket   string `json:"bucket"`
	Key      string `json:"key"`
	Revision string `json:"revision,omitempty"`
}

type stageRun struct {
	Execution string                `json:"execution"`
	Status    engine.Status         `json:"status"`
	Actions   map[string]*actionRun `json:"actions"`
	// Rollback marks the run of a rollback execution.
	Rollback bool `json:"rollback,omitempty"`
	// Conditions are the latest evaluations of the stage's conditions, by kind.
	Conditions map[engine.Kind]*conditionRun `json:"conditions,omitempty"`
	// Retries counts the retries of the stage in its latest execution.
	Retries *engine.Retries `json:"retries,omitempty"`
}

// conditionRun is an evaluation of a stage condition: its status and its rules' latest runs.
type conditionRun struct {
	Status  engine.Status       `json:"status"`
	Summary string              `json:"summary,omitempty"`
	Changed time.Time           `json:"changed"`
	Rules   map[string]*ruleRun `json:"rules"`
}

type actionRun struct {
	ID      string        `json:"id"`
	Stage   string        `json:"stage"`
	Name    string        `json:"name"`
	Status  engine.Status `json:"status"`
	Summary string        `json:"summary,omitempty"`
	Changed time.Time     `json:"changed"`
	// Token and Deadline belong to Manual approvals; a job's id to job actions.
	Token    string    `json:"token,omitempty"`
	Deadline time.Time `json:"deadline,omitzero"`
	JobID    string    `json:"jobId,omitempty"`
	Started  time.Time `json:"started"`
	// Revision is what the action reported as its current revision; Percent and ExternalID what
	// its worker reported of its progress.
	Revision   *model.ActionRevision `json:"revision,omitempty"`
	Percent    *int                  `json:"percent,omitempty"`
	ExternalID string                `json:"externalId,omitempty"`
	// ExternalURL is where the run can be watched: a built-in runner's log.
	ExternalURL string `json:"externalUrl,omitempty"`
}

type transition struct {
	Reason  string    `json:"reason"`
	By      string    `json:"by"`
	Changed time.Time `json:"changed"`
}

// lastState is a state as a step left it, and the token the step stored with it.
type lastState struct {
	token string
	st    *state
}

// step is one event being applied: the decoded state, the records it produces, and the time.
type step struct {
	x        *Executor
	ctx      context.Context
	pipeline string
	// cur reads inside the step's transaction.
	cur    store.Current
	st     *state
	now    time.Time
	change store.Change
	// touched marks the executions the step changed (those its events name), whose state
	// documents and records are rewritten.
	touched map[string]bool
	// targets are the deploy targets actions reported in this step, by action execution id, for
	// their records.
	targets map[string][]byte
	// failures are the artifact buckets known not to be ready, with why (see bucket).
	failures map[string]string
}

// apply runs fn as one step of pipeline's executions; a step that lacked something it needs from
// outside the store runs again once it was fetched.
func (x *Executor) apply(ctx context.Context, pipeline string, fn func(s *step) error) error {
	failures := map[string]string{}
	for fetches := 0; ; fetches++ {
		var sig signals
		err := x.store.Step(ctx, pipeline, x.stepFunc(ctx, pipeline, fn, &sig, failures))
		var m *missing
		if errors.As(err, &m) && fetches < maxFetches {
			if err := x.fetch(ctx, m, failures); err != nil {
				return err
			}
			continue
		}
		if err == nil {
			x.committed(sig)
		}
		return err
	}
}

// stepFunc makes fn a step of the store's: fn changes the state the pipeline's previous step
// left, and the step stores the new state with what fn recorded. sig reports what the runners
// must hear of once it committed; failures are the artifact buckets known not to be ready, with
// why.
func (x *Executor) stepFunc(ctx context.Context, pipeline string, fn func(s *step) error, sig *signals, failures map[string]string) store.StepFunc {
	return func(cur store.Current) (store.Change, error) {
		s := &step{x: x, ctx: ctx, pipeline: pipeline, cur: cur, now: x.cfg.Now().UTC(), touched: map[string]bool{}, failures: failures}
		st, inline, err := x.current(pipeline, cur)
		if err != nil {
			return store.Change{}, err
		}
		s.st = st
		if err := fn(s); err != nil {
			return store.Change{}, err
		}
		if err := s.recordExecutions(); err != nil {
			return store.Change{}, err
		}
		// A record written more than once in a step is stored once, as last written.
		s.change.Actions = lastByID(s.change.Actions, func(a store.ActionExecution) string { return a.ID })
		s.change.Rules = lastByID(s.change.Rules, func(r store.RuleExecution) string { return r.ID })
		s.change.Jobs = lastByID(s.change.Jobs, func(j store.Job) string { return j.ID })
		changed := s.touched
		if inline {
			// Every execution moves out of the pipeline's document into one of its own; their
			// records stay as they are.
			changed = maps.Clone(s.touched)
			for _, e := range s.st.Engine.Executions {
				changed[e.ID] = true
			}
			for id := range s.st.Runs {
				changed[id] = true
			}
		}
		if s.change.State, s.change.ExecutionStates, err = s.st.encode(changed); err != nil {
			return store.Change{}, fmt.Errorf("encode execution state of %s: %w", pipeline, err)
		}
		s.change.Token = newID()
		s.change.Active = len(s.st.Runs) > 0
		x.states.Store(pipeline, &lastState{token: s.change.Token, st: s.st})
		*sig = signals{}
		for _, j := range s.change.Jobs {
			switch j.Status {
			case jobQueued:
				sig.queued = append(sig.queued, j.TypeKey)
			case jobAbandoned, jobFailed:
				sig.ended = true
			}
		}
		return s.change, nil
	}
}

// lastByID keeps the last of the records with the same id, in the order of their first.
func lastByID[T any](records []T, id func(T) string) []T {
	at := make(map[string]int, len(records))
	out := records[:0:0]
	for _, r := range records {
		if i, seen := at[id(r)]; seen {
			out[i] = r
			continue
		}
		at[id(r)] = len(out)
		out = append(out, r)
	}
	return out
}

// signals are what a step tells the job runners once it committed: the types of the jobs it
// queued, and whether it ended jobs.
type signals struct {
	queued []string
	ended  bool
}

// notifyTimeout bounds how long telling the runners of a committed step may take.
const notifyTimeout = 5 * time.Second

// committed tells the job runners of every replica what a committed step did to jobs. It is best
// effort: a runner that missed it finds the jobs on its next look at every type.
func (x *Executor) committed(sig signals) {
	if len(sig.queued) == 0 && !sig.ended {
		return
	}
	// Not the request's context: the step has committed whatever becomes of the request.
	ctx, cancel := context.WithTimeout(context.Background(), notifyTimeout)
	defer cancel()
	seen := map[string]bool{}
	for _, key := range sig.queued {
		if !seen[key] {
			seen[key] = true
			_ = x.cfg.Notifier.Notify(ctx, topicJobs, key)
		}
	}
	if sig.ended {
		_ = x.cfg.Notifier.Notify(ctx, topicEnded, notify.Resync)
	}
}

// Forget lets go of what the executor keeps of a deleted pipeline's executions.
func (x *Executor) Forget(pipeline string) { x.states.Delete(pipeline) }

// current returns the state a step starts from: the one the pipeline's previous step here left if
// the store still holds it, else the stored one. inline reports a stored state in the document
// format from before executions had documents of their own.
func (x *Executor) current(pipeline string, cur store.Current) (st *state, inline bool, err error) {
	// Taken, not shared: a step that fails or whose commit fails leaves nothing behind, and the
	// next one reads what the store holds.
	if last, ok := x.states.LoadAndDelete(pipeline); ok && last.(*lastState).token == cur.Token {
		st := last.(*lastState).st
		if x.cfg.CheckStateCache {
			if err := checkCached(pipeline, st, cur); err != nil {
				return nil, false, err
			}
		}
		return st, false, nil
	}
	stored, err := cur.Load()
	if err != nil {
		return nil, false, fmt.Errorf("read execution state of %s: %w", pipeline, err)
	}
	return decodeState(pipeline, stored)
}

// checkCached fails if a cached state is not what the store holds.
func checkCached(pipeline string, cached *state, cur store.Current) error {
	stored, err := cur.Load()
	if err != nil {
		return err
	}
	decoded, _, err := decodeState(pipeline, stored)
	if err != nil {
		return err
	}
	want, err := json.Marshal(cached)
	if err != nil {
		return err
	}
	got, err := json.Marshal(decoded)
	if err != nil {
		return err
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("the execution state of %s kept since the last step differs from the stored one:\nkept   %s\nstored %s", pipeline, want, got)
	}
	return nil
}

// declaration returns a pipeline version's declaration: store.ErrNotFound if the pipeline of
// that generation is gone.
func (x *Executor) declaration(ctx context.Context, name string, version int, generation string) (*model.PipelineDeclaration, error) {
	key := declarationKey(name, version, generation)
	if d, ok := x.declarations.Load(key); ok {
		return d.(*model.PipelineDeclaration), nil
	}
	rec, err := x.store.GetPipeline(ctx, name, version)
	if err != nil {
		return nil, err
	}
	if rec.Generation != generation {
		return nil, store.ErrNotFound
	}
	var decl model.PipelineDeclaration
	if err := json.Unmarshal(rec.Declaration, &decl); err != nil {
		return nil, fmt.Errorf("decode pipeline %s version %d: %w", name, version, err)
	}
	x.declarations.Store(key, &decl)
	return &decl, nil
}

// declarationKey names a version of a pipeline in the cache of declarations.
func declarationKey(name string, version int, generation string) string {
	return fmt.Sprintf("%s@%d@%s", name, version, generation)
}

func (x *Executor) pipelineARN(name string) string {
	return arn.Pipeline(x.cfg.Region, x.cfg.AccountID, name)
}

func newID() string { return uuid.NewString() }

// handle records the engine's events and carries out those that ask for work, with the work that
// follows from runs that finish at once (a provider without a runner, a variable that does not
// resolve) or from a rollback's start.
func (s *step) handle(events []engine.Event) error {
	for len(events) > 0 {
		ev := events[0]
		events = events[1:]
		s.touched[ev.ExecutionID()] = true
		if err := s.record(ev); err != nil {
			return err
		}
		var more []engine.Event
		var err error
		switch e := ev.(type) {
		case engine.ActionStarted:
			more, err = s.startAction(e.Execution, e.Action)
		case engine.ActionAbandoned:
			if _, ar := s.findAction(e.Action.ID); ar != nil && ar.JobID != "" {
				err = s.endJob(ar.JobID, jobAbandoned)
			}
			s.finishAction(e.Execution, e.Action.ID, engine.Abandoned, "The action was abandoned when its execution stopped", nil)
		case engine.RuleStarted:
			more, err = s.startRule(e.Execution, e.Rule)
		case engine.RuleAbandoned:
			err = s.abandonRule(e.Execution, e.Rule)
		case engine.ConditionFinished:
			s.conditionFinished(e)
		case engine.StageRetried:
			s.stageRetried(e)
		case engine.StageFinished:
			s.stageFinished(e)
		case engine.RollbackRequested:
			more, err = s.rollbackRequested(e)
		}
		if err != nil {
			return err
		}
		events = append(events, more...)
	}
	return nil
}

// record adds an event to the step's change, for the pipeline's history of events.
func (s *step) record(ev engine.Event) error {
	doc, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("encode event %s: %w", ev.Name(), err)
	}
	s.change.Events = append(s.change.Events, store.Event{Pipeline: s.pipeline, ExecutionID: ev.ExecutionID(), Kind: ev.Name(), Doc: doc, At: s.now})
	return nil
}
