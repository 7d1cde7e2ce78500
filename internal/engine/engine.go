// Package engine is the execution state machine of a pipeline: given the state of a pipeline's
// executions and an event (an execution starts, an action finishes, a stop, a retry, a transition
// disabled or enabled), it computes the new state and the effects to carry out (start an action,
// abandon one). It does no I/O and reads no clock or random source of its own, so the same state
// and event always give the same result: the caller persists the new state and the effects in one
// transaction, then carries the effects out, and a crash at any point replays to the same place.
//
// The rules are CodePipeline's: stages run in order; inside a stage, actions run in groups of
// ascending runOrder, a group's actions together; a failed action lets its group finish, starts no
// later group and fails the stage and the execution. Executions enter a stage according to the
// pipeline's execution mode (SUPERSEDED, QUEUED, PARALLEL) and the stage's inbound transition.
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

// Status is the status of an execution, a stage run or an action run, with AWS's names.
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
)

// Done reports whether s is final.
func (s Status) Done() bool {
	return s == Stopped || s == Succeeded || s == Failed || s == StatusSuperseded || s == Abandoned
}

// StagePlan is a stage as an execution runs it: its actions, grouped by runOrder.
type StagePlan struct {
	Name   string
	Groups [][]string
}

// Action is one run of an action.
type Action struct {
	ID      string
	Stage   int
	Name    string
	Attempt int
	Status  Status
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
	// Group is the index of the running runOrder group of Stage.
	Group int
	// StageStatus is the status of each stage this execution reached, by index.
	StageStatus []Status
	// Actions are the latest runs of the stage's actions, by action name, per stage.
	Actions []map[string]*Action
}

// Pipeline is the execution state of one pipeline.
type Pipeline struct {
	Mode Mode
	// Disabled holds the stages whose inbound transition is disabled.
	Disabled   map[string]bool
	Executions []*Execution
	NextSeq    int64
	// Forgotten collects the executions that finished and left the state during the calls since
	// the caller last cleared it, so that their final state can be recorded.
	Forgotten []*Execution `json:"-"`
}

// Effect is something the caller must carry out after persisting the new state.
type Effect interface{ effect() }

// StartAction asks for an action run to start.
type StartAction struct {
	Execution string
	Action    Action
}

// AbandonAction asks for an in-flight action run to be abandoned (its job cancelled, its process
// killed); no result of it counts any more.
type AbandonAction struct {
	Execution string
	Action    Action
}

func (StartAction) effect()   {}
func (AbandonAction) effect() {}

// IDs hands out action execution ids; the caller supplies them so that the engine stays pure.
type IDs func() string

// Start adds an execution of plan and returns the effects of letting it in.
func (p *Pipeline) Start(id string, plan []StagePlan, ids IDs) []Effect {
	p.NextSeq++
	e := &Execution{
		ID: id, Seq: p.NextSeq, Status: InProgress, Plan: plan, Waiting: true,
		StageStatus: make([]Status, len(plan)), Actions: make([]map[string]*Action, len(plan)),
	}
	p.Executions = append(p.Executions, e)
	p.arrive(e)
	return p.advance(ids)
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
func (p *Pipeline) ActionFinished(executionID, actionID string, ok bool, ids IDs) ([]Effect, error) {
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
	return p.advance(ids), nil
}

// Stop stops an execution: with abandon, its in-flight actions are abandoned and it stops at
// once; without, it is Stopping until they finish. It returns ErrNotStoppable or ErrDuplicateStop
// when AWS would refuse.
func (p *Pipeline) Stop(executionID string, abandon bool, ids IDs) ([]Effect, error) {
	e := p.Find(executionID)
	if e == nil || e.Status.Done() {
		return nil, ErrNotStoppable
	}
	if e.Status == Stopping && !abandon {
		return nil, ErrDuplicateStop
	}
	var effects []Effect
	if e.Waiting {
		e.Status = Stopped
		return append(effects, p.advance(ids)...), nil
	}
	e.Status = Stopping
	if abandon {
		for _, a := range e.running() {
			a.Status = Abandoned
			effects = append(effects, AbandonAction{Execution: e.ID, Action: *a})
		}
	}
	return append(effects, p.advance(ids)...), nil
}

// SetTransition enables or disables the inbound transition of a stage.
func (p *Pipeline) SetTransition(stage string, enabled bool, ids IDs) []Effect {
	if p.Disabled == nil {
		p.Disabled = map[string]bool{}
	}
	if enabled {
		delete(p.Disabled, stage)
	} else {
		p.Disabled[stage] = true
	}
	return p.advance(ids)
}

// Retry runs a failed or stopped stage of an execution again: every action, or only those that
// did not succeed. Only an execution still in the state can be retried: once a newer execution
// has entered the stage, the older one is forgotten (ErrNotLatest), and its history tells the
// caller why. A stage other than the one it failed or stopped in is ErrNotRetryable.
func (p *Pipeline) Retry(executionID, stage string, failedOnly bool, ids IDs) ([]Effect, error) {
	e := p.Find(executionID)
	if e == nil {
		return nil, ErrNotLatest
	}
	idx := slices.IndexFunc(e.Plan, func(s StagePlan) bool { return s.Name == stage })
	if idx < 0 || idx != e.Stage || e.Waiting || (e.StageStatus[idx] != Failed && e.StageStatus[idx] != Stopped) || !e.Status.Done() {
		return nil, ErrNotRetryable
	}
	e.Status = InProgress
	e.StageStatus[idx] = InProgress
	e.Group = 0
	var effects []Effect
	for g, group := range e.Plan[idx].Groups {
		rerun := false
		for _, name := range group {
			if a := e.Actions[idx][name]; a == nil || !failedOnly || a.Status != Succeeded {
				rerun = true
			}
		}
		if rerun {
			e.Group = g
			effects = append(effects, p.startGroup(e, ids, failedOnly)...)
			break
		}
	}
	return append(effects, p.advance(ids)...), nil
}

// Errors of the operations above, which the API turns into AWS's exceptions.
var (
	ErrNotStoppable  = fmt.Errorf("the execution is not running")
	ErrDuplicateStop = fmt.Errorf("the execution is already stopping")
	ErrNotRetryable  = fmt.Errorf("the stage cannot be retried")
	ErrNotLatest     = fmt.Errorf("the execution is no longer the latest in its stage")
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

// arrive puts e at the entrance of its stage; in SUPERSEDED mode it overtakes older executions
// waiting at the same entrance.
func (p *Pipeline) arrive(e *Execution) {
	e.Waiting = true
	if p.Mode != Superseded && p.Mode != "" {
		return
	}
	for _, other := range p.Executions {
		if other != e && other.Waiting && !other.Status.Done() && other.Seq < e.Seq && other.Stage < len(other.Plan) &&
			other.Plan[other.Stage].Name == e.Plan[e.Stage].Name {
			other.Status = StatusSuperseded
		}
	}
}

// advance moves every execution as far as the rules allow and returns the actions to start.
func (p *Pipeline) advance(ids IDs) []Effect {
	var effects []Effect
	for progress := true; progress; {
		progress = false
		for _, e := range p.byAge() {
			more, moved := p.step(e, ids)
			effects = append(effects, more...)
			progress = progress || moved
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
	return effects
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
	stage := e.Plan[e.Stage].Name
	for _, other := range p.Executions {
		if other.Seq > e.Seq && other.reached(stage) {
			return true
		}
	}
	return false
}

func (p *Pipeline) byAge() []*Execution {
	out := slices.Clone(p.Executions)
	slices.SortFunc(out, func(a, b *Execution) int { return int(a.Seq - b.Seq) })
	return out
}

// step moves one execution one step, if it can.
func (p *Pipeline) step(e *Execution, ids IDs) ([]Effect, bool) {
	if e.Status.Done() {
		return nil, false
	}
	if e.Waiting {
		if !p.admits(e) {
			return nil, false
		}
		e.Waiting, e.Group = false, 0
		e.StageStatus[e.Stage] = InProgress
		e.Actions[e.Stage] = map[string]*Action{}
		return p.startGroup(e, ids, false), true
	}
	if len(e.running()) > 0 {
		return nil, false
	}
	// The group is over: every action of it has a final status.
	failed := false
	for _, name := range e.Plan[e.Stage].Groups[e.Group] {
		if a := e.Actions[e.Stage][name]; a == nil || a.Status != Succeeded {
			failed = true
		}
	}
	switch {
	case e.Status == Stopping:
		e.StageStatus[e.Stage], e.Status = Stopped, Stopped
	case failed:
		e.StageStatus[e.Stage], e.Status = Failed, Failed
	case e.Group+1 < len(e.Plan[e.Stage].Groups):
		e.Group++
		return p.startGroup(e, ids, false), true
	case e.Stage+1 < len(e.Plan):
		e.StageStatus[e.Stage] = Succeeded
		e.Stage++
		p.arrive(e)
	default:
		e.StageStatus[e.Stage], e.Status = Succeeded, Succeeded
		e.Stage = len(e.Plan)
	}
	return nil, true
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
		// QUEUED: first in, first out at each entrance.
		if p.Mode == Queued && other.Waiting && other.Seq < e.Seq && other.Stage < len(other.Plan) && other.Plan[other.Stage].Name == stage {
			return false
		}
	}
	return true
}

// startGroup starts the actions of e's current group; with keepSucceeded, actions that already
// succeeded in this stage are not run again.
func (p *Pipeline) startGroup(e *Execution, ids IDs, keepSucceeded bool) []Effect {
	var effects []Effect
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
		effects = append(effects, StartAction{Execution: e.ID, Action: *a})
	}
	return effects
}
