// Package engine is the execution state machine of a pipeline: given the state of a pipeline's
// executions and what happened (an execution starts, an action or a rule finishes, a stop, a
// retry, a rollback, a condition overridden, a transition disabled or enabled), it computes the
// new state and reports, as typed events, everything that followed: executions, stages, actions
// and rules that started or finished, retries and rollbacks asked for. It does no I/O and reads no
// clock or random source of its own, so the same state and input always give the same result: the
// caller persists the new state with the events in one transaction, then carries out those that
// ask for work (start an action or a rule, abandon one, start a rollback), and a crash at any
// point replays to the same place.
//
// The rules are CodePipeline's: stages run in order; inside a stage, actions run in groups of
// ascending runOrder, a group's actions together; a failed action lets its group finish, starts no
// later group and fails the stage and the execution. Executions enter a stage according to the
// pipeline's execution mode (SUPERSEDED, QUEUED, PARALLEL) and the stage's inbound transition.
//
// A stage run goes through phases: its entry condition's rules, its actions, then its success or
// failure condition's rules. A condition is met when all its rules succeed. An unmet entry
// condition fails the stage or skips it; an unmet success condition fails the stage or fails it
// and asks for a rollback; a failed stage's onFailure result (retry once, roll back, skip, fail)
// engages unless its condition's rules say it should not.
package engine

import (
	"fmt"
	"maps"
	"slices"
)

// Mode is a pipeline's execution mode.
type Mode string

const (
	Superseded Mode = "SUPERSEDED"
	Queued     Mode = "QUEUED"
	Parallel   Mode = "PARALLEL"
)

// Status is the status of an execution, a stage run, an action run or a rule run, with AWS's names.
type Status string

const (
	InProgress Status = "InProgress"
	Stopping   Status = "Stopping"
	Stopped    Status = "Stopped"
	Succeeded  Status = "Succeeded"
	Failed     Status = "Failed"
	// StatusSuperseded: a newer execution overtook this one while it waited.
	StatusSuperseded Status = "Superseded"
	Abandoned        Status = "Abandoned"
	// Skipped: a stage an execution passed by (an entry condition or a failure said so).
	Skipped Status = "Skipped"
	// Overridden: a condition let through by OverrideStageCondition.
	Overridden Status = "Overridden"
)

// Done reports whether s is final.
func (s Status) Done() bool {
	return s == Stopped || s == Succeeded || s == Failed || s == StatusSuperseded || s == Abandoned || s == Skipped || s == Overridden
}

// Kind is the kind of a stage condition, with AWS's names.
type Kind string

const (
	BeforeEntry Kind = "BEFORE_ENTRY"
	OnSuccess   Kind = "ON_SUCCESS"
	OnFailure   Kind = "ON_FAILURE"
)

// Result is what engages when a condition says so.
type Result string

const (
	ResultFail     Result = "FAIL"
	ResultSkip     Result = "SKIP"
	ResultRetry    Result = "RETRY"
	ResultRollback Result = "ROLLBACK"
)

// RetryTrigger says who retried a stage.
type RetryTrigger string

const (
	AutomatedRetry RetryTrigger = "AutomatedStageRetry"
	ManualRetry    RetryTrigger = "ManualStageRetry"
)

// MaxAutoRetries is how often a failed stage is retried automatically: once, as in AWS.
const MaxAutoRetries = 1

// Condition is a stage condition as an execution runs it: the rules that must all succeed for it
// to be met, and the result that engages (unmet for entry and success conditions, met for a
// failure condition's).
type Condition struct {
	Result Result   `json:"result"`
	Rules  []string `json:"rules,omitempty"`
	// RetryFailedOnly, for a RETRY result: retry the failed actions only, not the whole stage.
	RetryFailedOnly bool `json:"retryFailedOnly,omitempty"`
}

// StagePlan is a stage as an execution runs it: its actions, grouped by runOrder, and its
// conditions.
type StagePlan struct {
	Name        string     `json:"Name"`
	Groups      [][]string `json:"Groups"`
	BeforeEntry *Condition `json:"beforeEntry,omitempty"`
	OnSuccess   *Condition `json:"onSuccess,omitempty"`
	// OnFailure engages its result when the stage fails: at once without rules, else when its
	// rules all succeed.
	OnFailure *Condition `json:"onFailure,omitempty"`
}

func (s StagePlan) condition(k Kind) *Condition {
	switch k {
	case BeforeEntry:
		return s.BeforeEntry
	case OnSuccess:
		return s.OnSuccess
	case OnFailure:
		return s.OnFailure
	}
	return nil
}

// Action is one run of an action.
type Action struct {
	ID      string
	Stage   int
	Name    string
	Attempt int
	Status  Status
}

// Rule is one run of a rule of a stage condition.
type Rule struct {
	ID     string `json:"id"`
	Stage  int    `json:"stage"`
	Kind   Kind   `json:"kind"`
	Name   string `json:"name"`
	Status Status `json:"status"`
}

// Retries counts a stage's retries in one execution.
type Retries struct {
	Auto   int          `json:"auto,omitempty"`
	Manual int          `json:"manual,omitempty"`
	Latest RetryTrigger `json:"latest,omitempty"`
}

// Execution is one run of a pipeline.
type Execution struct {
	ID     string
	Seq    int64
	Status Status
	Plan   []StagePlan
	// Stage is the index of the stage the execution is in or waiting to enter; len(Plan) once done.
	Stage int
	// Waiting: at the entrance of Stage, not yet admitted.
	Waiting bool
	// Phase is what the execution does inside Stage: "" while its actions run, else the kind of
	// the condition whose rules it evaluates.
	Phase Kind `json:",omitempty"`
	// Group is the index of the running runOrder group of Stage.
	Group int
	// StageStatus is the status of each stage this execution reached, by index.
	StageStatus []Status
	// Actions are the latest runs of the stage's actions, by action name, per stage.
	Actions []map[string]*Action
	// Rules are the latest runs of the stage's condition rules, by ruleKey, per stage.
	Rules []map[string]*Rule `json:",omitempty"`
	// Retries count each stage's retries.
	Retries []Retries `json:",omitempty"`
	// Rollback marks a rollback execution: it runs one stage, without its conditions, and ends.
	Rollback bool `json:",omitempty"`
	// FailedOnly: the stage is being retried for its failed actions only, so actions that
	// succeeded in it, in any group, do not run again.
	FailedOnly bool `json:",omitempty"`
}

func ruleKey(k Kind, name string) string { return string(k) + "/" + name }

// Pipeline is the execution state of one pipeline.
type Pipeline struct {
	Mode Mode
	// Disabled holds the stages whose inbound transition is disabled.
	Disabled map[string]bool
	// Entered is, per stage, the execution that entered it last: the only one a retry may revive
	// there (a rollback enters a stage out of the order executions started in).
	Entered    map[string]string `json:",omitempty"`
	Executions []*Execution
	NextSeq    int64
	// Forgotten collects the executions that finished and left the state during the calls since
	// the caller last cleared it, so that their final state can be recorded.
	Forgotten []*Execution `json:"-"`
	// events collects what happened during the current call.
	events []Event
}

// IDs hands out run ids; the caller supplies them so that the engine stays pure.
type IDs func() string

// Start adds an execution of plan and returns what followed.
func (p *Pipeline) Start(id string, plan []StagePlan, ids IDs) []Event {
	e := p.add(id, plan, 0, false)
	p.emit(ExecutionStarted{Execution: id})
	p.arrive(e)
	p.advance(ids)
	return p.flush()
}

// StartRollback adds a rollback execution that runs the stage of plan at index stage again and
// ends with it, and returns what followed.
func (p *Pipeline) StartRollback(id string, plan []StagePlan, stage int, ids IDs) ([]Event, error) {
	if stage < 0 || stage >= len(plan) {
		return nil, fmt.Errorf("a rollback of stage %d of a plan of %d stages", stage, len(plan))
	}
	e := p.add(id, plan, stage, true)
	p.emit(ExecutionStarted{Execution: id, Rollback: true})
	p.arrive(e)
	p.advance(ids)
	return p.flush(), nil
}

func (p *Pipeline) add(id string, plan []StagePlan, stage int, rollback bool) *Execution {
	p.NextSeq++
	e := &Execution{
		ID: id, Seq: p.NextSeq, Status: InProgress, Plan: plan, Stage: stage, Waiting: true, Rollback: rollback,
		StageStatus: make([]Status, len(plan)), Actions: make([]map[string]*Action, len(plan)),
		Rules: make([]map[string]*Rule, len(plan)), Retries: make([]Retries, len(plan)),
	}
	p.Executions = append(p.Executions, e)
	return e
}

// Find returns the execution with the given id.
func (p *Pipeline) Find(id string) *Execution {
	for _, e := range p.Executions {
		if e.ID == id {
			return e
		}
	}
	return nil
}

// ActionFinished records the result of an action run and returns what follows from it. A result
// for a run that is no longer the current one (abandoned, retried since) changes nothing.
func (p *Pipeline) ActionFinished(executionID, actionID string, ok bool, ids IDs) ([]Event, error) {
	e := p.Find(executionID)
	if e == nil {
		return nil, fmt.Errorf("execution %s is not active", executionID)
	}
	a := e.action(actionID)
	if a == nil || a.Status != InProgress {
		return nil, nil
	}
	a.Status = Failed
	if ok {
		a.Status = Succeeded
	}
	p.emit(ActionFinished{Execution: e.ID, Action: *a})
	p.advance(ids)
	return p.flush(), nil
}

// RuleFinished records the result of a rule run and returns what follows from it; like
// ActionFinished, a result for a run that is no longer current changes nothing.
func (p *Pipeline) RuleFinished(executionID, ruleID string, ok bool, ids IDs) ([]Event, error) {
	e := p.Find(executionID)
	if e == nil {
		return nil, fmt.Errorf("execution %s is not active", executionID)
	}
	r := e.rule(ruleID)
	if r == nil || r.Status != InProgress {
		return nil, nil
	}
	r.Status = Failed
	if ok {
		r.Status = Succeeded
	}
	p.emit(RuleFinished{Execution: e.ID, Rule: *r})
	p.advance(ids)
	return p.flush(), nil
}

// Stop stops an execution: with abandon, its in-flight actions and rules are abandoned and it
// stops at once; without, it is Stopping until they finish. It returns ErrNotStoppable or
// ErrDuplicateStop when AWS would refuse.
func (p *Pipeline) Stop(executionID string, abandon bool, ids IDs) ([]Event, error) {
	e := p.Find(executionID)
	if e == nil || e.Status.Done() {
		return nil, ErrNotStoppable
	}
	if e.Status == Stopping && !abandon {
		return nil, ErrDuplicateStop
	}
	if e.Waiting {
		p.finish(e, Stopped)
		p.advance(ids)
		return p.flush(), nil
	}
	if e.Status != Stopping {
		e.Status = Stopping
		p.emit(ExecutionStopping{Execution: e.ID})
	}
	if abandon {
		p.abandonRunning(e)
	}
	p.advance(ids)
	return p.flush(), nil
}

// SetTransition enables or disables the inbound transition of a stage.
func (p *Pipeline) SetTransition(stage string, enabled bool, ids IDs) []Event {
	if p.Disabled == nil {
		p.Disabled = map[string]bool{}
	}
	if enabled {
		delete(p.Disabled, stage)
	} else {
		p.Disabled[stage] = true
	}
	p.advance(ids)
	return p.flush()
}

// Retry runs a failed or stopped stage of an execution again: every action, or only those that
// did not succeed. Only an execution still in the state can be retried: once a newer execution
// has entered the stage, the older one is forgotten (ErrNotLatest), and its history tells the
// caller why. A stage other than the one it failed or stopped in, or one whose actions never
// ran, is ErrNotRetryable.
func (p *Pipeline) Retry(executionID, stage string, failedOnly bool, ids IDs) ([]Event, error) {
	e := p.Find(executionID)
	if e == nil || !p.lastIn(e, stage) {
		return nil, ErrNotLatest
	}
	idx := slices.IndexFunc(e.Plan, func(s StagePlan) bool { return s.Name == stage })
	if idx < 0 || idx != e.Stage || e.Waiting || (e.StageStatus[idx] != Failed && e.StageStatus[idx] != Stopped) || !e.Status.Done() || len(e.Actions[idx]) == 0 {
		return nil, ErrNotRetryable
	}
	e.Status = InProgress
	p.retry(e, ManualRetry, failedOnly, ids)
	p.advance(ids)
	return p.flush(), nil
}

// Override lets an execution past the condition of the given kind that it evaluates in a stage:
// its rules still running are abandoned and the condition counts as met. ErrNotLatest if the
// execution is not in the stage, ErrNotOverridable if the condition is not being evaluated.
func (p *Pipeline) Override(executionID, stage string, kind Kind, ids IDs) ([]Event, error) {
	e := p.Find(executionID)
	if e == nil || e.Status.Done() || e.Stage >= len(e.Plan) || e.Plan[e.Stage].Name != stage || e.Waiting {
		return nil, ErrNotLatest
	}
	if e.Phase != kind || kind == OnFailure || e.Status != InProgress {
		return nil, ErrNotOverridable
	}
	p.abandonRunning(e) // while a condition is evaluated, only its rules run
	p.conditionDone(e, true, Overridden, ids)
	p.advance(ids)
	return p.flush(), nil
}

// Errors of the operations above, which the API turns into AWS's exceptions.
var (
	ErrNotStoppable   = fmt.Errorf("the execution is not running")
	ErrDuplicateStop  = fmt.Errorf("the execution is already stopping")
	ErrNotRetryable   = fmt.Errorf("the stage cannot be retried")
	ErrNotLatest      = fmt.Errorf("the execution is no longer the latest in its stage")
	ErrNotOverridable = fmt.Errorf("the condition is not being evaluated")
)

func (e *Execution) action(id string) *Action {
	for _, acts := range e.Actions {
		for _, a := range acts {
			if a.ID == id {
				return a
			}
		}
	}
	return nil
}

func (e *Execution) rule(id string) *Rule {
	for _, rules := range e.Rules {
		for _, r := range rules {
			if r.ID == id {
				return r
			}
		}
	}
	return nil
}

// running returns the in-flight action runs of the current stage, by name.
func (e *Execution) running() []*Action {
	if e.Stage >= len(e.Plan) || e.Actions[e.Stage] == nil {
		return nil
	}
	var out []*Action
	for _, name := range slices.Sorted(maps.Keys(e.Actions[e.Stage])) {
		if a := e.Actions[e.Stage][name]; a.Status == InProgress {
			out = append(out, a)
		}
	}
	return out
}

// runningRules returns the in-flight rule runs of the current stage, by key.
func (e *Execution) runningRules() []*Rule {
	if e.Stage >= len(e.Plan) || len(e.Rules) <= e.Stage || e.Rules[e.Stage] == nil {
		return nil
	}
	var out []*Rule
	for _, key := range slices.Sorted(maps.Keys(e.Rules[e.Stage])) {
		if r := e.Rules[e.Stage][key]; r.Status == InProgress {
			out = append(out, r)
		}
	}
	return out
}

// in reports whether the execution occupies the named stage (inside it, not waiting).
func (e *Execution) in(stage string) bool {
	return !e.Waiting && e.Stage < len(e.Plan) && e.Plan[e.Stage].Name == stage
}

// reached reports whether the execution has entered the named stage at some point.
func (e *Execution) reached(stage string) bool {
	for i, s := range e.Plan {
		if s.Name == stage {
			return i < e.Stage || (i == e.Stage && !e.Waiting)
		}
	}
	return false
}

// upgrade gives an execution stored before conditions existed its per-stage rule runs and retries.
func (e *Execution) upgrade() {
	if len(e.Rules) < len(e.Plan) {
		e.Rules = append(e.Rules, make([]map[string]*Rule, len(e.Plan)-len(e.Rules))...)
	}
	if len(e.Retries) < len(e.Plan) {
		e.Retries = append(e.Retries, make([]Retries, len(e.Plan)-len(e.Retries))...)
	}
}

func (p *Pipeline) emit(ev Event) { p.events = append(p.events, ev) }

// flush returns the events of the current call and forgets them.
func (p *Pipeline) flush() []Event {
	out := p.events
	p.events = nil
	return out
}

// arrive puts e at the entrance of its stage; in SUPERSEDED mode it overtakes older executions
// waiting at the same entrance (a rollback is never overtaken: it repairs what failed).
func (p *Pipeline) arrive(e *Execution) {
	e.Waiting = true
	if p.Mode != Superseded && p.Mode != "" {
		return
	}
	for _, other := range p.Executions {
		if other != e && other.Waiting && !other.Status.Done() && !other.Rollback && other.Seq < e.Seq && other.Stage < len(other.Plan) &&
			other.Plan[other.Stage].Name == e.Plan[e.Stage].Name {
			p.finish(other, StatusSuperseded)
		}
	}
}

// advance moves every execution as far as the rules allow.
func (p *Pipeline) advance(ids IDs) {
	for _, e := range p.Executions {
		e.upgrade()
	}
	for progress := true; progress; {
		progress = false
		for _, e := range p.byAge() {
			progress = p.step(e, ids) || progress
		}
	}
	var keep []*Execution
	for _, e := range p.Executions {
		if p.forgettable(e) {
			p.Forgotten = append(p.Forgotten, e)
		} else {
			keep = append(keep, e)
		}
	}
	p.Executions = keep
}

// forgettable reports whether a finished execution can leave the state: it can unless it failed
// or stopped in a stage that no newer execution has entered since, where a retry may revive it.
func (p *Pipeline) forgettable(e *Execution) bool {
	if !e.Status.Done() {
		return false
	}
	if e.Status != Failed && e.Status != Stopped || e.Stage >= len(e.Plan) || e.Waiting {
		return true
	}
	return !p.lastIn(e, e.Plan[e.Stage].Name)
}

// lastIn reports whether e is the execution that entered the stage last. States stored before
// Entered existed fall back to the order executions started in.
func (p *Pipeline) lastIn(e *Execution, stage string) bool {
	if id, ok := p.Entered[stage]; ok {
		return id == e.ID
	}
	for _, other := range p.Executions {
		if other.Seq > e.Seq && other.reached(stage) {
			return false
		}
	}
	return true
}

func (p *Pipeline) byAge() []*Execution {
	out := slices.Clone(p.Executions)
	slices.SortFunc(out, func(a, b *Execution) int { return int(a.Seq - b.Seq) })
	return out
}

// step moves one execution one step, if it can, and reports whether it did.
func (p *Pipeline) step(e *Execution, ids IDs) bool {
	if e.Status.Done() {
		return false
	}
	if e.Waiting {
		if !p.admits(e) {
			return false
		}
		p.enter(e, ids)
		return true
	}
	if len(e.running()) > 0 || len(e.runningRules()) > 0 {
		return false
	}
	if e.Status == Stopping {
		p.endStage(e, Stopped)
		return true
	}
	if e.Phase != "" {
		kind := e.Phase
		met := true
		for _, name := range e.Plan[e.Stage].condition(kind).Rules {
			if r := e.Rules[e.Stage][ruleKey(kind, name)]; r == nil || r.Status != Succeeded {
				met = false
			}
		}
		status := Failed
		if met {
			status = Succeeded
		}
		p.conditionDone(e, met, status, ids)
		return true
	}
	// The group is over: every action of it has a final status.
	failed := false
	for _, name := range e.Plan[e.Stage].Groups[e.Group] {
		if a := e.Actions[e.Stage][name]; a == nil || a.Status != Succeeded {
			failed = true
		}
	}
	switch {
	case failed:
		p.stageFailed(e, ids)
	case e.Group+1 < len(e.Plan[e.Stage].Groups):
		e.Group++
		p.startGroup(e, ids, e.FailedOnly)
	case e.Plan[e.Stage].OnSuccess != nil && !e.Rollback:
		p.startRules(e, OnSuccess, ids)
	default:
		p.endStage(e, Succeeded)
	}
	return true
}

// enter admits e into the stage it waits at: its entry condition's rules start, or its first
// group of actions.
func (p *Pipeline) enter(e *Execution, ids IDs) {
	e.Waiting, e.Group, e.Phase, e.FailedOnly = false, 0, "", false
	if p.Entered == nil {
		p.Entered = map[string]string{}
	}
	p.Entered[e.Plan[e.Stage].Name] = e.ID
	e.StageStatus[e.Stage] = InProgress
	e.Actions[e.Stage] = map[string]*Action{}
	e.Rules[e.Stage] = map[string]*Rule{}
	p.emit(StageEntered{Execution: e.ID, Stage: e.Stage})
	if e.Plan[e.Stage].BeforeEntry != nil && !e.Rollback {
		p.startRules(e, BeforeEntry, ids)
		return
	}
	p.startGroup(e, ids, false)
}

// conditionDone moves e on once the condition it evaluates is decided: met (or overridden), or not.
func (p *Pipeline) conditionDone(e *Execution, met bool, status Status, ids IDs) {
	kind := e.Phase
	cond := e.Plan[e.Stage].condition(kind)
	e.Phase = ""
	p.emit(ConditionFinished{Execution: e.ID, Stage: e.Stage, Kind: kind, Status: status})
	switch kind {
	case BeforeEntry:
		switch {
		case met:
			p.startGroup(e, ids, false)
		case cond.Result == ResultSkip:
			p.endStage(e, Skipped)
		default:
			p.endStage(e, Failed)
		}
	case OnSuccess:
		switch {
		case met:
			p.endStage(e, Succeeded)
		case cond.Result == ResultRollback:
			p.endStage(e, Failed)
			p.emit(RollbackRequested{Execution: e.ID, Stage: e.Stage})
		default:
			p.endStage(e, Failed)
		}
	case OnFailure:
		if met {
			p.engage(e, cond, ids)
		} else {
			p.endStage(e, Failed)
		}
	}
}

// stageFailed handles a stage whose actions failed: its onFailure condition decides.
func (p *Pipeline) stageFailed(e *Execution, ids IDs) {
	cond := e.Plan[e.Stage].OnFailure
	switch {
	case cond == nil || e.Rollback:
		p.endStage(e, Failed)
	case len(cond.Rules) > 0:
		p.startRules(e, OnFailure, ids)
	default:
		p.engage(e, cond, ids)
	}
}

// engage carries out a failed stage's onFailure result.
func (p *Pipeline) engage(e *Execution, cond *Condition, ids IDs) {
	switch cond.Result {
	case ResultRetry:
		if e.Retries[e.Stage].Auto < MaxAutoRetries {
			p.retry(e, AutomatedRetry, cond.RetryFailedOnly, ids)
			return
		}
		p.endStage(e, Failed)
	case ResultRollback:
		p.endStage(e, Failed)
		p.emit(RollbackRequested{Execution: e.ID, Stage: e.Stage, Automated: true})
	case ResultSkip:
		p.endStage(e, Skipped)
	default:
		p.endStage(e, Failed)
	}
}

// retry runs e's current stage again, all its actions or those that did not succeed.
func (p *Pipeline) retry(e *Execution, trigger RetryTrigger, failedOnly bool, ids IDs) {
	idx := e.Stage
	r := &e.Retries[idx]
	if trigger == AutomatedRetry {
		r.Auto++
	} else {
		r.Manual++
	}
	r.Latest = trigger
	e.StageStatus[idx] = InProgress
	e.Group, e.Phase, e.FailedOnly = 0, "", failedOnly
	p.emit(StageRetried{Execution: e.ID, Stage: idx, Trigger: trigger, FailedOnly: failedOnly})
	for g, group := range e.Plan[idx].Groups {
		for _, name := range group {
			if a := e.Actions[idx][name]; a == nil || !failedOnly || a.Status != Succeeded {
				e.Group = g
				p.startGroup(e, ids, failedOnly)
				return
			}
		}
	}
}

// endStage gives e's current stage its final status and moves e on: to the next stage after a
// success or a skip (a rollback ends after its one stage), else to the end with that status.
func (p *Pipeline) endStage(e *Execution, status Status) {
	e.StageStatus[e.Stage] = status
	e.Phase = ""
	p.emit(StageFinished{Execution: e.ID, Stage: e.Stage, Status: status})
	if status != Succeeded && status != Skipped {
		p.finish(e, status)
		return
	}
	if e.Stage+1 < len(e.Plan) && !e.Rollback {
		e.Stage++
		p.arrive(e)
		return
	}
	e.Stage = len(e.Plan)
	p.finish(e, Succeeded)
}

// finish gives e its final status.
func (p *Pipeline) finish(e *Execution, status Status) {
	e.Status = status
	p.emit(ExecutionFinished{Execution: e.ID, Status: status})
}

// abandonRunning abandons e's in-flight actions and rules.
func (p *Pipeline) abandonRunning(e *Execution) {
	for _, a := range e.running() {
		a.Status = Abandoned
		p.emit(ActionAbandoned{Execution: e.ID, Action: *a})
	}
	for _, r := range e.runningRules() {
		r.Status = Abandoned
		p.emit(RuleAbandoned{Execution: e.ID, Rule: *r})
	}
}

// admits reports whether e may enter the stage it waits at.
func (p *Pipeline) admits(e *Execution) bool {
	stage := e.Plan[e.Stage].Name
	if p.Disabled[stage] {
		return false
	}
	if p.Mode == Parallel {
		return true
	}
	for _, other := range p.Executions {
		if other == e || other.Status.Done() {
			continue
		}
		if other.in(stage) {
			return false
		}
		waitsHere := other.Waiting && other.Stage < len(other.Plan) && other.Plan[other.Stage].Name == stage
		// A rollback waiting at the entrance goes first: it repairs what failed there.
		if waitsHere && other.Rollback && !e.Rollback {
			return false
		}
		// QUEUED: first in, first out at each entrance.
		if p.Mode == Queued && waitsHere && other.Seq < e.Seq && other.Rollback == e.Rollback {
			return false
		}
	}
	return true
}

// startGroup starts the actions of e's current group; with keepSucceeded, actions that already
// succeeded in this stage are not run again.
func (p *Pipeline) startGroup(e *Execution, ids IDs, keepSucceeded bool) {
	for _, name := range e.Plan[e.Stage].Groups[e.Group] {
		prev := e.Actions[e.Stage][name]
		if keepSucceeded && prev != nil && prev.Status == Succeeded {
			continue
		}
		attempt := 1
		if prev != nil {
			attempt = prev.Attempt + 1
		}
		a := &Action{ID: ids(), Stage: e.Stage, Name: name, Attempt: attempt, Status: InProgress}
		e.Actions[e.Stage][name] = a
		p.emit(ActionStarted{Execution: e.ID, Action: *a})
	}
}

// startRules starts the rules of the condition of the given kind of e's current stage.
func (p *Pipeline) startRules(e *Execution, kind Kind, ids IDs) {
	e.Phase = kind
	for _, name := range e.Plan[e.Stage].condition(kind).Rules {
		r := &Rule{ID: ids(), Stage: e.Stage, Kind: kind, Name: name, Status: InProgress}
		e.Rules[e.Stage][ruleKey(kind, name)] = r
		p.emit(RuleStarted{Execution: e.ID, Rule: *r})
	}
}
