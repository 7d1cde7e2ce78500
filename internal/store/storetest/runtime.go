package storetest

import (
	"errors"
	"fmt"
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
		"JobsAreDispatchedOnce":         testJobsAreDispatchedOnce,
		"JobStatusIsCompareAndSwap":     testJobStatusCompareAndSwap,
		"TouchJobKeepsItFromTheSweeper": testTouchJobKeepsItFromTheSweeper,
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
	must(t, s.Step(ctx, "p", func(store.Current) (store.Change, error) {
		return store.Change{State: []byte(`{}`), Jobs: []store.Job{job("j", "T", "", 0)}, Actions: []store.ActionExecution{action}}, nil
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
	_, err = s.RequeueJobs(ctx, later.Add(-time.Second), 3)
	must(t, err)
	if j, _ := s.GetJob(ctx, "j"); j.Status != "Dispatched" {
		t.Fatalf("a job touched after the cut-off was requeued: %+v", j)
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
	exhausted, err := s.RequeueJobs(ctx, time.Now().Add(time.Minute), 2)
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
	exhausted, err = s.RequeueJobs(ctx, time.Now().Add(time.Minute), 2)
	must(t, err)
	if len(exhausted) != 1 || exhausted[0].ID != "idle-job" || exhausted[0].Status != "Dispatched" {
		t.Fatalf("a job handed out twice, never acknowledged: %+v", exhausted)
	}
}
