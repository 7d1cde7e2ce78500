package storetest

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/store"
)

func runtimeTests() map[string]func(*testing.T, func() store.Store) {
	return map[string]func(*testing.T, func() store.Store){
		"StepIsAtomic":                  testStepIsAtomic,
		"ConcurrentStepsSerialize":      testConcurrentStepsSerialize,
		"StepKeepsExecutionStates":      testStepKeepsExecutionStates,
		"StepReadsInItsTransaction":     testStepReadsInItsTransaction,
		"ExecutionHistory":              testExecutionHistory,
		"ActionExecutionHistory":        testActionExecutionHistory,
		"ActionExecutionTargets":        testActionExecutionTargets,
		"RuleExecutionHistory":          testRuleExecutionHistory,
		"EventsAreAppendedInOrder":      testEventsAreAppendedInOrder,
		"DeletePipelineRemovesRuntime":  testDeletePipelineRemovesRuntime,
		"JobsAreDispatchedOnce":         testJobsAreDispatchedOnce,
		"JobStatusIsCompareAndSwap":     testJobStatusCompareAndSwap,
		"TouchJobKeepsItFromTheSweeper": testTouchJobKeepsItFromTheSweeper,
		"SourceEventsWaitUntilHandled":  testSourceEventsWaitUntilHandled,
		"SweepFindsWork":                testSweepFindsWork,
	}
}

func execution(pipeline string, seq int64) store.Execution {
	at := time.UnixMilli(1700000000000 + seq*1000).UTC()
	return store.Execution{ID: fmt.Sprintf("%s-e%d", pipeline, seq), Pipeline: pipeline, Seq: seq, Version: 1, Status: "InProgress",
		Doc: []byte(`{}`), Started: at, Updated: at}
}

func testStepIsAtomic(t *testing.T, open func() store.Store) {
	s := openStore(t, open)
	if state, err := s.State(ctx, "p"); err != nil || state.Pipeline != nil || state.Executions != nil {
		t.Fatalf("state before any step: %+v, %v", state, err)
	}
	must(t, s.Step(ctx, "p", func(store.Current) (store.Change, error) {
		return store.Change{State: []byte(`1`), Executions: []store.Execution{execution("p", 1)}}, nil
	}))
	boom := errors.New("boom")
	err := s.Step(ctx, "p", func(store.Current) (store.Change, error) {
		return store.Change{State: []byte(`2`), ExecutionStates: map[string][]byte{"e": []byte(`2`)}, Executions: []store.Execution{execution("p", 2)}}, boom
	})
	wantErr(t, err, boom)
	if state, _ := s.State(ctx, "p"); string(state.Pipeline) != "1" || state.Executions != nil {
		t.Fatalf("state %+v after a failed step, want 1 and no executions", state)
	}
	_, err = s.GetExecution(ctx, "p", "p-e2")
	wantErr(t, err, store.ErrNotFound)

	// A duplicate client token refuses the whole step.
	first := execution("p", 3)
	first.ClientToken = "tok"
	must(t, s.Step(ctx, "p", func(store.Current) (store.Change, error) {
		return store.Change{State: []byte(`3`), Executions: []store.Execution{first}}, nil
	}))
	second := execution("p", 4)
	second.ClientToken = "tok"
	err = s.Step(ctx, "p", func(store.Current) (store.Change, error) {
		return store.Change{State: []byte(`4`), Executions: []store.Execution{second}}, nil
	})
	wantErr(t, err, store.ErrExists)
	if got, err := s.ExecutionByToken(ctx, "p", "tok"); err != nil || got.ID != first.ID {
		t.Fatalf("ExecutionByToken = %+v, %v", got, err)
	}
	if state, _ := s.State(ctx, "p"); string(state.Pipeline) != "3" {
		t.Fatalf("state %s, want 3", state.Pipeline)
	}

	// A step that panics fails alone, stores nothing, and the store goes on.
	if err := s.Step(ctx, "p", func(store.Current) (store.Change, error) { panic("step bug") }); err == nil || !strings.Contains(err.Error(), "step bug") {
		t.Fatalf("a panicking step returned %v", err)
	}
	must(t, s.Step(ctx, "p", func(store.Current) (store.Change, error) { return store.Change{State: []byte(`5`)}, nil }))
	if state, _ := s.State(ctx, "p"); string(state.Pipeline) != "5" {
		t.Fatalf("state %s after a panicking step and another, want 5", state.Pipeline)
	}
}

func testConcurrentStepsSerialize(t *testing.T, open func() store.Store) {
	s := openStore(t, open)
	const workers, steps = 6, 10
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range steps {
				err := s.Step(ctx, "counter", func(cur store.Current) (store.Change, error) {
					state, err := cur.Load()
					if err != nil {
						return store.Change{}, err
					}
					n, _ := strconv.Atoi(string(state.Pipeline))
					return store.Change{State: []byte(strconv.Itoa(n + 1))}, nil
				})
				if err != nil && !errors.Is(err, store.ErrConflict) {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	state, err := s.State(ctx, "counter")
	must(t, err)
	if string(state.Pipeline) != strconv.Itoa(workers*steps) {
		t.Fatalf("counter %s after %d steps: steps interleaved", state.Pipeline, workers*steps)
	}
}

func testStepKeepsExecutionStates(t *testing.T, open func() store.Store) {
	s := openStore(t, open)
	// step stores a change on pipeline p and returns what the step found: its token and state.
	step := func(pipeline, token string, executions map[string][]byte) (string, store.State) {
		var found string
		var loaded store.State
		must(t, s.Step(ctx, pipeline, func(cur store.Current) (store.Change, error) {
			var err error
			found = cur.Token
			loaded, err = cur.Load()
			return store.Change{Token: token, State: []byte(`"` + token + `"`), ExecutionStates: executions}, err
		}))
		return found, loaded
	}
	if token, st := step("p", "t1", map[string][]byte{"a": []byte(`"a1"`), "b": []byte(`"b1"`)}); token != "" || st.Pipeline != nil || st.Executions != nil {
		t.Fatalf("first step found token %q and state %+v", token, st)
	}
	step("q", "q1", map[string][]byte{"a": []byte(`"other pipeline"`)})
	token, st := step("p", "t2", map[string][]byte{"a": nil, "b": []byte(`"b2"`), "c": []byte(`"c1"`)})
	if token != "t1" || string(st.Pipeline) != `"t1"` || len(st.Executions) != 2 || string(st.Executions["a"]) != `"a1"` || string(st.Executions["b"]) != `"b1"` {
		t.Fatalf("second step found token %q and state %s %s", token, st.Pipeline, st.Executions)
	}
	got, err := s.State(ctx, "p")
	must(t, err)
	if string(got.Pipeline) != `"t2"` || len(got.Executions) != 2 || string(got.Executions["b"]) != `"b2"` || string(got.Executions["c"]) != `"c1"` {
		t.Fatalf("state after removing a, changing b and adding c: %s %s", got.Pipeline, got.Executions)
	}
	// Executions not in a change keep their documents.
	step("p", "t3", nil)
	if got, _ := s.State(ctx, "p"); string(got.Pipeline) != `"t3"` || len(got.Executions) != 2 {
		t.Fatalf("state after a step changing no execution: %s %s", got.Pipeline, got.Executions)
	}

	must(t, s.DeletePipeline(ctx, "p", "arn:aws:codepipeline:us-east-1:000000000000:p"))
	if got, _ := s.State(ctx, "p"); got.Pipeline != nil || got.Executions != nil {
		t.Fatalf("state of a deleted pipeline: %s %s", got.Pipeline, got.Executions)
	}
	if token, _ := step("p", "t4", nil); token != "" {
		t.Fatalf("the first step after delete found token %q", token)
	}
	if got, _ := s.State(ctx, "q"); string(got.Executions["a"]) != `"other pipeline"` {
		t.Fatalf("another pipeline's state after delete: %s", got.Executions)
	}
}

func testStepReadsInItsTransaction(t *testing.T, open func() store.Store) {
	s := openStore(t, open)
	at := time.UnixMilli(1700000000000).UTC()
	action := store.ActionExecution{ID: "a-j", ExecutionID: "e", Pipeline: "p", Stage: "S", Action: "A", Status: "InProgress", Doc: []byte(`{"n":1}`), Started: at, Updated: at}
	r := rule("p", "r", "e", 0)
	r.Doc = []byte(`{"n":2}`)
	must(t, s.Step(ctx, "p", func(store.Current) (store.Change, error) {
		return store.Change{State: []byte(`{}`), Jobs: []store.Job{job("j", "T", "", 0)}, Actions: []store.ActionExecution{action}, Rules: []store.RuleExecution{r}}, nil
	}))
	must(t, s.Step(ctx, "p", func(cur store.Current) (store.Change, error) {
		j, err := cur.Job("j")
		if err != nil || j.Status != "Queued" || j.ActionExecutionID != "a-j" {
			t.Errorf("Job in a step = %+v, %v", j, err)
		}
		a, err := cur.ActionExecution("a-j")
		if err != nil || string(a.Doc) != `{"n":1}` {
			t.Errorf("ActionExecution in a step = %+v, %v", a, err)
		}
		_, err = cur.Job("missing")
		wantErr(t, err, store.ErrNotFound)
		_, err = cur.ActionExecution("missing")
		wantErr(t, err, store.ErrNotFound)
		if got, err := cur.RuleExecution("r"); err != nil || !reflect.DeepEqual(got, r) {
			t.Errorf("RuleExecution in a step = %+v, %v; want %+v", got, err, r)
		}
		_, err = cur.RuleExecution("missing")
		wantErr(t, err, store.ErrNotFound)
		r.Status, r.Doc = "Succeeded", []byte(`{"n":3}`)
		return store.Change{State: []byte(`{}`), Rules: []store.RuleExecution{r}}, nil
	}))
	// The next step reads the rule as the last one rewrote it.
	must(t, s.Step(ctx, "p", func(cur store.Current) (store.Change, error) {
		if got, err := cur.RuleExecution("r"); err != nil || !reflect.DeepEqual(got, r) {
			t.Errorf("RuleExecution in the step after its rewrite = %+v, %v; want %+v", got, err, r)
		}
		return store.Change{State: []byte(`{}`)}, nil
	}))
}

func testExecutionHistory(t *testing.T, open func() store.Store) {
	s := openStore(t, open)
	for seq := int64(1); seq <= 5; seq++ {
		must(t, s.Step(ctx, "p", func(store.Current) (store.Change, error) {
			return store.Change{State: []byte(`{}`), Executions: []store.Execution{execution("p", seq), execution("other", seq)}}, nil
		}))
	}
	done := execution("p", 2)
	done.Status, done.Doc, done.Updated = "Succeeded", []byte(`{"x":1}`), done.Updated.Add(time.Minute)
	must(t, s.Step(ctx, "p", func(store.Current) (store.Change, error) {
		return store.Change{State: []byte(`{}`), Executions: []store.Execution{done}}, nil
	}))
	got, err := s.GetExecution(ctx, "p", "p-e2")
	must(t, err)
	if got.Status != "Succeeded" || string(got.Doc) != `{"x":1}` || !got.Started.Equal(execution("p", 2).Started) || !got.Updated.Equal(done.Updated) {
		t.Fatalf("updated execution %+v", got)
	}
	_, err = s.GetExecution(ctx, "other", "p-e2")
	wantErr(t, err, store.ErrNotFound)

	page, err := s.ListExecutions(ctx, "p", 0, 3)
	must(t, err)
	if len(page) != 3 || page[0].Seq != 5 || page[2].Seq != 3 {
		t.Fatalf("first page %+v", page)
	}
	rest, err := s.ListExecutions(ctx, "p", page[2].Seq, 3)
	must(t, err)
	if len(rest) != 2 || rest[0].Seq != 2 || rest[1].Seq != 1 {
		t.Fatalf("second page %+v", rest)
	}
}

func testActionExecutionHistory(t *testing.T, open func() store.Store) {
	s := openStore(t, open)
	var actions []store.ActionExecution
	for i := range 6 {
		at := time.UnixMilli(1700000000000 + int64(i)*10).UTC()
		actions = append(actions, store.ActionExecution{
			ID: fmt.Sprintf("a%d", i), ExecutionID: fmt.Sprintf("e%d", i%2), Pipeline: "p", Stage: "S", Action: "x",
			Status: "InProgress", Doc: []byte(`{}`), Started: at, Updated: at,
		})
	}
	must(t, s.Step(ctx, "p", func(store.Current) (store.Change, error) {
		return store.Change{State: []byte(`{}`), Actions: actions}, nil
	}))
	actions[0].Status = "Succeeded"
	must(t, s.Step(ctx, "p", func(store.Current) (store.Change, error) {
		return store.Change{State: []byte(`{}`), Actions: actions[:1]}, nil
	}))
	if a, err := s.GetActionExecution(ctx, "a0"); err != nil || a.Status != "Succeeded" {
		t.Fatalf("a0 = %+v, %v", a, err)
	}
	var ids []string
	after := ""
	for {
		page, err := s.ListActionExecutions(ctx, "p", "", store.Page{After: after, Limit: 4})
		must(t, err)
		for _, a := range page {
			ids = append(ids, a.ID)
		}
		if len(page) < 4 {
			break
		}
		after = store.ActionKey(page[len(page)-1])
	}
	if fmt.Sprint(ids) != "[a5 a4 a3 a2 a1 a0]" {
		t.Fatalf("listed %v, want newest first", ids)
	}
	one, err := s.ListActionExecutions(ctx, "p", "e1", store.Page{})
	must(t, err)
	if len(one) != 3 || one[0].ID != "a5" {
		t.Fatalf("execution e1's actions %+v", one)
	}
}

func testActionExecutionTargets(t *testing.T, open func() store.Store) {
	s := openStore(t, open)
	at := time.UnixMilli(1700000000000).UTC()
	plain := store.ActionExecution{ID: "a-plain", ExecutionID: "e", Pipeline: "p", Stage: "S", Action: "Build", Status: "InProgress", Doc: []byte(`{}`), Started: at, Updated: at}
	deploy := store.ActionExecution{ID: "a-deploy", ExecutionID: "e", Pipeline: "p", Stage: "S", Action: "Deploy", Status: "InProgress", Doc: []byte(`{}`),
		Targets: []byte(`[{"targetId":"i-1","status":"InProgress"}]`), Started: at.Add(time.Second), Updated: at.Add(time.Second)}
	must(t, s.Step(ctx, "p", func(store.Current) (store.Change, error) {
		return store.Change{State: []byte(`{}`), Actions: []store.ActionExecution{plain, deploy}}, nil
	}))
	for _, want := range []store.ActionExecution{plain, deploy} {
		if got, err := s.GetActionExecution(ctx, want.ID); err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("GetActionExecution(%s) = %+v, %v; want %+v", want.ID, got, err, want)
		}
	}

	// A rewrite replaces the targets; one without targets keeps none.
	deploy.Status, deploy.Targets = "Succeeded", []byte(`[{"targetId":"i-1","status":"Succeeded"},{"targetId":"i-2","status":"Succeeded"}]`)
	plain.Status = "Succeeded"
	must(t, s.Step(ctx, "p", func(store.Current) (store.Change, error) {
		return store.Change{State: []byte(`{}`), Actions: []store.ActionExecution{plain, deploy}}, nil
	}))
	must(t, s.Step(ctx, "p", func(cur store.Current) (store.Change, error) {
		if got, err := cur.ActionExecution("a-deploy"); err != nil || string(got.Targets) != string(deploy.Targets) {
			t.Errorf("ActionExecution in a step = %+v, %v; want targets %s", got, err, deploy.Targets)
		}
		return store.Change{State: []byte(`{}`)}, nil
	}))
	listed, err := s.ListActionExecutions(ctx, "p", "", store.Page{})
	must(t, err)
	if want := []store.ActionExecution{deploy, plain}; !reflect.DeepEqual(listed, want) {
		t.Fatalf("listed %+v, want %+v", listed, want)
	}
}

func rule(pipeline, id, executionID string, started int64) store.RuleExecution {
	at := time.UnixMilli(1700000000000 + started).UTC()
	return store.RuleExecution{ID: id, ExecutionID: executionID, Pipeline: pipeline, Stage: "S", Rule: "R", Status: "InProgress",
		Doc: fmt.Appendf(nil, `{"rule":%q}`, id), Started: at, Updated: at}
}

func ruleIDs(rules []store.RuleExecution) string {
	var ids []string
	for _, r := range rules {
		ids = append(ids, r.ID)
	}
	return fmt.Sprint(ids)
}

func testRuleExecutionHistory(t *testing.T, open func() store.Store) {
	s := openStore(t, open)
	var rules []store.RuleExecution
	for i := range 6 {
		rules = append(rules, rule("p", fmt.Sprintf("r%d", i), fmt.Sprintf("e%d", i%2), int64(i)*10))
	}
	must(t, s.Step(ctx, "p", func(store.Current) (store.Change, error) {
		return store.Change{State: []byte(`{}`), Rules: rules}, nil
	}))
	// Another pipeline's rule run, of an execution id p has too and newer than all of p's: never
	// listed with them.
	must(t, s.Step(ctx, "q", func(store.Current) (store.Change, error) {
		return store.Change{State: []byte(`{}`), Rules: []store.RuleExecution{rule("q", "q0", "e1", 100)}}, nil
	}))
	if got, err := s.GetRuleExecution(ctx, "r3"); err != nil || !reflect.DeepEqual(got, rules[3]) {
		t.Fatalf("GetRuleExecution(r3) = %+v, %v; want %+v", got, err, rules[3])
	}
	_, err := s.GetRuleExecution(ctx, "missing")
	wantErr(t, err, store.ErrNotFound)

	// A rewrite replaces the run's record under its ID.
	rules[0].Status, rules[0].Doc, rules[0].Updated = "Succeeded", []byte(`{"done":true}`), rules[0].Updated.Add(time.Minute)
	must(t, s.Step(ctx, "p", func(store.Current) (store.Change, error) {
		return store.Change{State: []byte(`{}`), Rules: rules[:1]}, nil
	}))
	if got, err := s.GetRuleExecution(ctx, "r0"); err != nil || !reflect.DeepEqual(got, rules[0]) {
		t.Fatalf("GetRuleExecution(r0) after its rewrite = %+v, %v; want %+v", got, err, rules[0])
	}

	first, err := s.ListRuleExecutions(ctx, "p", "", store.Page{Limit: 4})
	must(t, err)
	if ids := ruleIDs(first); ids != "[r5 r4 r3 r2]" {
		t.Fatalf("first page %s, want the newest four", ids)
	}
	second, err := s.ListRuleExecutions(ctx, "p", "", store.Page{After: store.RuleKey(first[3]), Limit: 4})
	must(t, err)
	if want := []store.RuleExecution{rules[1], rules[0]}; !reflect.DeepEqual(second, want) {
		t.Fatalf("second page %+v, want %+v", second, want)
	}
	if rest, err := s.ListRuleExecutions(ctx, "p", "", store.Page{After: store.RuleKey(second[1]), Limit: 4}); err != nil || len(rest) != 0 {
		t.Fatalf("after the last page: %+v, %v", rest, err)
	}

	one, err := s.ListRuleExecutions(ctx, "p", "e1", store.Page{Limit: 2})
	must(t, err)
	if ids := ruleIDs(one); ids != "[r5 r3]" {
		t.Fatalf("execution e1's first page %s", ids)
	}
	one, err = s.ListRuleExecutions(ctx, "p", "e1", store.Page{After: store.RuleKey(one[1]), Limit: 2})
	must(t, err)
	if ids := ruleIDs(one); ids != "[r1]" {
		t.Fatalf("execution e1's second page %s", ids)
	}
	if other, err := s.ListRuleExecutions(ctx, "q", "", store.Page{}); err != nil || ruleIDs(other) != "[q0]" {
		t.Fatalf("pipeline q's rules %+v, %v", other, err)
	}
}

func event(pipeline, kind string, at int64) store.Event {
	return store.Event{Pipeline: pipeline, ExecutionID: "e", Kind: kind, Doc: fmt.Appendf(nil, `{"type":%q}`, kind),
		At: time.UnixMilli(1700000000000 + at).UTC()}
}

// appendEvents stores events in a step of pipeline.
func appendEvents(t *testing.T, s store.Store, pipeline string, events ...store.Event) {
	t.Helper()
	must(t, s.Step(ctx, pipeline, func(store.Current) (store.Change, error) {
		return store.Change{State: []byte(`{}`), Events: events}, nil
	}))
}

func testEventsAreAppendedInOrder(t *testing.T, open func() store.Store) {
	s := openStore(t, open)
	written := []store.Event{
		event("p", "PipelineExecutionStarted", 0), event("p", "StageEntered", 1),
		// An event that names no pipeline is the step's.
		event("", "ActionExecutionStarted", 2),
		event("p", "ActionExecutionSucceeded", 4), event("p", "StageSucceeded", 5),
	}
	appendEvents(t, s, "p", written[:3]...)
	appendEvents(t, s, "q", event("q", "PipelineExecutionStarted", 3))
	appendEvents(t, s, "p", written[3:]...)

	all, err := s.ListEvents(ctx, "p", 0, 0)
	must(t, err)
	if len(all) != len(written) {
		t.Fatalf("listed %d events, want %d: %+v", len(all), len(written), all)
	}
	for i, e := range all {
		want := written[i]
		want.ID, want.Pipeline = e.ID, "p"
		if !reflect.DeepEqual(e, want) {
			t.Errorf("event %d = %+v, want %+v", i, e, want)
		}
		if i > 0 && e.ID <= all[i-1].ID {
			t.Errorf("event %d has id %d, after %d", i, e.ID, all[i-1].ID)
		}
	}
	if other, err := s.ListEvents(ctx, "q", 0, 0); err != nil || len(other) != 1 || other[0].Pipeline != "q" || other[0].ID <= all[2].ID || other[0].ID >= all[3].ID {
		t.Fatalf("pipeline q's events %+v, %v; p's %+v", other, err, all)
	}

	for _, page := range []struct {
		after int64
		limit int
		want  []store.Event
	}{
		{0, 2, all[:2]}, {all[1].ID, 2, all[2:4]}, {all[3].ID, 2, all[4:]}, {all[4].ID, 2, nil},
		{all[0].ID, 0, all[1:]}, {all[0].ID, -1, all[1:]},
	} {
		got, err := s.ListEvents(ctx, "p", page.after, page.limit)
		must(t, err)
		if !reflect.DeepEqual(got, page.want) {
			t.Fatalf("ListEvents(after %d, limit %d) = %+v, want %+v", page.after, page.limit, got, page.want)
		}
	}

	// A step that fails stores neither its rules nor its events.
	boom := errors.New("boom")
	err = s.Step(ctx, "p", func(store.Current) (store.Change, error) {
		return store.Change{State: []byte(`{}`), Rules: []store.RuleExecution{rule("p", "r-failed", "e", 6)}, Events: []store.Event{event("p", "Lost", 6)}}, boom
	})
	wantErr(t, err, boom)
	// Nor does one with an event of another pipeline, which would be numbered outside its lock.
	if err := s.Step(ctx, "p", func(store.Current) (store.Change, error) {
		return store.Change{State: []byte(`{}`), Rules: []store.RuleExecution{rule("p", "r-misfiled", "e", 7)},
			Events: []store.Event{event("p", "Kept", 7), event("q", "Misfiled", 7)}}, nil
	}); err == nil {
		t.Fatal("a step stored an event of another pipeline")
	}
	for _, id := range []string{"r-failed", "r-misfiled"} {
		_, err := s.GetRuleExecution(ctx, id)
		wantErr(t, err, store.ErrNotFound)
	}
	if got, err := s.ListEvents(ctx, "p", all[4].ID, 0); err != nil || len(got) != 0 {
		t.Fatalf("events after failed steps: %+v, %v", got, err)
	}
	if got, err := s.ListEvents(ctx, "q", 0, 0); err != nil || len(got) != 1 {
		t.Fatalf("pipeline q's events after a step misfiled one: %+v, %v", got, err)
	}

	appendEvents(t, s, "p", event("p", "StageExited", 8))
	if got, err := s.ListEvents(ctx, "p", all[4].ID, 0); err != nil || len(got) != 1 || got[0].Kind != "StageExited" {
		t.Fatalf("events after the failed steps and another: %+v, %v", got, err)
	}
}

func testDeletePipelineRemovesRuntime(t *testing.T, open func() store.Store) {
	s := openStore(t, open)
	at := time.UnixMilli(1700000000000).UTC()
	// p goes last, so that its events have the highest ids when it is deleted.
	for _, name := range []string{"q", "p"} {
		must(t, s.Step(ctx, name, func(store.Current) (store.Change, error) {
			return store.Change{
				State:   []byte(`{}`),
				Actions: []store.ActionExecution{{ID: name + "-a", ExecutionID: name + "-e", Pipeline: name, Stage: "S", Action: "A", Status: "InProgress", Doc: []byte(`{}`), Started: at, Updated: at}},
				Rules:   []store.RuleExecution{rule(name, name+"-r", name+"-e", 0)},
				Events:  []store.Event{event(name, "PipelineExecutionStarted", 0), event(name, "StageEntered", 1)},
			}, nil
		}))
	}
	before, err := s.ListEvents(ctx, "p", 0, 0)
	must(t, err)
	if len(before) != 2 {
		t.Fatalf("p's events before delete: %+v", before)
	}
	must(t, s.DeletePipeline(ctx, "p", arn("p")))

	_, err = s.GetActionExecution(ctx, "p-a")
	wantErr(t, err, store.ErrNotFound)
	_, err = s.GetRuleExecution(ctx, "p-r")
	wantErr(t, err, store.ErrNotFound)
	if rules, err := s.ListRuleExecutions(ctx, "p", "", store.Page{}); err != nil || len(rules) != 0 {
		t.Fatalf("rules of a deleted pipeline: %+v, %v", rules, err)
	}
	if events, err := s.ListEvents(ctx, "p", 0, 0); err != nil || len(events) != 0 {
		t.Fatalf("events of a deleted pipeline: %+v, %v", events, err)
	}
	if _, err := s.GetRuleExecution(ctx, "q-r"); err != nil {
		t.Fatalf("another pipeline's rule after delete: %v", err)
	}
	if events, err := s.ListEvents(ctx, "q", 0, 0); err != nil || len(events) != 2 {
		t.Fatalf("another pipeline's events after delete: %+v, %v", events, err)
	}

	// A pipeline made again under the name numbers its events after the deleted ones': a reader
	// that paged through those misses none of the new.
	appendEvents(t, s, "p", event("p", "PipelineExecutionStarted", 2))
	if events, err := s.ListEvents(ctx, "p", before[1].ID, 0); err != nil || len(events) != 1 {
		t.Fatalf("events of the pipeline made again, after the deleted ones': %+v, %v", events, err)
	}
}

func job(id, typeKey, query string, created int64) store.Job {
	at := time.UnixMilli(1700000000000 + created).UTC()
	return store.Job{ID: id, ActionExecutionID: "a-" + id, ExecutionID: "e", Pipeline: "p", TypeKey: typeKey, QueryValue: query,
		Status: "Queued", Data: []byte(`{}`), Created: at, Updated: at}
}

func testJobsAreDispatchedOnce(t *testing.T, open func() store.Store) {
	s := openStore(t, open)
	var jobs []store.Job
	for i := range 20 {
		jobs = append(jobs, job(fmt.Sprintf("j%02d", i), "Build/Custom/Make/1", []string{"fast", "slow"}[i%2], int64(i)))
	}
	jobs = append(jobs, job("other", "Deploy/Custom/Ship/1", "", 0))
	must(t, s.Step(ctx, "p", func(store.Current) (store.Change, error) { return store.Change{State: []byte(`{}`), Jobs: jobs}, nil }))

	slow, err := s.DispatchJobs(ctx, "Build/Custom/Make/1", "slow", 2, func() string { return "n" })
	must(t, err)
	if len(slow) != 2 || slow[0].ID != "j01" || slow[1].ID != "j03" || slow[0].Status != "Dispatched" || slow[0].Nonce != "n" {
		t.Fatalf("dispatched %+v", slow)
	}
	var mu sync.Mutex
	seen := map[string]bool{"j01": true, "j03": true}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				got, err := s.DispatchJobs(ctx, "Build/Custom/Make/1", "", 3, func() string { return "n" })
				if errors.Is(err, store.ErrConflict) {
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, j := range got {
					if seen[j.ID] {
						t.Errorf("job %s dispatched twice", j.ID)
					}
					seen[j.ID] = true
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(seen) != 20 {
		t.Fatalf("%d of 20 jobs dispatched", len(seen))
	}
	if j, _ := s.GetJob(ctx, "other"); j.Status != "Queued" {
		t.Fatalf("a job of another type was dispatched: %+v", j)
	}
}

func testJobStatusCompareAndSwap(t *testing.T, open func() store.Store) {
	s := openStore(t, open)
	must(t, s.Step(ctx, "p", func(store.Current) (store.Change, error) {
		return store.Change{State: []byte(`{}`), Jobs: []store.Job{job("j", "T", "", 0)}}, nil
	}))
	now := time.UnixMilli(1700000001000).UTC()
	must(t, s.SetJobStatus(ctx, "j", "Queued", "InProgress", now))
	wantErr(t, s.SetJobStatus(ctx, "j", "Queued", "InProgress", now), store.ErrConflict)
	if j, err := s.GetJob(ctx, "j"); err != nil || j.Status != "InProgress" || !j.Updated.Equal(now) {
		t.Fatalf("job %+v, %v", j, err)
	}
	_, err := s.GetJob(ctx, "missing")
	wantErr(t, err, store.ErrNotFound)
}

func testTouchJobKeepsItFromTheSweeper(t *testing.T, open func() store.Store) {
	s := openStore(t, open)
	must(t, s.Step(ctx, "p", func(store.Current) (store.Change, error) {
		return store.Change{State: []byte(`{}`), Jobs: []store.Job{job("j", "T", "", 0)}}, nil
	}))
	if alive, err := s.TouchJob(ctx, "j", time.Now()); err != nil || alive {
		t.Fatalf("touching a queued job: %v, %v", alive, err)
	}
	_, err := s.DispatchJobs(ctx, "T", "", 1, func() string { return "n" })
	must(t, err)
	later := time.Now().Add(time.Hour)
	if alive, err := s.TouchJob(ctx, "j", later); err != nil || !alive {
		t.Fatalf("touching a dispatched job: %v, %v", alive, err)
	}
	_, _, err = s.RequeueJobs(ctx, later.Add(-time.Second), 3, nil)
	must(t, err)
	if j, _ := s.GetJob(ctx, "j"); j.Status != "Dispatched" || j.Dispatches != 0 {
		t.Fatalf("a job touched after the cut-off was requeued, or still counts its dispatch: %+v", j)
	}
	// A job a worker showed alive is handed out again after a crash without nearing exhaustion.
	requeued, _, err := s.RequeueJobs(ctx, later.Add(time.Second), 1, nil)
	must(t, err)
	if j, _ := s.GetJob(ctx, "j"); j.Status != "Queued" || !slices.Equal(requeued, []string{j.TypeKey}) {
		t.Fatalf("a touched job whose worker went quiet was not requeued, or not reported (%v): %+v", requeued, j)
	}
	_, err = s.DispatchJobs(ctx, "T", "", 1, func() string { return "n2" })
	must(t, err)
	if alive, err := s.TouchJob(ctx, "j", later); err != nil || !alive {
		t.Fatalf("touching the job dispatched again: %v, %v", alive, err)
	}
	must(t, s.SetJobStatus(ctx, "j", "Dispatched", "Abandoned", later))
	if alive, err := s.TouchJob(ctx, "j", later); err != nil || alive {
		t.Fatalf("touching an abandoned job: %v, %v", alive, err)
	}
	if alive, err := s.TouchJob(ctx, "missing", later); err != nil || alive {
		t.Fatalf("touching a missing job: %v, %v", alive, err)
	}
}

func testSweepFindsWork(t *testing.T, open func() store.Store) {
	s := openStore(t, open)
	for _, name := range []string{"busy", "idle"} {
		must(t, s.Step(ctx, name, func(store.Current) (store.Change, error) {
			return store.Change{State: []byte(`{}`), Active: name == "busy", Jobs: []store.Job{job(name+"-job", "T", "", 0)}}, nil
		}))
	}
	active, err := s.ActivePipelines(ctx)
	must(t, err)
	if fmt.Sprint(active) != "[busy]" {
		t.Fatalf("active pipelines %v", active)
	}
	dispatched, err := s.DispatchJobs(ctx, "T", "", 2, func() string { return "n" })
	must(t, err)
	if len(dispatched) != 2 {
		t.Fatalf("dispatched %d", len(dispatched))
	}
	must(t, s.SetJobStatus(ctx, "busy-job", "Dispatched", "InProgress", time.Now()))
	_, exhausted, err := s.RequeueJobs(ctx, time.Now().Add(time.Minute), 2, nil)
	must(t, err)
	if len(exhausted) != 0 {
		t.Fatalf("exhausted %+v after one dispatch", exhausted)
	}
	if j, _ := s.GetJob(ctx, "idle-job"); j.Status != "Queued" || j.Nonce != "" || j.Dispatches != 1 {
		t.Fatalf("requeued job %+v", j)
	}
	if j, _ := s.GetJob(ctx, "busy-job"); j.Status != "InProgress" {
		t.Fatalf("an acknowledged job was requeued: %+v", j)
	}
	if again, _ := s.DispatchJobs(ctx, "T", "", 2, func() string { return "m" }); len(again) != 1 || again[0].ID != "idle-job" || again[0].Dispatches != 2 {
		t.Fatalf("after the requeue, dispatched %+v", again)
	}
	// The job's type unlimited (the server's own runners take its jobs), it goes back to the queue.
	_, exhausted, err = s.RequeueJobs(ctx, time.Now().Add(time.Minute), 2, []string{"other", "T"})
	must(t, err)
	if j, _ := s.GetJob(ctx, "idle-job"); len(exhausted) != 0 || j.Status != "Queued" {
		t.Fatalf("a job of an unlimited type handed out twice: exhausted %+v, job %+v", exhausted, j)
	}
	if again, _ := s.DispatchJobs(ctx, "T", "", 2, func() string { return "o" }); len(again) != 1 || again[0].Dispatches != 3 {
		t.Fatalf("dispatched the requeued job again: %+v", again)
	}
	_, exhausted, err = s.RequeueJobs(ctx, time.Now().Add(time.Minute), 2, nil)
	must(t, err)
	if len(exhausted) != 1 || exhausted[0].ID != "idle-job" || exhausted[0].Status != "Dispatched" {
		t.Fatalf("a job handed out three times, never acknowledged: %+v", exhausted)
	}
}

func testSourceEventsWaitUntilHandled(t *testing.T, open func() store.Store) {
	s := openStore(t, open)
	at := time.UnixMilli(1700000000000).UTC()
	for i, id := range []string{"b", "a", "c"} {
		must(t, s.AddSourceEvent(ctx, store.SourceEvent{ID: id, Doc: []byte(`{"n":` + fmt.Sprint(i) + `}`), Created: at.Add(time.Duration(i) * time.Second)}))
	}
	if err := s.AddSourceEvent(ctx, store.SourceEvent{ID: "a", Doc: []byte(`{}`), Created: at}); err == nil {
		t.Fatal("a second event with the same id was recorded")
	}
	events, err := s.SourceEvents(ctx, 2)
	must(t, err)
	if len(events) != 2 || events[0].ID != "b" || events[1].ID != "a" || string(events[0].Doc) != `{"n":0}` || !events[1].Created.Equal(at.Add(time.Second)) {
		t.Fatalf("the two oldest events: %+v", events)
	}
	must(t, s.DeleteSourceEvent(ctx, "b"))
	must(t, s.DeleteSourceEvent(ctx, "b"))
	events, err = s.SourceEvents(ctx, 10)
	must(t, err)
	if len(events) != 2 || events[0].ID != "a" || events[1].ID != "c" {
		t.Fatalf("events after one was handled: %+v", events)
	}
}
