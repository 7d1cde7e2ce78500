package engine

import (
	"errors"
	"fmt"
	"slices"
	"testing"
)

// harness drives a Pipeline and keeps the actions it was asked to start.
type harness struct {
	t       *testing.T
	p       *Pipeline
	next    int
	started []StartAction
}

func newHarness(t *testing.T, mode Mode) *harness {
	return &harness{t: t, p: &Pipeline{Mode: mode}}
}

func (h *harness) ids() string {
	h.next++
	return fmt.Sprintf("a%d", h.next)
}

func (h *harness) take(effects []Effect) {
	for _, e := range effects {
		if s, ok := e.(StartAction); ok {
			h.started = append(h.started, s)
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
func (h *harness) running(exec, action string) StartAction {
	h.t.Helper()
	for i := len(h.started) - 1; i >= 0; i-- {
		s := h.started[i]
		if s.Execution == exec && s.Action.Name == action {
			return s
		}
	}
	h.t.Fatalf("%s/%s was never started; started: %v", exec, action, h.startedNames())
	return StartAction{}
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
	effects := must(h.p.Stop("e1", true, h.ids))
	if len(effects) != 1 || effects[0].(AbandonAction).Action.Name != "compile" {
		t.Fatalf("effects %v", effects)
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

func must(effects []Effect, err error) []Effect {
	if err != nil {
		panic(err)
	}
	return effects
}

// FuzzInvariants drives a pipeline with an arbitrary sequence of starts, results, stops,
// retries and transition changes. Nothing may panic, and outside PARALLEL mode no two unfinished
// executions may be inside the same stage at once.
func FuzzInvariants(f *testing.F) {
	f.Add([]byte{0, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	f.Add([]byte{1, 0, 0, 0, 9, 2, 2, 2, 5, 5, 7, 3})
	f.Add([]byte{2, 0, 0, 3, 3, 4, 4, 6, 1, 1})
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) == 0 {
			return
		}
		h := newHarness(t, []Mode{Superseded, Queued, Parallel}[int(ops[0])%3])
		execs := 0
		for i, op := range ops[1:] {
			var effects []Effect
			switch op % 8 {
			case 0:
				execs++
				effects = h.p.Start(fmt.Sprintf("e%d", execs), threeStages(), h.ids)
			case 1, 2, 3:
				if len(h.started) > 0 {
					s := h.started[(i*7+int(op))%len(h.started)]
					effects, _ = h.p.ActionFinished(s.Execution, s.Action.ID, op != 3, h.ids)
				}
			case 4:
				if execs > 0 {
					effects, _ = h.p.Stop(fmt.Sprintf("e%d", 1+int(op/8)%execs), op%16 == 4, h.ids)
				}
			case 5:
				if execs > 0 {
					effects, _ = h.p.Retry(fmt.Sprintf("e%d", 1+int(op/8)%execs), "Build", op%16 == 5, h.ids)
				}
			case 6:
				effects = h.p.SetTransition("Deploy", op%16 == 6, h.ids)
			case 7:
				effects = h.p.SetTransition("Build", op%16 == 7, h.ids)
			}
			h.take(effects)
			if h.p.Mode != Parallel {
				inside := map[string]string{}
				for _, e := range h.p.Executions {
					if e.Status.Done() || e.Waiting || e.Stage >= len(e.Plan) {
						continue
					}
					stage := e.Plan[e.Stage].Name
					if other, busy := inside[stage]; busy {
						t.Fatalf("%s and %s are both inside %s in %s mode", other, e.ID, stage, h.p.Mode)
					}
					inside[stage] = e.ID
				}
			}
		}
	})
}
