package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/sluicehq/sluice/internal/executor"
	"github.com/sluicehq/sluice/internal/model"
	"github.com/sluicehq/sluice/internal/store"
	"github.com/sluicehq/sluice/internal/store/postgres"
	"github.com/sluicehq/sluice/internal/store/sqlite"
)

// scaleSize is how much the scale scenario stores.
type scaleSize struct{ pipelines, actions int }

// pageSize is what ListPipelines and ListActionExecutions return per page by default; the small
// store holds one full page of each, so that both stores answer pages of the same size.
const pageSize = 100

// scaleOps are the operations the scale scenario times, in the report's order: the two list
// pages the target is about, and two reads of single records.
var scaleOps = []string{"ListPipelines", "ListActionExecutions", "GetPipeline", "GetPipelineExecution"}

// scaleMeasure is one store's figures in the scale scenario.
type scaleMeasure struct {
	label string
	// results are in scaleOps' order.
	results []result
	rssMB   float64
}

// scale measures the latencies of scaleOps on a small store, then again once it holds size, and
// the server's memory. The records are written straight into the store the server runs on —
// SQLite's file or the PostgreSQL schema — since creating them through the API would take
// hours; the server reads them as its own.
func scale(ctx context.Context, t *target, o options, size scaleSize) ([]scaleMeasure, error) {
	st, err := openStore(ctx, t)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	measure := func(label string, pipelines int) (scaleMeasure, error) {
		c := newClient(t.endpoint, o.concurrency)
		var list struct {
			Summaries []struct {
				ID string `json:"pipelineExecutionId"`
			} `json:"pipelineExecutionSummaries"`
		}
		if err := json.Unmarshal(c.must(ctx, "ListPipelineExecutions", `{"pipelineName":"scale-00000","maxResults":1}`), &list); err != nil || len(list.Summaries) == 0 {
			return scaleMeasure{}, fmt.Errorf("the execution of scale-00000: %v", err)
		}
		getExecution := fmt.Sprintf(`{"pipelineName":"scale-00000","pipelineExecutionId":%q}`, list.Summaries[0].ID)
		bodies := map[string]func(worker, seq int) string{
			"ListPipelines":        func(int, int) string { return `{}` },
			"ListActionExecutions": func(int, int) string { return `{"pipelineName":"scale-00000"}` },
			// Gets spread over every stored pipeline, so that the large store is read beyond
			// what the server caches.
			"GetPipeline": func(worker, seq int) string {
				return fmt.Sprintf(`{"name":"scale-%05d"}`, (worker*7919+seq*104729)%pipelines)
			},
			"GetPipelineExecution": func(int, int) string { return getExecution },
		}
		m := scaleMeasure{label: label}
		for _, op := range scaleOps {
			m.results = append(m.results, closedLoop(ctx, o.concurrency, o.duration/2, func(ctx context.Context, worker, seq int) error {
				return expect(c.call(ctx, op, bodies[op](worker, seq)))
			}))
		}
		m.rssMB = t.rssMB()
		return m, nil
	}
	// The measured pipeline, scale-00000, has a page of action executions in both stores.
	onlyFirst := func(i int) int {
		if i == 0 {
			return pageSize
		}
		return 0
	}
	if err := seed(ctx, st, 0, pageSize, onlyFirst); err != nil {
		return nil, err
	}
	small, err := measure(fmt.Sprintf("%d pipelines, %d action executions", pageSize, pageSize), pageSize)
	if err != nil {
		return nil, err
	}
	// The other pipelines share the rest of the action executions.
	others := max(1, size.pipelines-1)
	each, rest := (size.actions-pageSize)/others, (size.actions-pageSize)%others
	share := func(i int) int {
		if i-1 < rest {
			return each + 1
		}
		return each
	}
	seedStart := time.Now()
	if err := seed(ctx, st, pageSize, size.pipelines, share); err != nil {
		return nil, err
	}
	if err := seed(ctx, st, 1, pageSize, share); err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "%-55s %-20s seeded in %v\n", "Scale", t.name, time.Since(seedStart).Round(time.Second))
	large, err := measure(fmt.Sprintf("%d pipelines, %d action executions", size.pipelines, size.actions), size.pipelines)
	if err != nil {
		return nil, err
	}
	return []scaleMeasure{small, large}, nil
}

func openStore(ctx context.Context, t *target) (store.Store, error) {
	if t.database != "" {
		return postgres.Open(ctx, t.database)
	}
	return sqlite.Open(ctx, filepath.Join(t.dataDir, "sluice.db"))
}

// seed stores pipelines scale-NNNNN numbered [from, to), creating those that do not exist, and
// gives pipeline i one execution of actions(i) action executions.
func seed(ctx context.Context, st store.Store, from, to int, actions func(i int) int) error {
	var decl struct{ Pipeline json.RawMessage }
	if err := json.Unmarshal([]byte(pipelineJSON("scale", "arn:aws:iam::000000000000:role/bench")), &decl); err != nil {
		return err
	}
	// The first failure stops the feeding, so that no goroutine waits for a worker that quit.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan int)
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := range next {
				if err := seedPipeline(ctx, st, i, decl.Pipeline, actions(i)); err != nil {
					errs <- err
					cancel()
					return
				}
			}
		})
	}
	go func() {
		defer close(next)
		for i := from; i < to; i++ {
			select {
			case next <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	wg.Wait()
	close(errs)
	return <-errs
}

func seedPipeline(ctx context.Context, st store.Store, i int, decl json.RawMessage, actions int) error {
	name := fmt.Sprintf("scale-%05d", i)
	now := time.Now().UTC()
	doc := bytes.Replace(decl, []byte(`"name":"scale"`), fmt.Appendf(nil, `"name":%q,"version":1`, name), 1)
	err := st.CreatePipeline(ctx, store.Pipeline{Name: name, Version: 1, Generation: uuid.NewString(), PipelineType: "V1", ExecutionMode: "SUPERSEDED",
		Declaration: doc, Created: now, Updated: now}, "arn:aws:codepipeline:us-east-1:000000000000:"+name, nil, 0, nil)
	if err != nil && !errors.Is(err, store.ErrExists) {
		return fmt.Errorf("seed %s: %w", name, err)
	}
	if actions == 0 {
		return nil
	}
	execID := uuid.NewString()
	change := store.Change{State: []byte(`{}`)}
	trigger := &model.ExecutionTrigger{TriggerType: new(model.TriggerTypeStartPipelineExecution), TriggerDetail: new("arn:aws:iam::000000000000:root")}
	execDoc, err := json.Marshal(executor.ExecutionDoc{
		Execution: model.PipelineExecution{PipelineName: new(name), PipelineVersion: new(1), PipelineExecutionId: new(execID),
			Status: new(model.PipelineExecutionStatusSucceeded), ArtifactRevisions: []model.ArtifactRevision{}, Trigger: trigger,
			ExecutionMode: new(model.ExecutionModeSuperseded), ExecutionType: new(model.ExecutionTypeStandard)},
		Summary: model.PipelineExecutionSummary{PipelineExecutionId: new(execID), Status: new(model.PipelineExecutionStatusSucceeded),
			StartTime: model.NewTimestamp(now), LastUpdateTime: model.NewTimestamp(now), SourceRevisions: []model.SourceRevision{}, Trigger: trigger,
			ExecutionMode: new(model.ExecutionModeSuperseded), ExecutionType: new(model.ExecutionTypeStandard)},
	})
	if err != nil {
		return err
	}
	change.Executions = append(change.Executions, store.Execution{ID: execID, Pipeline: name, Seq: 1, Version: 1, Status: "Succeeded", Doc: execDoc, Started: now, Updated: now})
	for a := range actions {
		id := uuid.NewString()
		started := now.Add(time.Duration(a) * time.Millisecond)
		detail, err := json.Marshal(model.ActionExecutionDetail{PipelineExecutionId: new(execID), ActionExecutionId: new(id), PipelineVersion: new(1),
			StageName: new("Build"), ActionName: new("Build"), StartTime: model.NewTimestamp(started), LastUpdateTime: model.NewTimestamp(started),
			Status: new(model.ActionExecutionStatusSucceeded),
			Input: &model.ActionExecutionInput{ActionTypeId: &model.ActionTypeId{Category: new(model.ActionCategoryBuild), Owner: new(model.ActionOwnerAws),
				Provider: new("CodeBuild"), Version: new("1")}, Configuration: map[string]string{"ProjectName": "bench"}},
			Output: &model.ActionExecutionOutput{ExecutionResult: &model.ActionExecutionResult{ExternalExecutionId: new("build-" + id)}}})
		if err != nil {
			return err
		}
		change.Actions = append(change.Actions, store.ActionExecution{ID: id, ExecutionID: execID, Pipeline: name, Stage: "Build", Action: "Build",
			Status: "Succeeded", Doc: detail, Started: started, Updated: started})
	}
	return st.Step(ctx, name, func(store.Current) (store.Change, error) { return change, nil })
}
