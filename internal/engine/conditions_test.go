package engine

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"
)

// plan returns threeStages with change applied to its stages: Source(src), Build(compile; then
// lint+test together), Deploy(ship).
func plan(change func(s []StagePlan)) []StagePlan {
	s := threeStages()
	change(s)
	return s
}

func (h *harness) startPlan(id string, plan []StagePlan) {
	h.take(h.p.Start(id, plan, h.ids))
}

// rule finds the latest run of a rule of a condition of an execution.
func (h *harness) rule(exec string, kind Kind, name string) RuleStarted {
	h.t.Helper()
	for i := len(h.rules) - 1; i >= 0; i-- {
		r := h.rules[i]
		if r.Execution == exec && r.Rule.Kind == kind && r.Rule.Name == name {
			return r
		}
	}
	h.t.Fatalf("rule %s/%s/%s was never started", exec, kind, name)
	return RuleStarted{}
}

func (h *harness) finishRule(exec string, kind Kind, name string, ok bool) {
	h.t.Helper()
	r := h.rule(exec, kind, name)
	h.take(must(h.p.RuleFinished(exec, r.Rule.ID, ok, h.ids)))
}

// exec returns an execution, in the state or forgotten since.
func (h *harness) exec(id string) *Execution {
	h.t.Helper()
	if e := h.p.Find(id); e != nil {
		return e
	}
	for i := len(h.p.Forgotten) - 1; i >= 0; i-- {
		if h.p.Forgotten[i].ID == id {
			return h.p.Forgotten[i]
		}
	}
	h.t.Fatalf("no execution %s", id)
	return nil
}

// startedSince returns the names of the actions started since the harness had n of them.
func (h *harness) startedSince(n int) []string {
	return h.startedNames()[n:]
}

func (h *harness) wantLast(want ...string) {
	h.t.Helper()
	if got := names(h.last); !slices.Equal(got, want) {
		h.t.Fatalf("events %v, want %v", got, want)
	}
}

// wantEnd checks an execution's status and the status of the stage it ended in (or is in).
func (h *harness) wantEnd(id string, status Status, stage int, stageStatus Status) {
	h.t.Helper()
	e := h.exec(id)
	if e.Status != status || e.StageStatus[stage] != stageStatus {
		h.t.Fatalf("%s: execution %s, stage %d %s; want %s, %s", id, e.Status, stage, e.StageStatus[stage], status, stageStatus)
	}
}

// state is an execution's JSON, less its plan, which the engine only reads.
func state(t *testing.T, e *Execution) string {
	c := *e
	c.Plan = nil
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// --- Entry conditions ---

func entryGate(result Result) []StagePlan {
	return plan(func(s []StagePlan) {
		s[1].BeforeEntry = &Condition{Result: result, Rules: []string{"change-window", "no-alarms"}}
	})
}

func TestEntryConditionRulesRunBeforeTheActions(t *testing.T) {
	h := newHarness(t, Superseded)
	h.startPlan("e1", entryGate(ResultFail))
	h.finish("e1", "src", true)
	h.wantLast("ActionFinished", "StageFinished", "StageEntered", "RuleStarted", "RuleStarted")
	for _, r := range eventsOf[RuleStarted](h.last) {
		if r.Rule.Stage != 1 || r.Rule.Kind != BeforeEntry || r.Rule.Status != InProgress {
			t.Fatalf("rule run %+v", r.Rule)
		}
	}
	if e := h.exec("e1"); e.Phase != BeforeEntry || e.StageStatus[1] != InProgress || e.Waiting {
		t.Fatalf("phase %q, stage %s, waiting %v", e.Phase, e.StageStatus[1], e.Waiting)
	}
	h.finishRule("e1", BeforeEntry, "change-window", true)
	h.wantStarted("e1/src")
	h.finishRule("e1", BeforeEntry, "no-alarms", true)
	h.wantLast("RuleFinished", "ConditionFinished", "ActionStarted")
	if c := eventsOf[ConditionFinished](h.last)[0]; c.Kind != BeforeEntry || c.Status != Succeeded || c.Stage != 1 {
		t.Fatalf("condition %+v", c)
	}
	h.wantStarted("e1/src", "e1/compile")
	if e := h.exec("e1"); e.Phase != "" {
		t.Fatalf("phase %q while the actions run", e.Phase)
	}
}

func TestEntryConditionFailFailsTheStageWithoutRunningIt(t *testing.T) {
	h := newHarness(t, Superseded)
	h.startPlan("e1", entryGate(ResultFail))
	h.finish("e1", "src", true)
	h.finishRule("e1", BeforeEntry, "change-window", false)
	// The condition is decided once all its rules have finished.
	if h.status("e1") != InProgress {
		t.Fatalf("status %s before the other rule finished", h.status("e1"))
	}
	h.finishRule("e1", BeforeEntry, "no-alarms", true)
	h.wantLast("RuleFinished", "ConditionFinished", "StageFinished", "ExecutionFinished")
	h.wantEnd("e1", Failed, 1, Failed)
	h.wantStarted("e1/src")
	if c := eventsOf[ConditionFinished](h.last)[0]; c.Status != Failed {
		t.Fatalf("condition %+v", c)
	}
	// No action ran in the stage, so there is nothing to retry.
	if _, err := h.p.Retry("e1", "Build", false, h.ids); !errors.Is(err, ErrNotRetryable) {
		t.Fatalf("retrying a stage its entry condition failed: %v", err)
	}
	if _, err := h.p.Retry("e1", "Build", true, h.ids); !errors.Is(err, ErrNotRetryable) {
		t.Fatalf("retrying the failed actions of a stage its entry condition failed: %v", err)
	}
}

func TestEntryConditionSkipPassesTheStageBy(t *testing.T) {
	h := newHarness(t, Superseded)
	h.startPlan("e1", entryGate(ResultSkip))
	h.finish("e1", "src", true)
	h.finishRule("e1", BeforeEntry, "change-window", true)
	h.finishRule("e1", BeforeEntry, "no-alarms", false)
	if f := eventsOf[StageFinished](h.last); len(f) != 1 || f[0].Stage != 1 || f[0].Status != Skipped {
		t.Fatalf("stage finished %+v", f)
	}
	h.wantStarted("e1/src", "e1/ship")
	h.wantEnd("e1", InProgress, 1, Skipped)
	h.finish("e1", "ship", true)
	h.wantEnd("e1", Succeeded, 1, Skipped)
	if e := h.exec("e1"); e.Stage != 3 || e.StageStatus[2] != Succeeded {
		t.Fatalf("stage %d, Deploy %s", e.Stage, e.StageStatus[2])
	}
}

func TestEntryConditionSkipOnTheLastStageEndsTheExecution(t *testing.T) {
	h := newHarness(t, Superseded)
	h.startPlan("e1", plan(func(s []StagePlan) {
		s[2].BeforeEntry = &Condition{Result: ResultSkip, Rules: []string{"business-hours"}}
	}))
	h.finish("e1", "src", true)
	h.finish("e1", "compile", true)
	h.finish("e1", "lint", true)
	h.finish("e1", "test", true)
	h.finishRule("e1", BeforeEntry, "business-hours", false)
	h.wantLast("RuleFinished", "ConditionFinished", "StageFinished", "ExecutionFinished")
	if f := eventsOf[ExecutionFinished](h.last)[0]; f.Status != Succeeded {
		t.Fatalf("finished %+v", f)
	}
	e := h.exec("e1")
	if e.Status != Succeeded || e.Stage != 3 || e.StageStatus[2] != Skipped {
		t.Fatalf("execution %s at stage %d, Deploy %s", e.Status, e.Stage, e.StageStatus[2])
	}
	h.wantStarted("e1/src", "e1/compile", "e1/lint", "e1/test")
}

// --- Success conditions ---

func successCheck(result Result) []StagePlan {
	return plan(func(s []StagePlan) {
		s[1].OnSuccess = &Condition{Result: result, Rules: []string{"coverage"}}
	})
}

// buildPassed drives an execution through Source and Build's actions.
func (h *harness) buildPassed(id string) {
	h.t.Helper()
	h.finish(id, "src", true)
	h.finish(id, "compile", true)
	h.finish(id, "lint", true)
	h.finish(id, "test", true)
}

func TestSuccessConditionMetMovesOn(t *testing.T) {
	h := newHarness(t, Superseded)
	h.startPlan("e1", successCheck(ResultFail))
	h.buildPassed("e1")
	h.wantLast("ActionFinished", "RuleStarted")
	if r := h.rule("e1", OnSuccess, "coverage"); r.Rule.Stage != 1 {
		t.Fatalf("rule %+v", r.Rule)
	}
	if e := h.exec("e1"); e.Phase != OnSuccess || e.StageStatus[1] != InProgress {
		t.Fatalf("phase %q, Build %s", e.Phase, e.StageStatus[1])
	}
	h.finishRule("e1", OnSuccess, "coverage", true)
	h.wantLast("RuleFinished", "ConditionFinished", "StageFinished", "StageEntered", "ActionStarted")
	h.wantEnd("e1", InProgress, 1, Succeeded)
	h.running("e1", "ship")
}

func TestSuccessConditionUnmetFails(t *testing.T) {
	h := newHarness(t, Superseded)
	h.startPlan("e1", successCheck(ResultFail))
	h.buildPassed("e1")
	h.finishRule("e1", OnSuccess, "coverage", false)
	h.wantLast("RuleFinished", "ConditionFinished", "StageFinished", "ExecutionFinished")
	h.wantEnd("e1", Failed, 1, Failed)
	h.wantStarted("e1/src", "e1/compile", "e1/lint", "e1/test")
}

func TestSuccessConditionUnmetRollbackAsksForARollback(t *testing.T) {
	h := newHarness(t, Superseded)
	h.startPlan("e1", successCheck(ResultRollback))
	h.buildPassed("e1")
	h.finishRule("e1", OnSuccess, "coverage", false)
	h.wantEnd("e1", Failed, 1, Failed)
	r := eventsOf[RollbackRequested](h.last)
	if len(r) != 1 || r[0] != (RollbackRequested{Execution: "e1", Stage: 1, Automated: false}) {
		t.Fatalf("rollback requested %+v", r)
	}
	h.wantStarted("e1/src", "e1/compile", "e1/lint", "e1/test")
}

// --- Failure conditions without rules ---

func onFailure(c Condition) []StagePlan {
	return plan(func(s []StagePlan) { s[1].OnFailure = &c })
}

func TestOnFailureRetryFailedActionsOnce(t *testing.T) {
	h := newHarness(t, Superseded)
	h.startPlan("e1", onFailure(Condition{Result: ResultRetry, RetryFailedOnly: true}))
	h.finish("e1", "src", true)
	h.finish("e1", "compile", true)
	h.finish("e1", "lint", true)
	n := len(h.started)
	h.finish("e1", "test", false)
	h.wantLast("ActionFinished", "StageRetried", "ActionStarted")
	if r := eventsOf[StageRetried](h.last)[0]; r != (StageRetried{Execution: "e1", Stage: 1, Trigger: AutomatedRetry, FailedOnly: true}) {
		t.Fatalf("retried %+v", r)
	}
	if got := h.startedSince(n); !slices.Equal(got, []string{"e1/test"}) {
		t.Fatalf("the retry started %v, want the failed test only", got)
	}
	if a := h.running("e1", "test"); a.Action.Attempt != 2 {
		t.Fatalf("attempt %d", a.Action.Attempt)
	}
	e := h.exec("e1")
	if e.Retries[1] != (Retries{Auto: 1, Latest: AutomatedRetry}) || e.Status != InProgress || e.StageStatus[1] != InProgress {
		t.Fatalf("retries %+v, execution %s, Build %s", e.Retries[1], e.Status, e.StageStatus[1])
	}
	// The second failure is final.
	h.finish("e1", "test", false)
	h.wantLast("ActionFinished", "StageFinished", "ExecutionFinished")
	h.wantEnd("e1", Failed, 1, Failed)
	if e := h.exec("e1"); e.Retries[1].Auto != 1 {
		t.Fatalf("retries %+v", e.Retries[1])
	}
}

func TestOnFailureRetryAllActionsRunsTheStageFromItsFirstGroup(t *testing.T) {
	h := newHarness(t, Superseded)
	h.startPlan("e1", onFailure(Condition{Result: ResultRetry}))
	h.finish("e1", "src", true)
	h.finish("e1", "compile", true)
	h.finish("e1", "lint", true)
	n := len(h.started)
	h.finish("e1", "test", false)
	if r := eventsOf[StageRetried](h.last); len(r) != 1 || r[0].Trigger != AutomatedRetry || r[0].FailedOnly {
		t.Fatalf("retried %+v", r)
	}
	if got := h.startedSince(n); !slices.Equal(got, []string{"e1/compile"}) {
		t.Fatalf("the retry started %v, want the first group", got)
	}
	h.finish("e1", "compile", true)
	if got := h.startedSince(n); !slices.Equal(got, []string{"e1/compile", "e1/lint", "e1/test"}) {
		t.Fatalf("the retry started %v, want every action", got)
	}
	h.finish("e1", "lint", true)
	h.finish("e1", "test", true)
	h.wantEnd("e1", InProgress, 1, Succeeded)
	h.running("e1", "ship")
	if e := h.exec("e1"); e.Retries[1] != (Retries{Auto: 1, Latest: AutomatedRetry}) {
		t.Fatalf("retries %+v", e.Retries[1])
	}
}

func TestOnFailureRollbackFailsAndAsksForAnAutomatedRollback(t *testing.T) {
	h := newHarness(t, Superseded)
	h.startPlan("e1", onFailure(Condition{Result: ResultRollback}))
	h.finish("e1", "src", true)
	h.finish("e1", "compile", false)
	h.wantLast("ActionFinished", "StageFinished", "ExecutionFinished", "RollbackRequested")
	h.wantEnd("e1", Failed, 1, Failed)
	if r := eventsOf[RollbackRequested](h.last)[0]; r != (RollbackRequested{Execution: "e1", Stage: 1, Automated: true}) {
		t.Fatalf("rollback requested %+v", r)
	}
}

func TestOnFailureSkipGoesOn(t *testing.T) {
	h := newHarness(t, Superseded)
	h.startPlan("e1", onFailure(Condition{Result: ResultSkip}))
	h.finish("e1", "src", true)
	h.finish("e1", "compile", false)
	h.wantEnd("e1", InProgress, 1, Skipped)
	h.finish("e1", "ship", true)
	h.wantEnd("e1", Succeeded, 1, Skipped)
}

func TestOnFailureFailFails(t *testing.T) {
	h := newHarness(t, Superseded)
	h.startPlan("e1", onFailure(Condition{Result: ResultFail}))
	h.finish("e1", "src", true)
	h.finish("e1", "compile", false)
	h.wantLast("ActionFinished", "StageFinished", "ExecutionFinished")
	h.wantEnd("e1", Failed, 1, Failed)
}

// --- Failure conditions with rules ---

func TestOnFailureRulesMetEngageTheResult(t *testing.T) {
	h := newHarness(t, Superseded)
	h.startPlan("e1", onFailure(Condition{Result: ResultRetry, Rules: []string{"flaky"}}))
	h.finish("e1", "src", true)
	n := len(h.started)
	h.finish("e1", "compile", false)
	h.wantLast("ActionFinished", "RuleStarted")
	if e := h.exec("e1"); e.Phase != OnFailure || e.Status != InProgress || e.StageStatus[1] != InProgress {
		t.Fatalf("phase %q, execution %s, Build %s", e.Phase, e.Status, e.StageStatus[1])
	}
	h.finishRule("e1", OnFailure, "flaky", true)
	h.wantLast("RuleFinished", "ConditionFinished", "StageRetried", "ActionStarted")
	if got := h.startedSince(n); !slices.Equal(got, []string{"e1/compile"}) {
		t.Fatalf("started %v", got)
	}
	if e := h.exec("e1"); e.Retries[1].Auto != 1 {
		t.Fatalf("retries %+v", e.Retries[1])
	}
}

func TestOnFailureRulesUnmetFail(t *testing.T) {
	h := newHarness(t, Superseded)
	h.startPlan("e1", onFailure(Condition{Result: ResultRollback, Rules: []string{"alarm"}}))
	h.finish("e1", "src", true)
	h.finish("e1", "compile", false)
	h.finishRule("e1", OnFailure, "alarm", false)
	h.wantLast("RuleFinished", "ConditionFinished", "StageFinished", "ExecutionFinished")
	h.wantEnd("e1", Failed, 1, Failed)
}

// --- Manual retries ---

func TestManualRetryCountsAndDoesNotRenewTheAutomatedOne(t *testing.T) {
	h := newHarness(t, Superseded)
	h.startPlan("e1", onFailure(Condition{Result: ResultRetry}))
	h.finish("e1", "src", true)
	h.finish("e1", "compile", false) // retried automatically
	h.finish("e1", "compile", false) // final
	h.wantEnd("e1", Failed, 1, Failed)
	h.take(must(h.p.Retry("e1", "Build", false, h.ids)))
	h.wantLast("StageRetried", "ActionStarted")
	if r := eventsOf[StageRetried](h.last)[0]; r.Trigger != ManualRetry {
		t.Fatalf("retried %+v", r)
	}
	e := h.exec("e1")
	if e.Retries[1] != (Retries{Auto: 1, Manual: 1, Latest: ManualRetry}) || e.Status != InProgress {
		t.Fatalf("retries %+v, execution %s", e.Retries[1], e.Status)
	}
	if a := h.running("e1", "compile"); a.Action.Attempt != 3 {
		t.Fatalf("attempt %d", a.Action.Attempt)
	}
	// The automated retry was spent: this failure is final.
	h.finish("e1", "compile", false)
	h.wantLast("ActionFinished", "StageFinished", "ExecutionFinished")
	h.take(must(h.p.Retry("e1", "Build", true, h.ids)))
	if e := h.exec("e1"); e.Retries[1] != (Retries{Auto: 1, Manual: 2, Latest: ManualRetry}) {
		t.Fatalf("retries %+v", e.Retries[1])
	}
}

// --- Overrides ---

func TestOverrideEntryConditionAbandonsItsRulesAndStartsTheActions(t *testing.T) {
	h := newHarness(t, Superseded)
	h.startPlan("e1", entryGate(ResultFail))
	h.finish("e1", "src", true)
	h.finishRule("e1", BeforeEntry, "change-window", true)
	h.take(must(h.p.Override("e1", "Build", BeforeEntry, h.ids)))
	h.wantLast("RuleAbandoned", "ConditionFinished", "ActionStarted")
	if a := eventsOf[RuleAbandoned](h.last)[0]; a.Rule.Name != "no-alarms" || a.Rule.Status != Abandoned {
		t.Fatalf("abandoned %+v", a.Rule)
	}
	if c := eventsOf[ConditionFinished](h.last)[0]; c != (ConditionFinished{Execution: "e1", Stage: 1, Kind: BeforeEntry, Status: Overridden}) {
		t.Fatalf("condition %+v", c)
	}
	h.running("e1", "compile")
	// The abandoned rule's late result changes nothing.
	before := state(t, h.exec("e1"))
	h.finishRule("e1", BeforeEntry, "no-alarms", false)
	if len(h.last) != 0 || state(t, h.exec("e1")) != before {
		t.Fatalf("a late result of an abandoned rule: events %v", names(h.last))
	}
	// The condition is no longer being evaluated.
	if _, err := h.p.Override("e1", "Build", BeforeEntry, h.ids); !errors.Is(err, ErrNotOverridable) {
		t.Fatalf("second override: %v", err)
	}
}

func TestOverrideSuccessConditionSucceedsTheStage(t *testing.T) {
	h := newHarness(t, Superseded)
	h.startPlan("e1", successCheck(ResultRollback))
	h.buildPassed("e1")
	h.take(must(h.p.Override("e1", "Build", OnSuccess, h.ids)))
	h.wantLast("RuleAbandoned", "ConditionFinished", "StageFinished", "StageEntered", "ActionStarted")
	if c := eventsOf[ConditionFinished](h.last)[0]; c.Status != Overridden || c.Kind != OnSuccess {
		t.Fatalf("condition %+v", c)
	}
	h.wantEnd("e1", InProgress, 1, Succeeded)
	h.running("e1", "ship")
	h.finishRule("e1", OnSuccess, "coverage", false)
	if len(h.last) != 0 || h.exec("e1").StageStatus[1] != Succeeded {
		t.Fatalf("a late result of an abandoned rule: events %v", names(h.last))
	}
}

func TestOverrideRefusals(t *testing.T) {
	h := newHarness(t, Superseded)
	h.startPlan("e1", plan(func(s []StagePlan) {
		s[1].BeforeEntry = &Condition{Result: ResultFail, Rules: []string{"gate"}}
		s[1].OnFailure = &Condition{Result: ResultRetry, Rules: []string{"flaky"}}
	}))
	// Not evaluating: Source's actions run.
	if _, err := h.p.Override("e1", "Source", BeforeEntry, h.ids); !errors.Is(err, ErrNotOverridable) {
		t.Fatalf("override while the actions run: %v", err)
	}
	h.finish("e1", "src", true)
	for _, c := range []struct {
		exec, stage string
		kind        Kind
		want        error
	}{
		{"e1", "Build", OnSuccess, ErrNotOverridable}, // another condition is evaluated
		{"e1", "Source", BeforeEntry, ErrNotLatest},   // a stage it has left
		{"e1", "Deploy", BeforeEntry, ErrNotLatest},   // a stage it has not reached
		{"e1", "Nowhere", BeforeEntry, ErrNotLatest},
		{"e9", "Build", BeforeEntry, ErrNotLatest},
	} {
		if _, err := h.p.Override(c.exec, c.stage, c.kind, h.ids); !errors.Is(err, c.want) {
			t.Fatalf("override %s %s %s: %v, want %v", c.exec, c.stage, c.kind, err, c.want)
		}
	}
	if h.exec("e1").Phase != BeforeEntry || len(h.rules) != 1 {
		t.Fatal("a refused override changed the execution")
	}
	h.finishRule("e1", BeforeEntry, "gate", true)
	h.finish("e1", "compile", false)
	// A failure condition is not overridden.
	if _, err := h.p.Override("e1", "Build", OnFailure, h.ids); !errors.Is(err, ErrNotOverridable) {
		t.Fatalf("override of a failure condition: %v", err)
	}
	h.finishRule("e1", OnFailure, "flaky", false)
	h.wantEnd("e1", Failed, 1, Failed)
	if _, err := h.p.Override("e1", "Build", OnFailure, h.ids); !errors.Is(err, ErrNotLatest) {
		t.Fatalf("override on a failed execution: %v", err)
	}
}

// --- Stops during rule evaluation ---

func TestStopWithAbandonDuringRulesAbandonsThem(t *testing.T) {
	h := newHarness(t, Superseded)
	h.startPlan("e1", entryGate(ResultFail))
	h.finish("e1", "src", true)
	h.take(must(h.p.Stop("e1", true, h.ids)))
	h.wantLast("ExecutionStopping", "RuleAbandoned", "RuleAbandoned", "StageFinished", "ExecutionFinished")
	h.wantEnd("e1", Stopped, 1, Stopped)
	h.finishRule("e1", BeforeEntry, "no-alarms", true)
	if len(h.last) != 0 || h.status("e1") != Stopped {
		t.Fatal("a late rule result revived a stopped execution")
	}
	h.wantStarted("e1/src")
}

func TestStopWithoutAbandonWaitsForTheRules(t *testing.T) {
	h := newHarness(t, Superseded)
	h.startPlan("e1", successCheck(ResultFail))
	h.buildPassed("e1")
	h.take(must(h.p.Stop("e1", false, h.ids)))
	h.wantLast("ExecutionStopping")
	if h.status("e1") != Stopping {
		t.Fatalf("status %s", h.status("e1"))
	}
	h.finishRule("e1", OnSuccess, "coverage", true)
	h.wantLast("RuleFinished", "StageFinished", "ExecutionFinished")
	h.wantEnd("e1", Stopped, 1, Stopped)
	if eventsOf[ConditionFinished](h.last) != nil {
		t.Fatal("a stopping execution decided its condition")
	}
	h.wantStarted("e1/src", "e1/compile", "e1/lint", "e1/test")
}

// --- Rollbacks ---

// guarded declares every kind of condition on Build.
func guarded() []StagePlan {
	return plan(func(s []StagePlan) {
		s[1].BeforeEntry = &Condition{Result: ResultFail, Rules: []string{"gate"}}
		s[1].OnSuccess = &Condition{Result: ResultRollback, Rules: []string{"coverage"}}
		s[1].OnFailure = &Condition{Result: ResultRetry}
	})
}

func (h *harness) rollback(id string, stage int) {
	h.take(must(h.p.StartRollback(id, guarded(), stage, h.ids)))
}

func TestRollbackRunsOneStageWithoutItsConditions(t *testing.T) {
	h := newHarness(t, Superseded)
	h.rollback("r1", 1)
	h.wantLast("ExecutionStarted", "StageEntered", "ActionStarted")
	if s := eventsOf[ExecutionStarted](h.last)[0]; !s.Rollback {
		t.Fatalf("started %+v", s)
	}
	if s := eventsOf[StageEntered](h.last)[0]; s.Stage != 1 {
		t.Fatalf("entered %+v", s)
	}
	h.finish("r1", "compile", true)
	h.finish("r1", "lint", true)
	h.finish("r1", "test", true)
	h.wantLast("ActionFinished", "StageFinished", "ExecutionFinished")
	e := h.exec("r1")
	if e.Status != Succeeded || e.Stage != len(e.Plan) || !slices.Equal(e.StageStatus, []Status{"", Succeeded, ""}) {
		t.Fatalf("execution %s at stage %d, stages %v", e.Status, e.Stage, e.StageStatus)
	}
	h.wantStarted("r1/compile", "r1/lint", "r1/test")
	if len(h.rules) != 0 {
		t.Fatalf("a rollback ran rules: %v", h.rules)
	}
}

func TestFailedRollbackIsNotRetriedAutomaticallyButCanBeRetried(t *testing.T) {
	h := newHarness(t, Superseded)
	h.rollback("r1", 1)
	h.finish("r1", "compile", false)
	h.wantLast("ActionFinished", "StageFinished", "ExecutionFinished")
	h.wantEnd("r1", Failed, 1, Failed)
	h.take(must(h.p.Retry("r1", "Build", false, h.ids)))
	h.wantLast("StageRetried", "ActionStarted")
	h.finish("r1", "compile", true)
	h.finish("r1", "lint", true)
	h.finish("r1", "test", true)
	if e := h.exec("r1"); e.Status != Succeeded || e.Stage != 3 || e.Retries[1] != (Retries{Manual: 1, Latest: ManualRetry}) {
		t.Fatalf("execution %s at stage %d, retries %+v", e.Status, e.Stage, e.Retries[1])
	}
	if len(h.rules) != 0 {
		t.Fatalf("a rollback ran rules: %v", h.rules)
	}
}

func TestSupersededModeNeverOvertakesAWaitingRollback(t *testing.T) {
	h := newHarness(t, Superseded)
	h.start("e1")
	h.finish("e1", "src", true) // e1 is inside Build
	h.rollback("r1", 1)
	h.wantLast("ExecutionStarted")
	if e := h.exec("r1"); !e.Waiting || e.Stage != 1 || e.Status != InProgress {
		t.Fatalf("rollback waiting %v at %d, %s", e.Waiting, e.Stage, e.Status)
	}
	h.start("e2")
	h.finish("e2", "src", true) // e2 arrives at Build after the rollback
	if h.status("r1") != InProgress || h.status("e2") != InProgress {
		t.Fatalf("r1 %s, e2 %s", h.status("r1"), h.status("e2"))
	}
	h.finish("e1", "compile", true)
	h.finish("e1", "lint", true)
	h.finish("e1", "test", true) // Build is free: the rollback enters first
	h.running("r1", "compile")
	if e := h.exec("e2"); !e.Waiting || e.Stage != 1 {
		t.Fatalf("e2 waiting %v at %d", e.Waiting, e.Stage)
	}
	h.finish("r1", "compile", true)
	h.finish("r1", "lint", true)
	h.finish("r1", "test", true)
	h.running("e2", "compile")
}

// TestQueuedRollbackGoesFirst: in QUEUED mode too, a rollback waiting at a stage enters it
// before the standard executions that waited there longer.
func TestQueuedRollbackGoesFirst(t *testing.T) {
	h := newHarness(t, Queued)
	h.start("e1")
	h.finish("e1", "src", true) // e1 is inside Build
	h.start("e2")
	h.finish("e2", "src", true) // e2 waits at Build
	h.rollback("r1", 1)
	h.finish("e1", "compile", true)
	h.finish("e1", "lint", true)
	h.finish("e1", "test", true)
	h.running("r1", "compile")
	if e := h.exec("e2"); !e.Waiting || e.Status != InProgress {
		t.Fatalf("e2 waiting %v, %s", e.Waiting, e.Status)
	}
	h.finish("r1", "compile", true)
	h.finish("r1", "lint", true)
	h.finish("r1", "test", true)
	h.running("e2", "compile")
}

// --- Events ---

func TestEventsOfASimpleRun(t *testing.T) {
	h := newHarness(t, Superseded)
	var all []string
	call := func(events []Event) {
		h.take(events)
		all = append(all, names(events)...)
	}
	call(h.p.Start("e1", threeStages(), h.ids))
	for _, a := range []string{"src", "compile", "lint", "test", "ship"} {
		call(must(h.p.ActionFinished("e1", h.running("e1", a).Action.ID, true, h.ids)))
	}
	want := []string{
		"ExecutionStarted", "StageEntered", "ActionStarted",
		"ActionFinished", "StageFinished", "StageEntered", "ActionStarted",
		"ActionFinished", "ActionStarted", "ActionStarted",
		"ActionFinished",
		"ActionFinished", "StageFinished", "StageEntered", "ActionStarted",
		"ActionFinished", "StageFinished", "ExecutionFinished",
	}
	if !slices.Equal(all, want) {
		t.Fatalf("events\n%v\nwant\n%v", all, want)
	}
}

// A rollback starts at its stage, so an older execution can enter that stage after the rollback
// failed there; retrying the rollback must not put it inside alongside.
func TestRetriedRollbackDoesNotShareItsStage(t *testing.T) {
	for _, mode := range []Mode{Superseded, Queued} {
		t.Run(string(mode), func(t *testing.T) {
			h := newHarness(t, mode)
			h.start("e1")
			h.rollback("r1", 1)
			h.finish("r1", "compile", false) // r1 failed in Build
			h.finish("e1", "src", true)      // e1 enters Build
			h.running("e1", "compile")
			events, err := h.p.Retry("r1", "Build", false, h.ids)
			h.take(events)
			if r := h.p.Find("r1"); err == nil && r != nil && r.in("Build") && !r.Status.Done() {
				t.Fatalf("r1 and e1 are both inside Build (retry events %v)", names(events))
			}
		})
	}
}

// TestFailedOnlyRetryKeepsSucceededActionsOfEveryGroup: retrying the failed actions of a stage
// whose actions all succeeded (its success condition failed it) runs none of them again, in any
// group, and evaluates the condition again.
func TestFailedOnlyRetryKeepsSucceededActionsOfEveryGroup(t *testing.T) {
	h := newHarness(t, Superseded)
	h.startPlan("e1", successCheck(ResultFail))
	h.buildPassed("e1")
	h.finishRule("e1", OnSuccess, "coverage", false)
	h.wantEnd("e1", Failed, 1, Failed)
	before := len(h.started)
	h.take(must(h.p.Retry("e1", "Build", true, h.ids)))
	if again := h.startedSince(before); len(again) != 0 {
		t.Fatalf("a failed-only retry ran %v again", again)
	}
	h.finishRule("e1", OnSuccess, "coverage", true)
	h.finish("e1", "ship", true)
	h.wantEnd("e1", Succeeded, 1, Succeeded)
}
