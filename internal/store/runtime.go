package store

import (
	"context"
	"fmt"
	"time"
)

// Execution is the record of one pipeline execution, for its history.
type Execution struct {
	ID       string
	Pipeline string
	// Seq orders a pipeline's executions by start.
	Seq     int64
	Version int
	Status  string
	// ClientToken is StartPipelineExecution's clientRequestToken, unique per pipeline.
	ClientToken string
	// Doc is the JSON of the execution's model.PipelineExecution.
	Doc     []byte
	Started time.Time
	Updated time.Time
}

// ActionExecution is the record of one run of an action.
type ActionExecution struct {
	ID          string
	ExecutionID string
	Pipeline    string
	Stage       string
	Action      string
	Status      string
	// Doc is the JSON of the run's model.ActionExecutionDetail.
	Doc []byte
	// Targets is the JSON of the []model.DeployActionExecutionTarget a deploy action reported,
	// nil for an action that reported none.
	Targets []byte
	Started time.Time
	Updated time.Time
}

// RuleExecution is the record of one run of a rule of a stage condition.
type RuleExecution struct {
	ID          string
	ExecutionID string
	Pipeline    string
	Stage       string
	Rule        string
	Status      string
	// Doc is the JSON of the run's model.RuleExecutionDetail.
	Doc     []byte
	Started time.Time
	Updated time.Time
}

// Event is something that happened to a pipeline's executions, as the engine reported it: an
// execution, stage, action or rule started or finished, a retry, a rollback. A step stores its
// events with the state they led to; the store numbers them in the order they were stored.
type Event struct {
	// ID orders a pipeline's events; the store assigns it.
	ID          int64
	Pipeline    string
	ExecutionID string
	// Kind names the event (engine's event type, e.g. "StageEntered").
	Kind string
	// Doc is the event's JSON.
	Doc []byte
	At  time.Time
}

// Job is work for a job worker: a run of an action of an owner Custom (or routed) action type.
type Job struct {
	ID                string
	ActionExecutionID string
	ExecutionID       string
	Pipeline          string
	// TypeKey is "Category/Owner/Provider/Version" of the action type that polls for it.
	TypeKey string
	// QueryValue is the value of the type's queryable property, matched by PollForJobs' queryParam.
	QueryValue string
	// Status: Queued (pollable), Dispatched (handed out, not acknowledged), InProgress, or final.
	Status string
	Nonce  string
	// Dispatches counts how often the job was handed out since a worker last showed it alive
	// (TouchJob).
	Dispatches int
	// Data is the JSON of the job's model.JobData.
	Data    []byte
	Created time.Time
	Updated time.Time
}

// State is a pipeline's execution state as stored: a document of the pipeline's own and one for
// each execution it holds, so that a step rewrites only what it changed.
type State struct {
	// Pipeline is the pipeline's document, nil before its first step.
	Pipeline []byte
	// Executions are the executions' documents, by execution id.
	Executions map[string][]byte
}

// Current is a pipeline's execution state as a step finds it.
type Current struct {
	// Token is the Token of the last step's Change, "" before the first step. Every step stores
	// a new one, so a caller that kept what it wrote under a token can use it instead of Load.
	Token string
	// Load reads the state.
	Load func() (State, error)
	// Job and ActionExecution read as GetJob and GetActionExecution do, inside the step's
	// transaction.
	Job             func(id string) (Job, error)
	ActionExecution func(id string) (ActionExecution, error)
	// RuleExecution reads as GetRuleExecution does, inside the step's transaction.
	RuleExecution func(id string) (RuleExecution, error)
}

// Change is what one step of a pipeline's executions writes, all in one transaction: the
// engine's new state and the records that follow from it.
type Change struct {
	// Token names the state this change leaves, for the next step's Current.
	Token string
	// State is the pipeline's new document.
	State []byte
	// ExecutionStates are the documents of the executions the step changed, by execution id; a
	// nil document removes the execution's.
	ExecutionStates map[string][]byte
	// Active marks a pipeline with executions that can still change, which Sweep visits.
	Active     bool
	Executions []Execution
	Actions    []ActionExecution
	// Rules are rule runs' records, written (inserted or replaced by ID) like Actions.
	Rules []RuleExecution
	Jobs  []Job
	// Events are appended to the pipeline's events, in order.
	Events []Event
}

// SourceEvent is a change to a source — a push, an upload, a webhook delivery — recorded before
// Sluice acknowledges it and kept until the executions it calls for have started, so that a
// crash between the two loses nothing.
type SourceEvent struct {
	ID string
	// Doc is the event's JSON, as the sources package writes it.
	Doc     []byte
	Created time.Time
}

// StepFunc computes a step's change of a pipeline's execution state from the current one.
type StepFunc func(Current) (Change, error)

// Runtime keeps what pipelines do when they run.
type Runtime interface {
	// Step lets fn compute the change of a pipeline's execution state from the current one and
	// stores it, holding the pipeline's lock throughout so that steps of one pipeline never
	// interleave. An error from fn stores nothing.
	Step(ctx context.Context, pipeline string, fn StepFunc) error
	// State returns a pipeline's execution state; its Pipeline is nil if it never ran.
	State(ctx context.Context, pipeline string) (State, error)

	GetExecution(ctx context.Context, pipeline, id string) (Execution, error)
	// ExecutionByToken finds the execution started with a client request token.
	ExecutionByToken(ctx context.Context, pipeline, token string) (Execution, error)
	// ListExecutions returns executions newest first, those with Seq below before (0: from the newest).
	ListExecutions(ctx context.Context, pipeline string, before int64, limit int) ([]Execution, error)
	// ListActionExecutions returns action runs newest first, optionally of one execution,
	// after the run whose ActionKey is page.After ("" for the first page).
	ListActionExecutions(ctx context.Context, pipeline, executionID string, page Page) ([]ActionExecution, error)
	GetActionExecution(ctx context.Context, id string) (ActionExecution, error)
	// ListRuleExecutions returns rule runs newest first (by RuleKey), optionally of one
	// execution, after the run whose RuleKey is page.After ("" for the first page).
	ListRuleExecutions(ctx context.Context, pipeline, executionID string, page Page) ([]RuleExecution, error)
	GetRuleExecution(ctx context.Context, id string) (RuleExecution, error)
	// ListEvents returns a pipeline's events in the order they were stored, those with an ID
	// above after, up to limit.
	ListEvents(ctx context.Context, pipeline string, after int64, limit int) ([]Event, error)

	// DispatchJobs hands out up to max Queued jobs of a type (and query value, if not empty),
	// oldest first, marking them Dispatched with a fresh nonce from nonce().
	DispatchJobs(ctx context.Context, typeKey, queryValue string, max int, nonce func() string) ([]Job, error)
	GetJob(ctx context.Context, id string) (Job, error)
	// ActivePipelines lists the pipelines whose last step left them Active.
	ActivePipelines(ctx context.Context) ([]string, error)
	// RequeueJobs puts back in the queue the jobs handed out before dispatchedBefore and never
	// acknowledged, and returns the type keys of those it put back, unless they were handed out
	// maxDispatches times already: those it returns, still Dispatched, for their actions to fail.
	// Jobs of the unlimited types (those the server's own runners take, which a crash of the
	// server hands out again) are always put back.
	RequeueJobs(ctx context.Context, dispatchedBefore time.Time, maxDispatches int, unlimited []string) (requeued []string, exhausted []Job, err error)
	// SetJobStatus moves a job from one status to another, or fails with ErrConflict.
	SetJobStatus(ctx context.Context, id, from, to string, updated time.Time) error
	// AddSourceEvent records a source event.
	AddSourceEvent(ctx context.Context, e SourceEvent) error
	// SourceEvents returns up to limit recorded source events, oldest first.
	SourceEvents(ctx context.Context, limit int) ([]SourceEvent, error)
	// DeleteSourceEvent removes a handled source event; a missing one is no error.
	DeleteSourceEvent(ctx context.Context, id string) error
	// SourceTags returns the document of the tags a polling source last saw, and false if it
	// saw none yet; SetSourceTags replaces it.
	SourceTags(ctx context.Context, source string) ([]byte, bool, error)
	SetSourceTags(ctx context.Context, source string, doc []byte) error
	// TouchJob marks a job handed out or in progress as alive at now, so that it is not handed
	// out again, and clears its dispatch count: a job someone proved to work on is not one that no
	// worker takes, however often a crash put it back. It reports false when the job has ended
	// (or never existed).
	TouchJob(ctx context.Context, id string, now time.Time) (bool, error)
}

// ActionKey is the paging key of an action run: ListActionExecutions orders by it, newest first.
func ActionKey(a ActionExecution) string {
	return fmt.Sprintf("%015d/%s", a.Started.UnixMilli(), a.ID)
}

// RuleKey is the paging key of a rule run: ListRuleExecutions orders by it, newest first.
func RuleKey(r RuleExecution) string {
	return fmt.Sprintf("%015d/%s", r.Started.UnixMilli(), r.ID)
}
