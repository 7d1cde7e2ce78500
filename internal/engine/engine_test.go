package engine

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
)

// harness drives a Pipeline and keeps the actions and rules it was asked to start, and the events
// of the latest call.
type harness struct {
	t       *testing.T
	p       *Pipeline
	next    int
	started []ActionStarted
	rules   []RuleStarted
	last    []Event
}

func newHarness(t *testing.T, mode Mode) *harness {
	return &harness{t: t, p: &Pipeline{Mode: mode}}
}

func (h *harness) ids() string {
	h.next++
	return fmt.Sprintf("a%d", h.next)
}

func (h *harness) take(effects []Event) {
	h.last = effects
	for _, e := range effects {
		switch s := e.(type) {
		case ActionStarted:
			h.started = append(h.started, s)
		case RuleStarted:
			h.rules = append(h.rules, s)
		}
	}
}

// threeStages: Source(src), Build(compile; then test+lint together), Deploy(ship).
func threeStages() []StagePlan {
	return []StagePlan{
		{Name: "Source", Groups: [][]string{{"src"}}},
		{Name: "Build", Groups: [][]string{{"compile"}, {"lint", "test"}}},
		{Name: "Deploy", Groups: [][]string{{"ship"}}},
	}
}

func (h *harness) start(id string) {
	h.take(h.p.Start(id, threeStages(), h.ids))
}

// running finds the started, unfinished run of an action of an execution.
func (h *harness) running(exec, action string) ActionStarted {
	h.t.Helper()
	for i := len(h.started) - 1; i >= 0; i-- {
		s := h.started[i]
		if s.Execution == exec && s.Action.Name == action {
			return s
		}
	}
	h.t.Fatalf("%s/%s was never started; started: %v", exec, action, h.startedNames())
	return ActionStarted{}
}

func (h *harness) startedNames() []string {
	var out []string
	for _, s := range h.started {
		out = append(out, s.Execution+"/"+s.Action.Name)
	}
	return out
}

func (h *harness) finish(exec, action string, ok bool) {
	h.t.Helper()
	s := h.running(exec, action)
	effects, err := h.p.ActionFinished(exec, s.Action.ID, ok, h.ids)
	if err != nil {
		h.t.Fatal(err)
	}
	h.take(effects)
}

func (h *harness) status(exec string) Status {
	if e := h.p.Find(exec); e != nil {
		return e.Status
	}
	return "gone"
}

func (h *harness) wantStarted(want ...string) {
	h.t.Helper()
	if got := h.startedNames(); !slices.Equal(got, want) {
		h.t.Fatalf("started %v, want %v", got, want)
	}
}

func TestStagesAndRunOrderGroups(t *testing.T) {
	h := newHarness(t, Superseded)
	h.start("e1")
	h.wantStarted("e1/src")
	h.finish("e1", "src", true)
	h.wantStarted("e1/src", "e1/compile")
	h.finish("e1", "compile", true)
	h.wantStarted("e1/src", "e1/compile", "e1/lint", "e1/test")
	h.finish("e1", "test", true)
	h.wantStarted("e1/src", "e1/compile", "e1/lint", "e1/test")
	h.finish("e1", "lint", true)
	h.finish("e1", "ship", true)
	if got := h.status("e1"); got != "gone" {
		t.Fatalf("a succeeded execution stays in the state as %s", got)
	}
}

func TestFailureLetsItsGroupFinishAndStopsTheRest(t *testing.T) {
	h := newHarness(t, Superseded)
	h.start("e1")
	h.finish("e1", "src", true)
	h.finish("e1", "compile", true)
	h.finish("e1", "test", false)
	if h.status("e1") != InProgress {
		t.Fatal("the execution failed before the rest of its group finished")
	}
	h.finish("e1", "lint", true)
	e := h.p.Find("e1")
	if e.Status != Failed || e.StageStatus[1] != Failed || e.Stage != 1 {
		t.Fatalf("execution %s, stage %d %s", e.Status, e.Stage, e.StageStatus[1])
	}
	h.wantStarted("e1/src", "e1/compile", "e1/lint", "e1/test")
}

func TestSupersedeWithThreeOverlappingExecutions(t *testing.T) {
	h := newHarness(t, Superseded)
	h.start("e1")
	h.finish("e1", "src", true) // e1 is in Build
	h.start("e2")
	h.finish("e2", "src", true) // e2 waits at Build
	h.start("e3")
	h.finish("e3", "src", true) // e3 arrives at Build and overtakes e2
	if h.status("e2") != "gone" || h.status("e3") != InProgress {
		t.Fatalf("e2 %s, e3 %s", h.status("e2"), h.status("e3"))
	}
	h.finish("e1", "compile", true)
	h.finish("e1", "lint", true)
	h.finish("e1", "test", true) // e1 moves to Deploy; Build is free for e3
	h.running("e3", "compile")
	h.running("e1", "ship")
	for _, s := range h.started {
		if s.Execution == "e2" && s.Action.Name != "src" {
			t.Fatalf("the superseded e2 ran %s", s.Action.Name)
		}
	}
}

func TestQueuedRunsFirstInFirstOut(t *testing.T) {
	h := newHarness(t, Queued)
	h.start("e1")
	h.start("e2")
	h.start("e3")
	h.wantStarted("e1/src")
	h.finish("e1", "src", true)
	h.wantStarted("e1/src", "e2/src", "e1/compile")
	h.finish("e2", "src", true)
	h.finish("e1", "compile", true)
	h.finish("e1", "lint", true)
	h.finish("e1", "test", true)
	// e2 takes Build, e3 takes Source, nobody was superseded.
	h.running("e2", "compile")
	h.running("e3", "src")
	h.running("e1", "ship")
}

func TestDisabledTransitionHoldsExecutions(t *testing.T) {
	for _, mode := range []Mode{Queued, Superseded} {
		t.Run(string(mode), func(t *testing.T) {
			h := newHarness(t, mode)
			h.take(h.p.SetTransition("Build", false, h.ids))
			h.start("e1")
			h.finish("e1", "src", true)
			h.start("e2")
			h.finish("e2", "src", true)
			if mode == Queued && (h.status("e1") != InProgress || h.status("e2") != InProgress) {
				t.Fatal("QUEUED lost a held execution")
			}
			if mode == Superseded && h.status("e1") != "gone" {
				t.Fatal("SUPERSEDED kept the older held execution")
			}
			h.wantStarted("e1/src", "e2/src")
			h.take(h.p.SetTransition("Build", true, h.ids))
			if mode == Queued {
				h.running("e1", "compile")
				h.wantStarted("e1/src", "e2/src", "e1/compile")
			} else {
				h.wantStarted("e1/src", "e2/src", "e2/compile")
			}
		})
	}
}

func TestParallelExecutionsAreIndependent(t *testing.T) {
	h := newHarness(t, Parallel)
	h.start("e1")
	h.start("e2")
	h.finish("e1", "src", true)
	h.finish("e2", "src", true)
	h.running("e1", "compile")
	h.running("e2", "compile")
}

func TestStopWithoutAbandonWaitsForInFlightActions(t *testing.T) {
	h := newHarness(t, Superseded)
	h.start("e1")
	h.finish("e1", "src", true)
	h.take(must(h.p.Stop("e1", false, h.ids)))
	if h.status("e1") != Stopping {
		t.Fatalf("status %s, want Stopping", h.status("e1"))
	}
	if _, err := h.p.Stop("e1", false, h.ids); !errors.Is(err, ErrDuplicateStop) {
		t.Fatalf("second stop: %v", err)
	}
	h.finish("e1", "compile", true)
	if e := h.p.Find("e1"); e.Status != Stopped || e.StageStatus[1] != Stopped {
		t.Fatalf("after the action finished: %s / %s", e.Status, e.StageStatus[1])
	}
	h.wantStarted("e1/src", "e1/compile")
	if _, err := h.p.Stop("e1", true, h.ids); !errors.Is(err, ErrNotStoppable) {
		t.Fatalf("stopping a stopped execution: %v", err)
	}
}

func TestStopWithAbandon(t *testing.T) {
	h := newHarness(t, Superseded)
	h.start("e1")
	h.finish("e1", "src", true)
	events := must(h.p.Stop("e1", true, h.ids))
	if abandoned := eventsOf[ActionAbandoned](events); len(abandoned) != 1 || abandoned[0].Action.Name != "compile" {
		t.Fatalf("events %v", events)
	}
	if got := names(events); !slices.Equal(got, []string{"ExecutionStopping", "ActionAbandoned", "StageFinished", "ExecutionFinished"}) {
		t.Fatalf("events %v", got)
	}
	if h.status("e1") != Stopped {
		t.Fatalf("status %s, want Stopped at once", h.status("e1"))
	}
	// The abandoned run's late result changes nothing.
	h.finish("e1", "compile", true)
	if h.status("e1") != Stopped {
		t.Fatal("a late result revived an abandoned execution")
	}
}

func TestRetryFailedActionsOnly(t *testing.T) {
	h := newHarness(t, Superseded)
	h.start("e1")
	h.finish("e1", "src", true)
	h.finish("e1", "compile", true)
	h.finish("e1", "lint", true)
	h.finish("e1", "test", false)
	before := len(h.started)
	h.take(must(h.p.Retry("e1", "Build", true, h.ids)))
	retried := h.startedNames()[before:]
	if !slices.Equal(retried, []string{"e1/test"}) {
		t.Fatalf("retry started %v, want only the failed test", retried)
	}
	if a := h.running("e1", "test"); a.Action.Attempt != 2 {
		t.Fatalf("attempt %d, want 2", a.Action.Attempt)
	}
	h.finish("e1", "test", true)
	h.running("e1", "ship")
}

func TestRetryAllActionsAndItsRefusals(t *testing.T) {
	h := newHarness(t, Superseded)
	h.start("e1")
	h.finish("e1", "src", true)
	h.finish("e1", "compile", false)
	if _, err := h.p.Retry("e1", "Deploy", false, h.ids); !errors.Is(err, ErrNotRetryable) {
		t.Fatalf("retrying a stage not reached: %v", err)
	}
	h.start("e2")
	h.finish("e2", "src", true) // e2 enters the failed stage: e1 is no longer the latest there
	if _, err := h.p.Retry("e1", "Build", false, h.ids); !errors.Is(err, ErrNotLatest) {
		t.Fatalf("retried a stage a newer execution has run: %v", err)
	}
	h.finish("e2", "compile", false)
	before := len(h.started)
	h.take(must(h.p.Retry("e2", "Build", false, h.ids)))
	if got := h.startedNames()[before:]; !slices.Equal(got, []string{"e2/compile"}) {
		t.Fatalf("retry started %v", got)
	}
}

// eventsOf returns the events of type T.
func eventsOf[T Event](events []Event) []T {
	var out []T
	for _, e := range events {
		if t, ok := e.(T); ok {
			out = append(out, t)
		}
	}
	return out
}

// names returns the events' names, in order.
func names(events []Event) []string {
	var out []string
	for _, e := range events {
		out = append(out, e.Name())
	}
	return out
}

func must(effects []Event, err error) []Event {
	if err != nil {
		panic(err)
	}
	return effects
}

// fuzzPlans are the plans FuzzInvariants runs: the same stages, with and without conditions.
func fuzzPlans() [][]StagePlan {
	return [][]StagePlan{
		threeStages(),
		plan(func(s []StagePlan) { // entry conditions
			s[1].BeforeEntry = &Condition{Result: ResultSkip, Rules: []string{"gate"}}
			s[2].BeforeEntry = &Condition{Result: ResultFail, Rules: []string{"alarms", "window"}}
		}),
		plan(func(s []StagePlan) { // success conditions
			s[1].OnSuccess = &Condition{Result: ResultRollback, Rules: []string{"coverage"}}
			s[2].OnSuccess = &Condition{Result: ResultFail, Rules: []string{"smoke"}}
		}),
		plan(func(s []StagePlan) { // failure conditions without rules
			s[1].OnFailure = &Condition{Result: ResultRetry, RetryFailedOnly: true}
			s[2].OnFailure = &Condition{Result: ResultRollback}
		}),
		plan(func(s []StagePlan) { // failure conditions with rules, and every kind at once
			s[0].OnFailure = &Condition{Result: ResultSkip}
			s[1].BeforeEntry = &Condition{Result: ResultFail, Rules: []string{"gate"}}
			s[1].OnSuccess = &Condition{Result: ResultFail, Rules: []string{"coverage"}}
			s[1].OnFailure = &Condition{Result: ResultRetry, Rules: []string{"flaky"}}
			s[2].OnFailure = &Condition{Result: ResultRollback, Rules: []string{"alarm"}}
		}),
	}
}

// fuzzSeeds reach every kind of condition and result (TestFuzzSeedsReachConditions checks it).
// The first byte is the mode; see fuzzRun for the operations.
var fuzzSeeds = [][]byte{
	{0, 0, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9},
	{1, 0, 0, 0, 9, 2, 2, 2, 5, 5, 7, 3},
	{2, 0, 0, 3, 3, 4, 4, 6, 1, 1},
	// Entry conditions: Build's gate fails (skipped), Deploy's are met; then both met, and ship fails.
	{0, 12, 11, 23, 11, 11, 11, 11, 12, 11, 11, 11, 11, 11, 11, 11, 23, 11},
	// Success conditions: Build's unmet asks for a rollback, which runs; then met, and Deploy's overridden.
	{0, 24, 11, 11, 11, 11, 23, 10, 1, 11, 11, 11, 24, 11, 11, 11, 11, 11, 11, 9, 5},
	// Failure conditions without rules: retried once, then failed; Deploy's asks for a rollback.
	{1, 36, 11, 11, 11, 23, 23, 11, 23, 36, 11, 11, 11, 11, 23},
	// Every kind at once: Build's entry overridden, its failure condition met (retried) and met
	// again (spent), a manual retry of the failed actions, Deploy's failure condition unmet; a stop.
	{0, 48, 11, 9, 1, 11, 23, 11, 11, 11, 23, 11, 11, 5, 4, 11, 11, 23, 23, 48, 4},
	// QUEUED: a waiting execution stopped, a failure condition unmet, a rollback of the failed stage,
	// a refused stop and retry.
	{1, 48, 48, 11, 4, 11, 23, 23, 16, 11, 11, 23, 11, 58, 1, 11, 11, 17, 28},
	// SUPERSEDED: e2 waiting at Build is overtaken by e3, and e3 by the rollback r4, which e5 does
	// not overtake.
	{0, 0, 11, 0, 1, 0, 1, 10, 1, 0, 1, 11, 11, 11, 11, 11, 11, 11},
}

// FuzzInvariants drives a pipeline with an arbitrary sequence of starts of plans with and without
// conditions, rollbacks, action and rule results, stops, retries, overrides and transition
// changes, and checks after every call the invariants checkCall lists.
func FuzzInvariants(f *testing.F) {
	for _, seed := range fuzzSeeds {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, ops []byte) { fuzzRun(t, ops) })
}

// fuzzRun runs the operations ops encodes and returns every event. ops[0] chooses the mode; then
// each byte b is an operation b%12 with the argument b/12, some taking the next byte as well:
//
//	0  start an execution of fuzzPlans()[arg]
//	1  a started action succeeds (the arg-th latest started, maybe no longer running); 2 too; 3 fails
//	4  stop the arg/2-th latest execution, abandoning if arg is even
//	5  retry the arg-th latest execution; next byte n: stage n%3, failed actions only if n/3 is odd
//	6  set the transition of stage arg%3: enabled if arg/3 is even
//	7  a started rule succeeds (the arg-th latest started); 8 fails
//	9  override the arg-th latest execution; next byte n: stage n%3, kind n/3%3
//	10 start a rollback of fuzzPlans()[arg]; next byte n: stage n%3
//	11 the first running action or rule, in the state's order, succeeds if arg is even, else fails
func fuzzRun(t *testing.T, ops []byte) []Event {
	if len(ops) == 0 {
		return nil
	}
	// Longer sequences find little more and slow the fuzzer down.
	ops = ops[:min(len(ops), 256)]
	h := newHarness(t, []Mode{Superseded, Queued, Parallel}[int(ops[0])%3])
	in := ops[1:]
	next := func() int {
		if len(in) == 0 {
			return 0
		}
		b := in[0]
		in = in[1:]
		return int(b)
	}
	plans := fuzzPlans()
	stages := []string{"Source", "Build", "Deploy"}
	kinds := []Kind{BeforeEntry, OnSuccess, OnFailure}
	var execs []string
	latest := func(n int) string { return execs[len(execs)-1-n%len(execs)] }
	rollbacks := map[string]int{}
	var all []Event
	var calls []string
	for len(in) > 0 {
		b := next()
		arg := b / 12
		before := map[string]string{}
		for _, e := range h.p.Executions {
			before[e.ID] = state(t, e)
		}
		var events []Event
		var what string
		switch b % 12 {
		case 0:
			id := fmt.Sprintf("e%d", len(execs)+1)
			execs = append(execs, id)
			what = fmt.Sprintf("Start(%s, plan %d)", id, arg%len(plans))
			events = h.p.Start(id, plans[arg%len(plans)], h.ids)
		case 1, 2, 3:
			if len(h.started) > 0 {
				s := h.started[len(h.started)-1-arg%len(h.started)]
				what = fmt.Sprintf("ActionFinished(%s, %s %s, %v)", s.Execution, s.Action.ID, s.Action.Name, b%12 != 3)
				events, _ = h.p.ActionFinished(s.Execution, s.Action.ID, b%12 != 3, h.ids)
			}
		case 4:
			if len(execs) > 0 {
				what = fmt.Sprintf("Stop(%s, %v)", latest(arg/2), arg%2 == 0)
				events, _ = h.p.Stop(latest(arg/2), arg%2 == 0, h.ids)
			}
		case 5:
			n := next()
			if len(execs) > 0 {
				what = fmt.Sprintf("Retry(%s, %s, %v)", latest(arg), stages[n%3], n/3%2 == 1)
				events, _ = h.p.Retry(latest(arg), stages[n%3], n/3%2 == 1, h.ids)
			}
		case 6:
			what = fmt.Sprintf("SetTransition(%s, %v)", stages[arg%3], arg/3%2 == 0)
			events = h.p.SetTransition(stages[arg%3], arg/3%2 == 0, h.ids)
		case 7, 8:
			if len(h.rules) > 0 {
				r := h.rules[len(h.rules)-1-arg%len(h.rules)]
				what = fmt.Sprintf("RuleFinished(%s, %s %s, %v)", r.Execution, r.Rule.ID, r.Rule.Name, b%12 == 7)
				events, _ = h.p.RuleFinished(r.Execution, r.Rule.ID, b%12 == 7, h.ids)
			}
		case 9:
			n := next()
			if len(execs) > 0 {
				what = fmt.Sprintf("Override(%s, %s, %s)", latest(arg), stages[n%3], kinds[n/3%3])
				events, _ = h.p.Override(latest(arg), stages[n%3], kinds[n/3%3], h.ids)
			}
		case 10:
			n := next()
			id := fmt.Sprintf("r%d", len(execs)+1)
			execs = append(execs, id)
			rollbacks[id] = n % 3
			what = fmt.Sprintf("StartRollback(%s, plan %d, %d)", id, arg%len(plans), n%3)
			events, _ = h.p.StartRollback(id, plans[arg%len(plans)], n%3, h.ids)
		case 11:
			ok := arg%2 == 0
		find:
			for _, e := range h.p.Executions {
				if e.Status.Done() {
					continue
				}
				for _, a := range e.running() {
					what = fmt.Sprintf("ActionFinished(%s, %s %s, %v)", e.ID, a.ID, a.Name, ok)
					events, _ = h.p.ActionFinished(e.ID, a.ID, ok, h.ids)
					break find
				}
				for _, r := range e.runningRules() {
					what = fmt.Sprintf("RuleFinished(%s, %s %s, %v)", e.ID, r.ID, r.Name, ok)
					events, _ = h.p.RuleFinished(e.ID, r.ID, ok, h.ids)
					break find
				}
			}
		}
		h.take(events)
		all = append(all, events...)
		calls = append(calls, fmt.Sprintf("%s -> %v", what, names(events)))
		checkCall(t, h, calls, before, events, rollbacks)
	}
	return all
}

// checkCall checks the state and events of a call, given each execution's JSON before it:
// every execution that changed is named by an event; every one that left the state is in
// Forgotten, finished, and named by an event unless it had failed or stopped before the call;
// outside PARALLEL mode at most one unfinished execution is inside a stage; no stage is retried
// automatically more than MaxAutoRetries times; a succeeded execution is past its last stage; a
// rollback execution enters and starts actions in its one stage only and never starts rules; an
// action or rule starts only in the stage, and for a rule the condition, that its execution is
// running.
func checkCall(t *testing.T, h *harness, calls []string, before map[string]string, events []Event, rollbacks map[string]int) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("%s, in %s mode after\n\t%s", fmt.Sprintf(format, args...), h.p.Mode, strings.Join(calls, "\n\t"))
	}
	named := map[string]bool{}
	for _, ev := range events {
		named[ev.ExecutionID()] = true
	}
	forgotten := map[string]*Execution{}
	for _, e := range h.p.Forgotten {
		if !e.Status.Done() {
			fail("%s was forgotten as %s", e.ID, e.Status)
		}
		forgotten[e.ID] = e
	}
	h.p.Forgotten = nil
	present := map[string]bool{}
	for _, e := range h.p.Executions {
		present[e.ID] = true
		if before[e.ID] != state(t, e) && !named[e.ID] {
			fail("%s changed and no event names it", e.ID)
		}
	}
	for id, was := range before {
		if present[id] {
			continue
		}
		if forgotten[id] == nil {
			fail("%s left the state without being forgotten", id)
		}
		// An execution that failed or stopped earlier leaves, unchanged and unnamed, once a newer
		// one enters its stage: only Forgotten reports it.
		if !named[id] && (state(t, forgotten[id]) != was || forgotten[id].Status != Failed && forgotten[id].Status != Stopped) {
			fail("%s left the state and no event names it", id)
		}
	}

	inside := map[string]string{}
	for _, e := range append(slices.Clone(h.p.Executions), slices.Collect(maps.Values(forgotten))...) {
		for i, r := range e.Retries {
			if r.Auto > MaxAutoRetries {
				fail("%s retried stage %d automatically %d times", e.ID, i, r.Auto)
			}
		}
		if e.Status == Succeeded && e.Stage != len(e.Plan) {
			fail("%s succeeded at stage %d", e.ID, e.Stage)
		}
		if stage, ok := rollbacks[e.ID]; ok {
			for i, s := range e.StageStatus {
				if s != "" && i != stage {
					fail("rollback %s of stage %d reached stage %d", e.ID, stage, i)
				}
			}
		}
		if h.p.Mode == Parallel || e.Status.Done() || e.Waiting || e.Stage >= len(e.Plan) {
			continue
		}
		stage := e.Plan[e.Stage].Name
		if other, busy := inside[stage]; busy {
			fail("%s and %s are both inside %s", other, e.ID, stage)
		}
		inside[stage] = e.ID
	}

	running := func(id string, stage int) *Execution {
		t.Helper()
		e := h.p.Find(id)
		if e == nil || e.Status.Done() || e.Waiting || e.Stage != stage {
			fail("%s started a run in stage %d while not running in it", id, stage)
		}
		return e
	}
	for _, ev := range events {
		switch ev := ev.(type) {
		case StageEntered:
			if stage, ok := rollbacks[ev.Execution]; ok && ev.Stage != stage {
				fail("rollback %s of stage %d entered stage %d", ev.Execution, stage, ev.Stage)
			}
		case ActionStarted:
			if stage, ok := rollbacks[ev.Execution]; ok && ev.Action.Stage != stage {
				fail("rollback %s of stage %d started %s in stage %d", ev.Execution, stage, ev.Action.Name, ev.Action.Stage)
			}
			e := running(ev.Execution, ev.Action.Stage)
			if a := e.Actions[e.Stage][ev.Action.Name]; a == nil || a.ID != ev.Action.ID || a.Status != InProgress || e.Phase != "" {
				fail("%s started %s, which is not its running action (phase %q)", e.ID, ev.Action.Name, e.Phase)
			}
		case RuleStarted:
			if _, ok := rollbacks[ev.Execution]; ok {
				fail("rollback %s started rule %s", ev.Execution, ev.Rule.Name)
			}
			e := running(ev.Execution, ev.Rule.Stage)
			c := e.Plan[e.Stage].condition(ev.Rule.Kind)
			if e.Phase != ev.Rule.Kind || c == nil || !slices.Contains(c.Rules, ev.Rule.Name) {
				fail("%s started rule %s/%s while evaluating %q", e.ID, ev.Rule.Kind, ev.Rule.Name, e.Phase)
			}
			if r := e.Rules[e.Stage][ruleKey(ev.Rule.Kind, ev.Rule.Name)]; r == nil || r.ID != ev.Rule.ID || r.Status != InProgress {
				fail("%s started rule %s, which is not its running rule", e.ID, ev.Rule.Name)
			}
		}
	}
}

// TestFuzzSeedsReachConditions checks that FuzzInvariants' seeds exercise the conditions.
func TestFuzzSeedsReachConditions(t *testing.T) {
	seen := map[string]bool{}
	for _, seed := range fuzzSeeds {
		for _, ev := range fuzzRun(t, seed) {
			seen[ev.Name()] = true
			switch ev := ev.(type) {
			case ConditionFinished:
				seen[fmt.Sprintf("%s %s", ev.Kind, ev.Status)] = true
			case StageFinished:
				seen["Stage "+string(ev.Status)] = true
			case StageRetried:
				seen[string(ev.Trigger)] = true
			case RollbackRequested:
				seen[fmt.Sprintf("RollbackRequested automated=%v", ev.Automated)] = true
			case ExecutionStarted:
				if ev.Rollback {
					seen["rollback started"] = true
				}
			case ExecutionFinished:
				seen["Execution "+string(ev.Status)] = true
			}
		}
	}
	for _, want := range []string{
		"RuleStarted", "RuleFinished", "RuleAbandoned", "ActionAbandoned",
		"BEFORE_ENTRY Succeeded", "BEFORE_ENTRY Failed", "BEFORE_ENTRY Overridden",
		"ON_SUCCESS Succeeded", "ON_SUCCESS Failed", "ON_SUCCESS Overridden",
		"ON_FAILURE Succeeded", "ON_FAILURE Failed",
		"Stage Skipped", "AutomatedStageRetry", "ManualStageRetry",
		"RollbackRequested automated=false", "RollbackRequested automated=true", "rollback started",
		"Execution Succeeded", "Execution Failed", "Execution Stopped", "Execution Superseded",
	} {
		if !seen[want] {
			t.Errorf("no seed reaches %s", want)
		}
	}
}
