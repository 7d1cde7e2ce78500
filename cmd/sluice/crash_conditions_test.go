package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	cp "github.com/aws/aws-sdk-go-v2/service/codepipeline"
	"github.com/aws/aws-sdk-go-v2/service/codepipeline/types"
	"github.com/aws/smithy-go"

	"github.com/sluicehq/sluice/internal/store/storetest"
)

// TestConditionsSurviveSIGKILL kills the server with SIGKILL at the points where stage
// conditions and rollbacks are most fragile, restarts it on the same data, and checks that
// nothing was lost or done twice:
//
//   - rule: while a beforeEntry condition's Commands rule runs in the server's own runners
//     (its build is killed with the server and its job handed out again), as the rule reports,
//     and once the condition let the stage's custom action start. The execution ends Succeeded,
//     the rule's killed builds died with the server and its last run finished, the condition
//     was decided once, with one rule execution record (the last run's, whose log tells of
//     every run), and every job of the test's worker was seen and completed once. The rule's
//     commands tell the test, through the loopback network, when a run starts and ends.
//   - rollback: as a failed verification asks for an automatic rollback, and at every step of
//     the rollback execution's jobs (polled, acknowledged, answered); then right after a manual
//     RollbackStage was answered. Exactly one rollback execution runs per failure, to the last
//     good execution, deploying that execution's artifact, and ends Succeeded.
//
// SLUICE_FAULT_ROUNDS=N (default 1) runs each case N times over on the same server, N times the
// kills; in round r, the same run of the rule is killed r+1 times as it starts.
func TestConditionsSurviveSIGKILL(t *testing.T) {
	bin := buildBinary(t)
	rounds := faultRounds(t)
	stores := []struct {
		name string
		args func(t *testing.T) []string
	}{
		{"sqlite", func(t *testing.T) []string { return []string{"--data", t.TempDir()} }},
		{"postgres", func(t *testing.T) []string {
			return []string{"--data", t.TempDir(), "--data-shared", "--database", storetest.PostgresURL(t)}
		}},
	}
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			t.Run("rule", func(t *testing.T) {
				t.Parallel()
				testRuleCrashes(t, bin, rounds, st.args(t)...)
			})
			t.Run("rollback", func(t *testing.T) {
				t.Parallel()
				testRollbackCrashes(t, bin, rounds, st.args(t)...)
			})
		})
	}
}

// crashPoint is a point in a custom job's handling where the test worker may kill the server.
type crashPoint string

const (
	crashPolled   crashPoint = "polled"       // polled, not yet acknowledged
	crashAcked    crashPoint = "acknowledged" // acknowledged, not yet answered
	crashAnswered crashPoint = "answered"     // its result accepted
)

// crashJob is a custom job as the test worker saw it.
type crashJob struct {
	provider, id, execution string
	// input is the location of its first input artifact (bucket/key), revision its revision.
	input, revision string
}

// crashWorker serves the jobs of custom action types from the test's goroutine and kills the
// server where killAt says, so that each kill lands at a known point between two calls and no
// call's outcome is ever unknown.
type crashWorker struct {
	t      *testing.T
	srv    *testServer
	ctx    context.Context
	types  []*types.ActionTypeId
	answer func(provider string, job types.Job) (ok bool, rev *types.CurrentRevision)
	killAt func(point crashPoint, provider string, job types.Job) bool
	// tick, if set, runs once per round of polls: for what the test does besides serving jobs.
	tick func()

	polled   map[string]int // job id → times handed out to the worker
	answered map[string]int // job id → results the server accepted
	jobs     []crashJob
	kills    int
}

func newCrashWorker(t *testing.T, srv *testServer, ids ...*types.ActionTypeId) *crashWorker {
	return &crashWorker{
		t: t, srv: srv, ctx: context.Background(), types: ids,
		answer:   func(string, types.Job) (bool, *types.CurrentRevision) { return true, nil },
		killAt:   func(crashPoint, string, types.Job) bool { return false },
		polled:   map[string]int{},
		answered: map[string]int{},
	}
}

// restart kills the server with SIGKILL and starts it again on the same data.
func (w *crashWorker) restart() {
	w.t.Helper()
	w.srv.stop(syscall.SIGKILL)
	w.srv.start()
	w.kills++
}

// step polls each action type once and works the jobs it gets.
func (w *crashWorker) step() {
	for _, id := range w.types {
		out, err := w.srv.client.PollForJobs(w.ctx, &cp.PollForJobsInput{ActionTypeId: id, MaxBatchSize: aws.Int32(5)})
		if err != nil {
			continue
		}
		for _, job := range out.Jobs {
			w.work(*id.Provider, job)
		}
	}
}

func (w *crashWorker) work(provider string, job types.Job) {
	w.t.Helper()
	id := aws.ToString(job.Id)
	w.polled[id]++
	wj := crashJob{provider: provider, id: id, execution: crashJobExecution(job)}
	if d := job.Data; d != nil {
		if len(d.InputArtifacts) > 0 {
			in := d.InputArtifacts[0]
			if in.Location != nil && in.Location.S3Location != nil {
				wj.input = aws.ToString(in.Location.S3Location.BucketName) + "/" + aws.ToString(in.Location.S3Location.ObjectKey)
			}
			wj.revision = aws.ToString(in.Revision)
		}
	}
	w.jobs = append(w.jobs, wj)
	if w.killAt(crashPolled, provider, job) {
		w.restart()
	}
	if !definitely(w.ctx, func() error {
		_, err := w.srv.client.AcknowledgeJob(w.ctx, &cp.AcknowledgeJobInput{JobId: job.Id, Nonce: job.Nonce})
		return err
	}) {
		w.t.Logf("%s job %s of %s: the server refused its acknowledgement", provider, id, wj.execution)
		return
	}
	if w.killAt(crashAcked, provider, job) {
		w.restart()
	}
	ok, rev := w.answer(provider, job)
	// The server is not killed during a call, but the client may lose an answer (see
	// queryClient): then the result is sent again, and a job already finished says the first
	// one landed.
	for unknown := false; ; unknown = true {
		var err error
		if ok {
			_, err = w.srv.client.PutJobSuccessResult(w.ctx, &cp.PutJobSuccessResultInput{JobId: job.Id, CurrentRevision: rev})
		} else {
			_, err = w.srv.client.PutJobFailureResult(w.ctx, &cp.PutJobFailureResultInput{JobId: job.Id,
				FailureDetails: &types.FailureDetails{Type: types.FailureTypeJobFailed, Message: aws.String("verification failed")}})
		}
		if err == nil {
			w.answered[id]++
			break
		}
		if code, definite := apiErrorCode(err); definite {
			if unknown && code == "InvalidJobStateException" {
				w.answered[id]++
			} else {
				w.t.Errorf("%s job %s of %s: the server refused its result: %v", provider, id, wj.execution, err)
			}
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if w.killAt(crashAnswered, provider, job) {
		w.restart()
	}
}

// apiErrorCode returns the code of an error the server answered with, and whether the call's
// outcome is definite: a 4xx is, a 5xx or a lost answer is not.
func apiErrorCode(err error) (string, bool) {
	var apiErr smithy.APIError
	var httpErr *awshttp.ResponseError
	if errors.As(err, &apiErr) && !(errors.As(err, &httpErr) && httpErr.HTTPStatusCode() >= 500) {
		return apiErr.ErrorCode(), true
	}
	return "", false
}

// queryClient is a client of srv that retries failed calls, for all but the job worker's calls
// and RollbackStage, whose outcomes the test must know. The test harness's client makes one
// attempt, and the SDK's HTTP transport now and then loses an answer it received (the request's
// writer closes the connection under the response: aws/aws-sdk-go-v2#2737, which the SDK's
// retryer handles by retrying net.ErrClosed); against the fast SQLite store it does so every few
// hundred calls. Every call made through it may be repeated: reads, StartPipelineExecution with
// a client token, and creations whose repeat the caller accepts.
func queryClient(srv *testServer) *cp.Client {
	return cp.New(cp.Options{
		Region: "us-east-1", BaseEndpoint: aws.String("http://" + srv.addr),
		Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""), RetryMaxAttempts: 5,
	})
}

// crashJobExecution is the pipeline execution a job runs for.
func crashJobExecution(job types.Job) string {
	if job.Data == nil || job.Data.PipelineContext == nil {
		return ""
	}
	return aws.ToString(job.Data.PipelineContext.PipelineExecutionId)
}

// until serves jobs until done holds.
func (w *crashWorker) until(what string, done func() bool) {
	w.t.Helper()
	for deadline := time.Now().Add(60 * time.Second); !done(); time.Sleep(20 * time.Millisecond) {
		if w.tick != nil {
			w.tick()
		}
		w.step()
		if time.Now().After(deadline) {
			w.t.Fatalf("%s did not happen in time", what)
		}
	}
}

// jobsOf returns the jobs of a provider that ran for an execution.
func (w *crashWorker) jobsOf(provider, execution string) []crashJob {
	var out []crashJob
	for _, j := range w.jobs {
		if j.provider == provider && j.execution == execution {
			out = append(out, j)
		}
	}
	return out
}

// checkExactlyOnce checks that every job was handed out once and completed once.
func (w *crashWorker) checkExactlyOnce() {
	w.t.Helper()
	for _, j := range w.jobs {
		if n := w.polled[j.id]; n != 1 {
			w.t.Errorf("%s job %s of %s was handed out %d times, want once", j.provider, j.id, j.execution, n)
		}
		if n := w.answered[j.id]; n != 1 {
			w.t.Errorf("%s job %s of %s was completed %d times, want once", j.provider, j.id, j.execution, n)
		}
	}
}

func crashActionType(category types.ActionCategory, provider string) *types.ActionTypeId {
	return &types.ActionTypeId{Category: category, Owner: types.ActionOwnerCustom, Provider: aws.String(provider), Version: aws.String("1")}
}

func crashCreateType(t *testing.T, client *cp.Client, id *types.ActionTypeId, in, out int32) {
	t.Helper()
	if _, err := client.CreateCustomActionType(context.Background(), &cp.CreateCustomActionTypeInput{Category: id.Category, Provider: id.Provider, Version: id.Version,
		InputArtifactDetails: &types.ArtifactDetails{MaximumCount: in}, OutputArtifactDetails: &types.ArtifactDetails{MaximumCount: out}}); err != nil {
		// A retried call finds what its first attempt created.
		if code, _ := apiErrorCode(err); code != "ActionTypeAlreadyExistsException" {
			t.Fatal(err)
		}
	}
}

// crashCreatePipeline creates a pipeline through a queryClient.
func crashCreatePipeline(t *testing.T, client *cp.Client, decl *types.PipelineDeclaration) {
	t.Helper()
	if _, err := client.CreatePipeline(context.Background(), &cp.CreatePipelineInput{Pipeline: decl}); err != nil {
		// A retried call finds what its first attempt created.
		if code, _ := apiErrorCode(err); code != "PipelineNameInUseException" {
			t.Fatal(err)
		}
	}
}

func crashAction(name string, id *types.ActionTypeId, runOrder int32, in, out string) types.ActionDeclaration {
	a := types.ActionDeclaration{Name: aws.String(name), ActionTypeId: id, RunOrder: aws.Int32(runOrder)}
	if in != "" {
		a.InputArtifacts = []types.InputArtifact{{Name: aws.String(in)}}
	}
	if out != "" {
		a.OutputArtifacts = []types.OutputArtifact{{Name: aws.String(out)}}
	}
	return a
}

func crashStart(t *testing.T, client *cp.Client, pipeline, token string) string {
	t.Helper()
	out, err := client.StartPipelineExecution(context.Background(), &cp.StartPipelineExecutionInput{Name: aws.String(pipeline), ClientRequestToken: aws.String(token)})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.PipelineExecutionId)
}

func crashExecution(t *testing.T, client *cp.Client, pipeline, id string) *types.PipelineExecution {
	t.Helper()
	out, err := client.GetPipelineExecution(context.Background(), &cp.GetPipelineExecutionInput{PipelineName: aws.String(pipeline), PipelineExecutionId: aws.String(id)})
	if err != nil {
		t.Fatalf("execution %s: %v", id, err)
	}
	return out.PipelineExecution
}

func crashEnded(s types.PipelineExecutionStatus) bool {
	return s != types.PipelineExecutionStatusInProgress && s != types.PipelineExecutionStatusStopping
}

// crashActionsOnce checks that each named action of an execution ran once and succeeded.
func crashActionsOnce(t *testing.T, client *cp.Client, pipeline, execID string, names ...string) {
	t.Helper()
	out, err := client.ListActionExecutions(context.Background(), &cp.ListActionExecutionsInput{PipelineName: aws.String(pipeline),
		Filter: &types.ActionExecutionFilter{PipelineExecutionId: aws.String(execID)}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range out.ActionExecutionDetails {
		got = append(got, aws.ToString(d.ActionName))
		if d.Status != types.ActionExecutionStatusSucceeded {
			t.Errorf("execution %s: action %s is %s", execID, aws.ToString(d.ActionName), d.Status)
		}
	}
	slices.Sort(got)
	want := slices.Sorted(slices.Values(names))
	if !slices.Equal(got, want) {
		t.Errorf("execution %s ran the actions %v, want each of %v once", execID, got, want)
	}
}

// crashDescribeRules lists an execution's rule execution records, for failure messages.
func crashDescribeRules(client *cp.Client, pipeline, execID string) string {
	out, err := client.ListRuleExecutions(context.Background(), &cp.ListRuleExecutionsInput{PipelineName: aws.String(pipeline),
		Filter: &types.RuleExecutionFilter{PipelineExecutionId: aws.String(execID)}})
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, r := range out.RuleExecutionDetails {
		fmt.Fprintf(&b, "\n  %s %s %s", aws.ToString(r.RuleName), aws.ToString(r.RuleExecutionId), r.Status)
		if r.Output != nil && r.Output.ExecutionResult != nil {
			fmt.Fprintf(&b, ": %s", aws.ToString(r.Output.ExecutionResult.ExternalExecutionSummary))
		}
	}
	return b.String()
}

// crashPing is a call a rule's commands make to the test: "start" when a run of the rule begins,
// "end" when its commands are done. The call is answered once done is closed.
type crashPing struct {
	kind, run string
	done      chan struct{}
}

func testRuleCrashes(t *testing.T, bin string, rounds int, storeArgs ...string) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed")
	}
	// The rule's build reaches the test through the loopback network (builds share the host's).
	pings, quit := make(chan crashPing), make(chan struct{})
	var pingMu sync.Mutex
	late := 0 // calls that came once the test stopped taking them
	collecting := true
	ps := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := crashPing{kind: strings.TrimPrefix(r.URL.Path, "/"), run: r.FormValue("run"), done: make(chan struct{})}
		pingMu.Lock()
		if !collecting {
			late++
			pingMu.Unlock()
			return
		}
		pingMu.Unlock()
		select {
		case pings <- p:
		case <-r.Context().Done():
			return
		case <-quit:
			return
		}
		select {
		case <-p.done:
		case <-r.Context().Done():
		case <-quit:
		}
	}))
	// Registered before the server's cleanup, this runs after it.
	t.Cleanup(func() { close(quit); ps.Close() })

	srv := newTestServer(t, bin, append([]string{"--start-on-create=false", "--job-ack-timeout", "1s", "--sweep-interval", "200ms"}, storeArgs...)...)
	client, ctx := queryClient(srv), context.Background()
	fetch, ship := crashActionType(types.ActionCategorySource, "Fetch"), crashActionType(types.ActionCategoryDeploy, "Ship")
	crashCreateType(t, client, fetch, 0, 1)
	crashCreateType(t, client, ship, 1, 0)
	call := func(kind string) string {
		return fmt.Sprintf(`curl -fsS -G --data-urlencode "run=$CODEBUILD_BUILD_ID" %s/%s`, ps.URL, kind)
	}
	rule := types.RuleDeclaration{Name: aws.String("Wait"),
		RuleTypeId: &types.RuleTypeId{Category: types.RuleCategoryRule, Owner: types.RuleOwnerAws, Provider: aws.String("Commands"), Version: aws.String("1")},
		Commands:   []string{call("start"), "sleep 1", call("end")}}
	crashCreatePipeline(t, client, &types.PipelineDeclaration{
		Name: aws.String("gated"), RoleArn: aws.String("arn:aws:iam::000000000000:role/cp"), PipelineType: types.PipelineTypeV2, ExecutionMode: types.ExecutionModeQueued,
		ArtifactStore: &types.ArtifactStore{Type: types.ArtifactStoreTypeS3, Location: aws.String("artifacts")},
		Stages: []types.StageDeclaration{
			{Name: aws.String("Source"), Actions: []types.ActionDeclaration{crashAction("Fetch", fetch, 1, "", "src")}},
			{Name: aws.String("Gate"), Actions: []types.ActionDeclaration{crashAction("Ship", ship, 1, "src", "")},
				BeforeEntry: &types.BeforeEntryConditions{Conditions: []types.Condition{{Result: types.ResultFail, Rules: []types.RuleDeclaration{rule}}}}},
		},
	})

	w := newCrashWorker(t, srv, fetch, ship)
	// Once the condition let Ship start, a kill must not make it evaluated again.
	w.killAt = func(point crashPoint, provider string, _ types.Job) bool {
		return provider == "Ship" && point == crashAcked
	}
	start := time.Now()
	for round := range rounds {
		// Round r kills the rule's first r+1 runs as they start, then the next as it reports:
		// the same rule run survives more and more crashes.
		killedRuns := round + 1
		var runs []string
		finished := map[string]bool{}
		w.tick = func() {
			for {
				select {
				case p := <-pings:
					switch p.kind {
					case "start":
						runs = append(runs, p.run)
						if len(runs) <= killedRuns {
							// The rule is InProgress, its commands between two steps: kill.
							w.restart()
						}
						close(p.done)
					case "end":
						finished[p.run] = true
						close(p.done)
						if len(runs) == killedRuns+1 {
							// The commands are done and the runner is about to report: kill.
							// (Should the report win the race, it was stored and the condition
							// is decided; else the run is taken up again.)
							w.restart()
						}
					default:
						close(p.done)
						t.Errorf("unexpected call %q from the rule", p.kind)
					}
				default:
					return
				}
			}
		}
		id := crashStart(t, client, "gated", fmt.Sprintf("gated-%d", round))
		var e *types.PipelineExecution
		w.until("the end of execution "+id, func() bool {
			e = crashExecution(t, client, "gated", id)
			return crashEnded(e.Status)
		})
		if e.Status != types.PipelineExecutionStatusSucceeded {
			t.Fatalf("execution %s ended %s (%s) after the rule ran %d times: actions:%s\nrules:%s", id, e.Status, aws.ToString(e.StatusSummary), len(runs),
				describeActions(t, client, "gated"), crashDescribeRules(client, "gated", id))
		}

		// The rule ran, was killed with the server, ran again (and again, if the kill before
		// its report won the race), and its last run finished.
		t.Logf("execution %s: the rule ran %d times", id, len(runs))
		if len(runs) < killedRuns+1 || len(runs) > killedRuns+2 {
			t.Errorf("execution %s: the rule ran %d times (%v), want %d or %d: killed %d times while it ran, once as it reported",
				id, len(runs), runs, killedRuns+1, killedRuns+2, killedRuns)
		} else {
			for _, run := range runs[:killedRuns] {
				if finished[run] {
					t.Errorf("execution %s: the rule's run %s, killed with the server, went on to its end", id, run)
				}
			}
			if !finished[runs[len(runs)-1]] {
				t.Errorf("execution %s: the rule's last run %s never reached its end", id, runs[len(runs)-1])
			}
		}

		// One rule execution record, Succeeded; the condition decided once, by that run.
		recs, err := client.ListRuleExecutions(ctx, &cp.ListRuleExecutionsInput{PipelineName: aws.String("gated"),
			Filter: &types.RuleExecutionFilter{PipelineExecutionId: aws.String(id)}})
		if err != nil {
			t.Fatal(err)
		}
		if n := len(recs.RuleExecutionDetails); n != 1 {
			var ids []string
			for _, r := range recs.RuleExecutionDetails {
				ids = append(ids, fmt.Sprintf("%s %s %s", aws.ToString(r.RuleName), aws.ToString(r.RuleExecutionId), r.Status))
			}
			t.Fatalf("execution %s has %d rule execution records %v, want one", id, n, ids)
		}
		rec := recs.RuleExecutionDetails[0]
		if aws.ToString(rec.RuleName) != "Wait" || aws.ToString(rec.StageName) != "Gate" || rec.Status != types.RuleExecutionStatusSucceeded ||
			aws.ToString(rec.PipelineExecutionId) != id {
			t.Errorf("rule execution record: rule %s, stage %s, status %s, execution %s; want Wait, Gate, Succeeded, %s",
				aws.ToString(rec.RuleName), aws.ToString(rec.StageName), rec.Status, aws.ToString(rec.PipelineExecutionId), id)
		}
		// The record is the last run's, and the rule's log tells of every run, in order.
		if res := rec.Output; res == nil || res.ExecutionResult == nil {
			t.Errorf("rule execution record %s has no result", aws.ToString(rec.RuleExecutionId))
		} else if len(runs) > 0 {
			if got := aws.ToString(res.ExecutionResult.ExternalExecutionId); got != runs[len(runs)-1] {
				t.Errorf("rule execution record: external execution id %s, want the last run's %s", got, runs[len(runs)-1])
			}
			log := httpGet(t, aws.ToString(res.ExecutionResult.ExternalExecutionUrl))
			at := 0
			for _, run := range runs {
				i := strings.Index(log[at:], run)
				if i < 0 {
					t.Errorf("the rule's log does not tell of its run %s after the runs before it:\n%s", run, log)
					break
				}
				at += i + len(run)
			}
		}
		state, err := client.GetPipelineState(ctx, &cp.GetPipelineStateInput{Name: aws.String("gated")})
		if err != nil {
			t.Fatal(err)
		}
		gate := state.StageStates[1]
		if l := gate.LatestExecution; l == nil || aws.ToString(l.PipelineExecutionId) != id || l.Status != types.StageExecutionStatusSucceeded {
			t.Errorf("stage Gate's latest execution %+v, want %s Succeeded", l, id)
		}
		c := gate.BeforeEntryConditionState
		switch {
		case c == nil || c.LatestExecution == nil || len(c.ConditionStates) != 1:
			t.Errorf("stage Gate's beforeEntry condition state %+v, want one condition", c)
		case c.LatestExecution.Status != types.ConditionExecutionStatusSucceeded:
			t.Errorf("stage Gate's beforeEntry condition is %s, want Succeeded", c.LatestExecution.Status)
		default:
			rs := c.ConditionStates[0].RuleStates
			if len(rs) != 1 || rs[0].LatestExecution == nil || aws.ToString(rs[0].RuleName) != "Wait" ||
				aws.ToString(rs[0].LatestExecution.RuleExecutionId) != aws.ToString(rec.RuleExecutionId) || rs[0].LatestExecution.Status != types.RuleExecutionStatusSucceeded {
				t.Errorf("stage Gate's rule states %+v, want Wait's run %s Succeeded", rs, aws.ToString(rec.RuleExecutionId))
			}
		}
		crashActionsOnce(t, client, "gated", id, "Fetch", "Ship")
		if t.Failed() {
			t.FailNow()
		}
	}
	elapsed := time.Since(start)

	// No run of the rule outlives its execution: none is handed out again once it succeeded.
	time.Sleep(1500 * time.Millisecond)
	pingMu.Lock()
	collecting = false
	pingMu.Unlock()
	w.tick = nil
	select {
	case p := <-pings:
		close(p.done)
		t.Errorf("the rule ran again (%s %s) after its execution succeeded", p.kind, p.run)
	default:
	}
	pingMu.Lock()
	if late > 0 {
		t.Errorf("%d calls from the rule after its execution succeeded", late)
	}
	pingMu.Unlock()
	w.checkExactlyOnce()
	t.Logf("%d executions, %d kills in %s: every rule decided once, every job worked once", rounds, w.kills, elapsed.Round(time.Millisecond))
}

func testRollbackCrashes(t *testing.T, bin string, rounds int, storeArgs ...string) {
	// Nothing here waits for the sweeper but a poll whose answer the client lost: an
	// acknowledgement timeout well over a restart keeps a job polled before a kill from being
	// handed out again.
	srv := newTestServer(t, bin, append([]string{"--start-on-create=false", "--job-ack-timeout", "5s", "--sweep-interval", "200ms"}, storeArgs...)...)
	client, ctx := queryClient(srv), context.Background()
	fetch := crashActionType(types.ActionCategorySource, "Fetch")
	ship := crashActionType(types.ActionCategoryDeploy, "Ship")
	verify := crashActionType(types.ActionCategoryTest, "Verify")
	crashCreateType(t, client, fetch, 0, 1)
	crashCreateType(t, client, ship, 1, 0)
	crashCreateType(t, client, verify, 1, 0)
	crashCreatePipeline(t, client, &types.PipelineDeclaration{
		Name: aws.String("guarded"), RoleArn: aws.String("arn:aws:iam::000000000000:role/cp"), PipelineType: types.PipelineTypeV2, ExecutionMode: types.ExecutionModeQueued,
		ArtifactStore: &types.ArtifactStore{Type: types.ArtifactStoreTypeS3, Location: aws.String("artifacts")},
		Stages: []types.StageDeclaration{
			{Name: aws.String("Source"), Actions: []types.ActionDeclaration{crashAction("Fetch", fetch, 1, "", "src")}},
			{Name: aws.String("Deploy"), Actions: []types.ActionDeclaration{crashAction("Ship", ship, 1, "src", ""), crashAction("Verify", verify, 2, "src", "")},
				OnFailure: &types.FailureConditions{Result: types.ResultRollback}},
		},
	})

	w := newCrashWorker(t, srv, fetch, ship, verify)
	revisions := 0
	failing := "" // the execution whose verification fails
	standard := map[string]bool{}
	w.answer = func(provider string, job types.Job) (bool, *types.CurrentRevision) {
		switch provider {
		case "Fetch":
			revisions++
			rev := fmt.Sprintf("rev-%d", revisions)
			return true, &types.CurrentRevision{Revision: aws.String(rev), ChangeIdentifier: aws.String(rev)}
		case "Verify":
			return crashJobExecution(job) != failing, nil
		}
		return true, nil
	}
	w.killAt = func(point crashPoint, provider string, job types.Job) bool {
		execID := crashJobExecution(job)
		switch {
		case execID == failing && provider == "Verify":
			// The failure was stored and, with it, the rollback it asks for.
			return point == crashAnswered
		case !standard[execID]:
			// A rollback's jobs: kill at each point of each.
			return provider == "Ship" || provider == "Verify"
		}
		return false
	}
	// rollbacks lists the pipeline's rollback executions.
	rollbacks := func() []types.PipelineExecutionSummary {
		var out []types.PipelineExecutionSummary
		for _, e := range executions(t, client, "guarded") {
			if e.ExecutionType == types.ExecutionTypeRollback {
				out = append(out, e)
			}
		}
		return out
	}
	// checkRollback checks a rollback execution: it ended Succeeded, rolled back to target, and
	// deployed target's artifact, each of its actions once.
	checkRollback := func(id, target string, trigger types.TriggerType, detail string) {
		t.Helper()
		e := crashExecution(t, client, "guarded", id)
		if e.Status != types.PipelineExecutionStatusSucceeded {
			t.Errorf("rollback execution %s ended %s (%s): %s", id, e.Status, aws.ToString(e.StatusSummary), describeActions(t, client, "guarded"))
		}
		if e.ExecutionType != types.ExecutionTypeRollback || e.RollbackMetadata == nil || aws.ToString(e.RollbackMetadata.RollbackTargetPipelineExecutionId) != target {
			t.Errorf("rollback execution %s: type %s, rollback metadata %+v; want ROLLBACK to %s", id, e.ExecutionType, e.RollbackMetadata, target)
		}
		if e.Trigger == nil || e.Trigger.TriggerType != trigger || (detail != "" && aws.ToString(e.Trigger.TriggerDetail) != detail) {
			t.Errorf("rollback execution %s: trigger %+v, want %s %s", id, e.Trigger, trigger, detail)
		}
		crashActionsOnce(t, client, "guarded", id, "Ship", "Verify")
		good, rolled := w.jobsOf("Ship", target), w.jobsOf("Ship", id)
		if len(good) != 1 || len(rolled) != 1 {
			t.Fatalf("Ship jobs: %d of the target %s, %d of the rollback %s; want one each", len(good), target, len(rolled), id)
		}
		if rolled[0].input == "" || rolled[0].input != good[0].input || rolled[0].revision != good[0].revision {
			t.Errorf("the rollback %s deployed %s (revision %q), want the target %s's artifact %s (revision %q)",
				id, rolled[0].input, rolled[0].revision, target, good[0].input, good[0].revision)
		}
		state, err := client.GetPipelineState(ctx, &cp.GetPipelineStateInput{Name: aws.String("guarded")})
		if err != nil {
			t.Fatal(err)
		}
		if l := state.StageStates[1].LatestExecution; l == nil || aws.ToString(l.PipelineExecutionId) != id || l.Status != types.StageExecutionStatusSucceeded || l.Type != types.ExecutionTypeRollback {
			t.Errorf("stage Deploy's latest execution %+v, want the rollback %s, Succeeded", l, id)
		}
	}

	start := time.Now()
	var good string
	for round := range rounds {
		good = crashStart(t, client, "guarded", fmt.Sprintf("good-%d", round))
		standard[good] = true
		w.until("the end of execution "+good, func() bool { return crashEnded(crashExecution(t, client, "guarded", good).Status) })
		if e := crashExecution(t, client, "guarded", good); e.Status != types.PipelineExecutionStatusSucceeded {
			t.Fatalf("execution %s ended %s: %s", good, e.Status, describeActions(t, client, "guarded"))
		}

		failing = crashStart(t, client, "guarded", fmt.Sprintf("bad-%d", round))
		standard[failing] = true
		var rollback string
		w.until("the rollback of execution "+failing, func() bool {
			if !crashEnded(crashExecution(t, client, "guarded", failing).Status) {
				return false
			}
			rbs := rollbacks()
			if len(rbs) <= round {
				return false
			}
			rollback = aws.ToString(rbs[0].PipelineExecutionId)
			return crashEnded(rbs[0].Status)
		})
		if e := crashExecution(t, client, "guarded", failing); e.Status != types.PipelineExecutionStatusFailed {
			t.Errorf("execution %s ended %s, want Failed", failing, e.Status)
		}
		if n := len(rollbacks()); n != round+1 {
			t.Fatalf("%d rollback executions after %d failures, want one each", n, round+1)
		}
		checkRollback(rollback, good, types.TriggerTypeAutomatedRollback, failing)
		if t.Failed() {
			t.FailNow()
		}
	}

	// A manual rollback, the server killed as soon as RollbackStage answered: the rollback it
	// acknowledged must be there, and run.
	var manual string
	for manual == "" {
		out, err := srv.client.RollbackStage(ctx, &cp.RollbackStageInput{PipelineName: aws.String("guarded"), StageName: aws.String("Deploy"), TargetPipelineExecutionId: aws.String(good)})
		if err == nil {
			manual = aws.ToString(out.PipelineExecutionId)
			break
		}
		if _, definite := apiErrorCode(err); definite {
			t.Fatalf("RollbackStage: %v", err)
		}
		// The client lost the answer: the rollback is there if the call landed.
		for _, e := range rollbacks() {
			if e.Trigger != nil && e.Trigger.TriggerType == types.TriggerTypeManualRollback {
				manual = aws.ToString(e.PipelineExecutionId)
			}
		}
	}
	w.restart()
	crashExecution(t, client, "guarded", manual)
	w.until("the end of the manual rollback "+manual, func() bool { return crashEnded(crashExecution(t, client, "guarded", manual).Status) })
	checkRollback(manual, good, types.TriggerTypeManualRollback, "")
	if n := len(rollbacks()); n != rounds+1 {
		t.Errorf("%d rollback executions, want %d automatic and one manual", n, rounds)
	}
	w.checkExactlyOnce()
	t.Logf("%d automatic rollbacks and a manual one, %d kills in %s: each rollback ran once, to its target's artifact, every job worked once",
		rounds, w.kills, time.Since(start).Round(time.Millisecond))
}
