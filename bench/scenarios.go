package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// pipelineJSON is a three-stage pipeline of common providers: S3 source, CodeBuild, S3 deploy.
func pipelineJSON(name, role string) string {
	return fmt.Sprintf(`{"pipeline":{"name":%q,"roleArn":%q,"artifactStore":{"type":"S3","location":"bench-artifacts"},"stages":[
{"name":"Source","actions":[{"name":"Source","actionTypeId":{"category":"Source","owner":"AWS","provider":"S3","version":"1"},"configuration":{"S3Bucket":"bench-source","S3ObjectKey":"app.zip","PollForSourceChanges":"false"},"outputArtifacts":[{"name":"Src"}]}]},
{"name":"Build","actions":[{"name":"Build","actionTypeId":{"category":"Build","owner":"AWS","provider":"CodeBuild","version":"1"},"configuration":{"ProjectName":"bench"},"inputArtifacts":[{"name":"Src"}],"outputArtifacts":[{"name":"Out"}]}]},
{"name":"Deploy","actions":[{"name":"Deploy","actionTypeId":{"category":"Deploy","owner":"AWS","provider":"S3","version":"1"},"configuration":{"BucketName":"bench-site","Extract":"true"},"inputArtifacts":[{"name":"Out"}]}]}]}}`, name, role)
}

// ceilingDoc is what the ceiling answers: Sluice's GetPipeline answer, once it has one.
var ceilingDoc []byte

// scenario is one workload; it runs on the targets whose kind it lists ("sluice-auth": Sluice
// with authentication on, compared in rounds with it off).
type scenario struct {
	name  string
	kinds []string
	// unit names what the rate counts.
	unit string
	run  func(ctx context.Context, t *target, o options) (result, error)
	// serverArgs are flags of `sluice serve` the scenario runs Sluice with, after the harness's
	// (which turn off the first execution on create and source polling).
	serverArgs []string
	// about, if set, says in the report what the scenario does that its name does not.
	about string
}

type options struct {
	duration    time.Duration
	concurrency int
	// rounds is how many times each side of a comparison runs, alternating.
	rounds int
	// profileDir, if set, receives a CPU profile of each Sluice target per scenario.
	profileDir string
	scale      scaleSize
	// replicas are the replica counts of the multi-replica scenario, ascending.
	replicas []int
}

var scenarios = []scenario{
	{name: "GetPipeline", kinds: []string{"sluice", "sluice-auth", "moto", "ceiling"}, unit: "requests/s", run: getPipeline},
	{name: "ListPipelines (100 pipelines)", kinds: []string{"sluice", "moto"}, unit: "requests/s", run: listPipelines},
	{name: "CreatePipeline", kinds: []string{"sluice", "sluice-auth", "moto"}, unit: "requests/s", run: createPipelines,
		serverArgs: []string{"--start-on-create=true"}, about: createAbout},
	{name: "CreatePipeline, no first execution (--start-on-create=false)", kinds: []string{"sluice"}, unit: "requests/s", run: createPipelines,
		about: "Sluice started with `--start-on-create=false`: CreatePipeline only stores the pipeline. Not what AWS does; it shows what the first execution costs."},
	{name: "CreatePipeline + DeletePipeline", kinds: []string{"sluice", "moto"}, unit: "requests/s", run: createDelete},
	{name: "Engine: 3-stage executions, PARALLEL", kinds: []string{"sluice"}, unit: "executions/s", run: engineThroughput},
	{name: "Job round trip: PutJobSuccessResult → next job polled", kinds: []string{"sluice"}, unit: "transitions/s", run: jobRoundTrip},
	{name: "GetPipelineState during runs", kinds: []string{"sluice"}, unit: "requests/s", run: pipelineState},
	{name: "S3 upload → execution start", kinds: []string{"sluice"}, unit: "uploads/s", run: uploadStart},
}

func getPipeline(ctx context.Context, t *target, o options) (result, error) {
	c := newClient(t.endpoint, o.concurrency)
	if t.kind != "ceiling" {
		c.must(ctx, "CreatePipeline", pipelineJSON("bench-get", t.roleARN))
		if t.kind == "sluice" && ceilingDoc == nil {
			ceilingDoc = c.must(ctx, "GetPipeline", `{"name":"bench-get"}`)
		}
	}
	return closedLoop(ctx, o.concurrency, o.duration, func(ctx context.Context, _, _ int) error {
		return expect(c.call(ctx, "GetPipeline", `{"name":"bench-get"}`))
	}), nil
}

func listPipelines(ctx context.Context, t *target, o options) (result, error) {
	c := newClient(t.endpoint, o.concurrency)
	for i := range 100 {
		c.must(ctx, "CreatePipeline", pipelineJSON(fmt.Sprintf("bench-list-%03d", i), t.roleARN))
	}
	return closedLoop(ctx, o.concurrency, o.duration, func(ctx context.Context, _, _ int) error {
		return expect(c.call(ctx, "ListPipelines", `{}`))
	}), nil
}

// createAbout describes the CreatePipeline scenario in the report.
const createAbout = "Sluice with its default `--start-on-create=true`, as on AWS: each CreatePipeline stores the pipeline with its first execution, whose source action then runs in the background and fails (the source bucket does not exist), ending it. After the load, the harness waits until the first executions have ended (five pipelines of each client's: its first, its last and three between), and the rate counts that time too (note below). moto starts no execution."

// createPipelines creates pipelines; on Sluice started with --start-on-create, it then waits
// for the first executions still running to end, and counts that time: it waits for those of
// five pipelines of each client's, its first, last, and three between.
func createPipelines(ctx context.Context, t *target, o options) (result, error) {
	c := newClient(t.endpoint, o.concurrency)
	made := make([][]string, o.concurrency)
	r := closedLoop(ctx, o.concurrency, o.duration, func(ctx context.Context, w, seq int) error {
		name := fmt.Sprintf("bench-create-%d-%d", w, seq)
		err := expect(c.call(ctx, "CreatePipeline", pipelineJSON(name, t.roleARN)))
		if err == nil {
			made[w] = append(made[w], name)
		}
		return err
	})
	if t.kind != "sluice" || !slices.Contains(t.args, "--start-on-create=true") {
		return r, nil
	}
	ended := time.Now()
	for _, names := range made {
		n := len(names)
		if n == 0 {
			continue
		}
		// Last first: the rest have most likely ended by the time it has.
		for _, i := range slices.Compact([]int{n - 1, 0, n / 4, n / 2, 3 * n / 4}) {
			if err := waitEnded(ctx, c, names[i], ended.Add(time.Minute)); err != nil {
				return r, err
			}
		}
	}
	r.drain = time.Since(ended)
	r.elapsed += r.drain
	return r, nil
}

// waitEnded waits until pipeline has an execution, and none in progress.
func waitEnded(ctx context.Context, c *client, pipeline string, deadline time.Time) error {
	for {
		status, body, err := c.call(ctx, "ListPipelineExecutions", fmt.Sprintf(`{"pipelineName":%q}`, pipeline))
		if err := expect(status, body, err); err != nil {
			return err
		}
		var out struct {
			Summaries []struct{ Status string } `json:"pipelineExecutionSummaries"`
		}
		if err := json.Unmarshal(body, &out); err != nil {
			return err
		}
		running := false
		for _, s := range out.Summaries {
			running = running || s.Status == "InProgress"
		}
		if len(out.Summaries) > 0 && !running {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the first execution of %s has not ended: %s", pipeline, body)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func createDelete(ctx context.Context, t *target, o options) (result, error) {
	c := newClient(t.endpoint, o.concurrency)
	return closedLoop(ctx, o.concurrency, o.duration, func(ctx context.Context, w, seq int) error {
		name := fmt.Sprintf("bench-cd-%d-%d", w, seq/2)
		if seq%2 == 0 {
			return expect(c.call(ctx, "CreatePipeline", pipelineJSON(name, t.roleARN)))
		}
		return expect(c.call(ctx, "DeletePipeline", fmt.Sprintf(`{"name":%q}`, name)))
	}), nil
}

// engineTypes are the custom action types of the engine pipeline: one per stage.
var engineTypes = []struct{ category, provider string }{{"Source", "BenchFetch"}, {"Build", "BenchMake"}, {"Deploy", "BenchShip"}}

func typeID(i int) string {
	return fmt.Sprintf(`{"category":%q,"owner":"Custom","provider":%q,"version":"1"}`, engineTypes[i].category, engineTypes[i].provider)
}

// enginePipeline creates a V2 PARALLEL pipeline of three stages of one custom action each, whose
// jobs the harness itself completes; with types, it first creates the custom action types.
func enginePipeline(ctx context.Context, c *client, name, role string, types bool) {
	var stages []string
	for i, et := range engineTypes {
		if types {
			c.must(ctx, "CreateCustomActionType", fmt.Sprintf(`{"category":%q,"provider":%q,"version":"1","inputArtifactDetails":{"minimumCount":0,"maximumCount":1},"outputArtifactDetails":{"minimumCount":0,"maximumCount":1}}`, et.category, et.provider))
		}
		stages = append(stages, fmt.Sprintf(`{"name":"S%d","actions":[{"name":"A%d","actionTypeId":%s}]}`, i, i, typeID(i)))
	}
	c.must(ctx, "CreatePipeline", fmt.Sprintf(`{"pipeline":{"name":%q,"roleArn":%q,"pipelineType":"V2","executionMode":"PARALLEL","artifactStore":{"type":"S3","location":"bench-artifacts"},"stages":[%s,%s,%s]}}`,
		name, role, stages[0], stages[1], stages[2]))
}

// caller sends CodePipeline operations: a client of one endpoint, or a replicaSet that spreads
// them over several.
type caller interface {
	call(ctx context.Context, op, body string) (int, []byte, error)
}

// takeJob polls a job of stage i's type until there is one and acknowledges it.
func takeJob(ctx context.Context, c caller, i int) (string, error) {
	for ctx.Err() == nil {
		status, body, err := c.call(ctx, "PollForJobs", fmt.Sprintf(`{"actionTypeId":%s,"maxBatchSize":1}`, typeID(i)))
		if err := expect(status, body, err); err != nil {
			return "", err
		}
		var out struct {
			Jobs []struct{ ID, Nonce string } `json:"jobs"`
		}
		if err := json.Unmarshal(body, &out); err != nil {
			return "", err
		}
		if len(out.Jobs) == 0 {
			// As a job worker does between empty polls, if briefly: the load is the measure.
			time.Sleep(2 * time.Millisecond)
			continue
		}
		j := out.Jobs[0]
		if err := expect(c.call(ctx, "AcknowledgeJob", fmt.Sprintf(`{"jobId":%q,"nonce":%q}`, j.ID, j.Nonce))); err != nil {
			return "", err
		}
		return j.ID, nil
	}
	return "", ctx.Err()
}

func engineThroughput(ctx context.Context, t *target, o options) (result, error) {
	c := newClient(t.endpoint, o.concurrency)
	enginePipeline(ctx, c, "bench-engine", t.roleARN, true)
	return closedLoop(ctx, o.concurrency, o.duration, func(ctx context.Context, _, _ int) error {
		if err := expect(c.call(ctx, "StartPipelineExecution", `{"name":"bench-engine"}`)); err != nil {
			return err
		}
		for i := range engineTypes {
			id, err := takeJob(ctx, c, i)
			if err != nil {
				return err
			}
			if err := expect(c.call(ctx, "PutJobSuccessResult", fmt.Sprintf(`{"jobId":%q}`, id))); err != nil {
				return err
			}
		}
		return nil
	}), nil
}

// jobRoundTrip drives one execution at a time and measures, per stage transition, the time from
// sending PutJobSuccessResult to holding the next stage's job: the engine's step plus the
// protocol's round trips.
func jobRoundTrip(ctx context.Context, t *target, o options) (result, error) {
	c := newClient(t.endpoint, 1)
	enginePipeline(ctx, c, "bench-roundtrip", t.roleARN, true)
	var mu sync.Mutex
	var transitions []time.Duration
	r := closedLoop(ctx, 1, o.duration, func(ctx context.Context, _, _ int) error {
		if err := expect(c.call(ctx, "StartPipelineExecution", `{"name":"bench-roundtrip"}`)); err != nil {
			return err
		}
		id, err := takeJob(ctx, c, 0)
		if err != nil {
			return err
		}
		for i := 1; i <= len(engineTypes); i++ {
			start := time.Now()
			if err := expect(c.call(ctx, "PutJobSuccessResult", fmt.Sprintf(`{"jobId":%q}`, id))); err != nil {
				return err
			}
			if i == len(engineTypes) {
				return nil
			}
			if id, err = takeJob(ctx, c, i); err != nil {
				return err
			}
			mu.Lock()
			transitions = append(transitions, time.Since(start))
			mu.Unlock()
		}
		return nil
	})
	if len(transitions) == 0 {
		return r, errors.New("no transition completed")
	}
	slices.Sort(transitions)
	var total time.Duration
	for _, d := range transitions {
		total += d
	}
	out := result{requests: len(transitions), errors: r.errors, elapsed: total, firstError: r.firstError, latencies: transitions}
	out.percentiles()
	return out, nil
}

// pipelineState reads the state of a pipeline with executions in flight, their jobs queued.
func pipelineState(ctx context.Context, t *target, o options) (result, error) {
	c := newClient(t.endpoint, o.concurrency)
	enginePipeline(ctx, c, "bench-state", t.roleARN, true)
	for range 20 {
		c.must(ctx, "StartPipelineExecution", `{"name":"bench-state"}`)
	}
	return closedLoop(ctx, o.concurrency, o.duration, func(ctx context.Context, _, _ int) error {
		return expect(c.call(ctx, "GetPipelineState", `{"name":"bench-state"}`))
	}), nil
}
