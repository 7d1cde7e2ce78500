package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/schemas"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	cp "github.com/aws/aws-sdk-go-v2/service/codepipeline"
	"github.com/aws/aws-sdk-go-v2/service/codepipeline/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/transport/http/protocol/awsquery"

	"github.com/sluicehq/sluice/internal/sdktest"
	"github.com/sluicehq/sluice/internal/store/storetest"
)

// This file drives the rule types that reach outside the server — CloudWatchAlarm (against a
// real moto_server), LambdaInvoke (against a Lambda Invoke endpoint the test implements),
// DeploymentWindow (against the real clock) and CodeBuild (a buildspec in the source artifact, or
// a project definition) — end to end through a real `sluice serve`, on both stores. The
// environments, declarations and checks of conditions_test.go are reused.

// awsRule is a rule of an AWS rule type.
func awsRule(name, provider string, config map[string]string, inputs ...string) types.RuleDeclaration {
	r := types.RuleDeclaration{Name: aws.String(name), Configuration: config,
		RuleTypeId: &types.RuleTypeId{Category: types.RuleCategoryRule, Owner: types.RuleOwnerAws, Provider: aws.String(provider), Version: aws.String("1")}}
	for _, in := range inputs {
		r.InputArtifacts = append(r.InputArtifacts, types.InputArtifact{Name: aws.String(in)})
	}
	return r
}

// storeName is the name of the store a subtest of eachStoreArgs runs on: sqlite or postgres.
func storeName(t *testing.T) string { return path.Base(t.Name()) }

// freshStore returns server arguments for another, empty store of the kind args select: a data
// directory of its own, and a schema of its own on PostgreSQL.
func freshStore(t *testing.T, args []string) []string {
	t.Helper()
	out := []string{"--data", t.TempDir()}
	if slices.Contains(args, "--database") {
		out = append(out, "--data-shared", "--database", storetest.PostgresURL(t))
	}
	return out
}

// onlyRuleRun returns the one rule execution of an execution, checking its rule and status.
func (e *condEnv) onlyRuleRun(pipeline, id, stage, rule string, status types.RuleExecutionStatus) types.RuleExecutionDetail {
	e.t.Helper()
	runs := e.ruleRuns(pipeline, id, 0, nil).RuleExecutionDetails
	if len(runs) != 1 {
		e.t.Fatalf("%d rule executions of %s, want 1: %s", len(runs), id, e.describe(pipeline))
	}
	r := runs[0]
	if aws.ToString(r.StageName) != stage || aws.ToString(r.RuleName) != rule || r.Status != status || aws.ToString(r.PipelineExecutionId) != id {
		e.t.Fatalf("rule execution %s/%s %s of %s, want %s/%s %s of %s: %s", aws.ToString(r.StageName), aws.ToString(r.RuleName), r.Status,
			aws.ToString(r.PipelineExecutionId), stage, rule, status, id, e.describe(pipeline))
	}
	if status != types.RuleExecutionStatusInProgress && (r.Output == nil || r.Output.ExecutionResult == nil) {
		e.t.Fatalf("rule execution %s/%s has no result: %+v", stage, rule, r.Output)
	}
	return r
}

// wantRuleText checks that a rule execution's summary — and, for a failed one, its error
// message — say each of want.
func wantRuleText(t *testing.T, what string, r types.RuleExecutionDetail, want ...string) {
	t.Helper()
	res := r.Output.ExecutionResult
	texts := map[string]string{"summary": aws.ToString(res.ExternalExecutionSummary)}
	if r.Status == types.RuleExecutionStatusFailed {
		if res.ErrorDetails == nil {
			t.Fatalf("%s: the failed rule execution has no error details", what)
		}
		texts["error message"] = aws.ToString(res.ErrorDetails.Message)
	}
	for kind, text := range texts {
		for _, w := range want {
			if !strings.Contains(text, w) {
				t.Errorf("%s: the rule execution's %s %q does not say %q", what, kind, text, w)
			}
		}
	}
}

// wantStateRule checks GetPipelineState's state of a stage condition with one rule: the
// condition's status, and the rule's name, status and summary.
func wantStateRule(t *testing.T, what string, c *types.StageConditionState, cond types.ConditionExecutionStatus,
	rule string, status types.RuleExecutionStatus, summary ...string) types.RuleState {
	t.Helper()
	if c == nil || c.LatestExecution == nil || c.LatestExecution.Status != cond {
		t.Fatalf("%s: condition state %+v, want %s", what, c, cond)
	}
	if cond == types.ConditionExecutionStatusFailed && !strings.Contains(aws.ToString(c.LatestExecution.Summary), rule) {
		t.Errorf("%s: the failed condition's summary %q does not name the rule %s", what, aws.ToString(c.LatestExecution.Summary), rule)
	}
	rs := conditionRule(t, what, c)
	if aws.ToString(rs.RuleName) != rule || rs.LatestExecution.Status != status {
		t.Fatalf("%s: rule state %s %s, want %s %s", what, aws.ToString(rs.RuleName), rs.LatestExecution.Status, rule, status)
	}
	for _, w := range summary {
		if got := aws.ToString(rs.LatestExecution.Summary); !strings.Contains(got, w) {
			t.Errorf("%s: the rule state's summary %q does not say %q", what, got, w)
		}
	}
	if status == types.RuleExecutionStatusFailed && rs.LatestExecution.ErrorDetails == nil {
		t.Errorf("%s: the failed rule's state has no error details", what)
	}
	return rs
}

// wantNoRun checks that an execution ran none of the actions named.
func (e *condEnv) wantNoRun(pipeline, id string, actions ...string) {
	e.t.Helper()
	runs := e.actionRuns(pipeline, id)
	for _, a := range actions {
		if len(runs[a]) != 0 {
			e.t.Fatalf("execution %s ran %s (%s), which its condition should have kept from running", id, a, runs[a][0].Status)
		}
	}
}

// wantRan checks that an execution ran each action named once, successfully.
func (e *condEnv) wantRan(pipeline, id string, actions ...string) {
	e.t.Helper()
	runs := e.actionRuns(pipeline, id)
	for _, a := range actions {
		if len(runs[a]) != 1 || runs[a][0].Status != types.ActionExecutionStatusSucceeded {
			e.t.Fatalf("execution %s ran %s %d time(s) (%v), want once, successfully: %s", id, a, len(runs[a]), runs[a], e.describe(pipeline))
		}
	}
}

// gated is a pipeline of the S3 source, a stage Gate of one Commands action Ship whose entry is
// gated by rule with result FAIL, and a stage Last of one Commands action After.
func gated(name string, rule types.RuleDeclaration) *types.PipelineDeclaration {
	gate := stageOf("Gate", commandsAction("Ship", 1, "cat page.txt"))
	gate.BeforeEntry = beforeEntry(types.ResultFail, rule)
	return condPipeline(name, types.ExecutionModeQueued, gate, stageOf("Last", commandsAction("After", 1, "echo after")))
}

// TestRulesCloudWatchAlarmEndToEnd gates a stage on an alarm in a real CloudWatch API (moto),
// set up and moved between states with the CloudWatch SDK: OK lets the stage in, ALARM fails
// the execution at the entry condition with the alarm's name and state.
func TestRulesCloudWatchAlarmEndToEnd(t *testing.T) {
	if _, err := exec.LookPath("moto_server"); err != nil {
		t.Skip("moto_server is not installed (pip install 'moto[server]'): the CloudWatchAlarm rule is tested end to end against it")
	}
	bin := buildBinary(t)
	motoURL := startMoto(t)
	cw := cloudwatch.New(cloudwatch.Options{Region: "us-east-1", BaseEndpoint: aws.String(motoURL), Retryer: sdktest.ConnectionRetries(),
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")},
		// moto speaks CloudWatch's Query protocol, not always the CBOR one the SDK now prefers.
		func(o *cloudwatch.Options) { o.Protocol = awsquery.New(schemas.GraniteServiceVersion20100801) })
	setAlarm := func(t *testing.T, name string, state cwtypes.StateValue) {
		t.Helper()
		if _, err := cw.SetAlarmState(t.Context(), &cloudwatch.SetAlarmStateInput{AlarmName: aws.String(name), StateValue: state,
			StateReason: aws.String("set by " + t.Name())}); err != nil {
			t.Fatalf("set the alarm %s to %s: %v", name, state, err)
		}
		got, err := cw.DescribeAlarms(t.Context(), &cloudwatch.DescribeAlarmsInput{AlarmNames: []string{name}})
		if err != nil || len(got.MetricAlarms) != 1 || got.MetricAlarms[0].StateValue != state {
			t.Fatalf("the alarm %s did not move to %s in moto: %+v, %v", name, state, got, err)
		}
	}

	eachStoreArgs(t, func(t *testing.T, args ...string) {
		// Both stores' servers share moto: each has an alarm of its own.
		alarm := "api-errors-" + storeName(t)
		if _, err := cw.PutMetricAlarm(t.Context(), &cloudwatch.PutMetricAlarmInput{
			AlarmName: aws.String(alarm), Namespace: aws.String("Sluice/E2E"), MetricName: aws.String("Errors"),
			Statistic: cwtypes.StatisticSum, Period: aws.Int32(60), EvaluationPeriods: aws.Int32(1),
			Threshold: aws.Float64(1), ComparisonOperator: cwtypes.ComparisonOperatorGreaterThanOrEqualToThreshold,
		}); err != nil {
			t.Fatalf("create the alarm %s: %v", alarm, err)
		}
		e := newCondEnv(t, bin, append(args, "--cloudwatch-endpoint", motoURL)...)
		rule := awsRule("NoAlarm", "CloudWatchAlarm", map[string]string{"AlarmName": alarm, "AlarmStates": "ALARM"})
		e.create(gated("alarm-gated", rule))

		// OK: the rule succeeds, the stage's action and the next stage run.
		setAlarm(t, alarm, cwtypes.StateValueOk)
		ok := e.start("alarm-gated", nil)
		e.waitEnd("alarm-gated", ok, types.PipelineExecutionStatusSucceeded)
		e.wantRan("alarm-gated", ok, "Ship", "After")
		r := e.onlyRuleRun("alarm-gated", ok, "Gate", "NoAlarm", types.RuleExecutionStatusSucceeded)
		wantRuleText(t, "alarm OK", r, "The alarm "+alarm+" is in state OK, none of the states ALARM that fail the rule")
		if arn := aws.ToString(r.Output.ExecutionResult.ExternalExecutionId); !strings.HasPrefix(arn, "arn:aws:cloudwatch:us-east-1:") || !strings.HasSuffix(arn, ":alarm:"+alarm) {
			t.Errorf("the rule execution's external id %q is not the alarm's ARN", arn)
		}
		if in := r.Input; in == nil || in.Configuration["AlarmName"] != alarm || in.ResolvedConfiguration["AlarmStates"] != "ALARM" ||
			in.RuleTypeId == nil || aws.ToString(in.RuleTypeId.Provider) != "CloudWatchAlarm" {
			t.Errorf("the rule execution's input %+v does not give the declared rule", in)
		}
		gs := e.stages("alarm-gated")["Gate"]
		wantStateRule(t, "alarm OK", gs.BeforeEntryConditionState, types.ConditionExecutionStatusSucceeded, "NoAlarm",
			types.RuleExecutionStatusSucceeded, "in state OK")

		// ALARM: the rule fails at once, nothing of the stage runs, the execution fails.
		setAlarm(t, alarm, cwtypes.StateValueAlarm)
		bad := e.start("alarm-gated", nil)
		e.waitEnd("alarm-gated", bad, types.PipelineExecutionStatusFailed)
		e.wantNoRun("alarm-gated", bad, "Ship", "After")
		failing := "The alarm " + alarm + " is in state ALARM, one of the states ALARM that fail the rule"
		r = e.onlyRuleRun("alarm-gated", bad, "Gate", "NoAlarm", types.RuleExecutionStatusFailed)
		wantRuleText(t, "alarm ALARM", r, failing)
		gs = e.stages("alarm-gated")["Gate"]
		if l := gs.LatestExecution; l == nil || aws.ToString(l.PipelineExecutionId) != bad || l.Status != types.StageExecutionStatusFailed {
			t.Fatalf("Gate's latest execution %+v, want %s Failed", gs.LatestExecution, bad)
		}
		rs := wantStateRule(t, "alarm ALARM", gs.BeforeEntryConditionState, types.ConditionExecutionStatusFailed, "NoAlarm",
			types.RuleExecutionStatusFailed, failing)
		if aws.ToString(rs.LatestExecution.RuleExecutionId) != aws.ToString(r.RuleExecutionId) {
			t.Errorf("the stage state's rule execution %s is not the listed one %s", aws.ToString(rs.LatestExecution.RuleExecutionId), aws.ToString(r.RuleExecutionId))
		}

		// Back to OK: the stage is let in again.
		setAlarm(t, alarm, cwtypes.StateValueOk)
		again := e.start("alarm-gated", nil)
		e.waitEnd("alarm-gated", again, types.PipelineExecutionStatusSucceeded)
		e.wantRan("alarm-gated", again, "Ship", "After")
	})
}

// TestRulesCloudWatchAlarmWithoutEndpoint: a server started as a newcomer starts it, without
// --cloudwatch-endpoint, fails a CloudWatchAlarm rule saying which flag it needs.
func TestRulesCloudWatchAlarmWithoutEndpoint(t *testing.T) {
	bin := buildBinary(t)
	eachStoreArgs(t, func(t *testing.T, args ...string) {
		e := newCondEnv(t, bin, args...)
		e.create(gated("alarm-gated", awsRule("NoAlarm", "CloudWatchAlarm", map[string]string{"AlarmName": "api-errors", "AlarmStates": "ALARM"})))
		id := e.start("alarm-gated", nil)
		e.waitEnd("alarm-gated", id, types.PipelineExecutionStatusFailed)
		e.wantNoRun("alarm-gated", id, "Ship", "After")
		r := e.onlyRuleRun("alarm-gated", id, "Gate", "NoAlarm", types.RuleExecutionStatusFailed)
		wantRuleText(t, "no endpoint", r, "start the server with --cloudwatch-endpoint URL")
	})
}

// lambdaCall is an invocation the test's Lambda endpoint received.
type lambdaCall struct {
	function, invocationType, authorization string
	payload                                 []byte
}

// lambdaStub serves Lambda's Invoke route, POST /2015-03-31/functions/{name}/invocations: the
// function "approve" answers {"approved": true}; "reject" raises an error, which Lambda reports
// with the X-Amz-Function-Error header and an error document; any other is not found. It
// returns the endpoint's URL and the invocations so far.
func lambdaStub(t *testing.T) (string, func() []lambdaCall) {
	t.Helper()
	var mu sync.Mutex
	var calls []lambdaCall
	mux := http.NewServeMux()
	mux.HandleFunc("POST /2015-03-31/functions/{name}/invocations", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		name := r.PathValue("name")
		mu.Lock()
		calls = append(calls, lambdaCall{function: name, invocationType: r.Header.Get("X-Amz-Invocation-Type"),
			authorization: r.Header.Get("Authorization"), payload: body})
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Amzn-RequestId", "request-"+name)
		switch name {
		case "approve":
			w.Header().Set("X-Amz-Executed-Version", "$LATEST")
			w.Write([]byte(`{"approved": true}`))
		case "reject":
			w.Header().Set("X-Amz-Function-Error", "Unhandled")
			w.Write([]byte(`{"errorMessage": "change window frozen for web", "errorType": "ChangeFrozen", "stackTrace": []}`))
		default:
			w.Header().Set("X-Amzn-ErrorType", "ResourceNotFoundException")
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"Type": "User", "Message": "Function not found: arn:aws:lambda:us-east-1:000000000000:function:` + name + `"}`))
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL, func() []lambdaCall {
		mu.Lock()
		defer mu.Unlock()
		return append([]lambdaCall(nil), calls...)
	}
}

// lambdaEvent is the part of the event a LambdaInvoke rule sends its function that the test
// checks: CodePipeline's job event, as the Lambda invoke action's functions get it.
type lambdaEvent struct {
	Job struct {
		ID        string `json:"id"`
		AccountID string `json:"accountId"`
		Data      struct {
			ActionConfiguration struct {
				Configuration map[string]string `json:"configuration"`
			} `json:"actionConfiguration"`
			InputArtifacts []struct {
				Name     string `json:"name"`
				Location struct {
					Type       string `json:"type"`
					S3Location struct {
						BucketName string `json:"bucketName"`
						ObjectKey  string `json:"objectKey"`
					} `json:"s3Location"`
				} `json:"location"`
			} `json:"inputArtifacts"`
			PipelineContext struct {
				PipelineName string `json:"pipelineName"`
				Stage        struct {
					Name string `json:"name"`
				} `json:"stage"`
				Action struct {
					Name              string `json:"name"`
					ActionExecutionID string `json:"actionExecutionId"`
				} `json:"action"`
			} `json:"pipelineContext"`
		} `json:"data"`
	} `json:"CodePipeline.job"`
}

// TestRulesLambdaInvokeEndToEnd gates a stage on a Lambda function, on an endpoint the test
// implements: a function that succeeds lets the stage in, and gets the rule's UserParameters
// (variables resolved) and its input artifact, which it can read from the artifact store; one
// that raises fails the execution with the function's error. A server without
// --lambda-endpoint fails the rule saying so.
func TestRulesLambdaInvokeEndToEnd(t *testing.T) {
	bin := buildBinary(t)
	eachStoreArgs(t, func(t *testing.T, args ...string) {
		url, calls := lambdaStub(t)
		e := newCondEnv(t, bin, append(args, "--lambda-endpoint", url)...)
		params := `{"service": "web", "change": "#{variables.GATE}"}`
		resolved := `{"service": "web", "change": "CHG-42"}`
		rule := func(function string) types.RuleDeclaration {
			return awsRule("Approval", "LambdaInvoke", map[string]string{"FunctionName": function, "UserParameters": params}, "Src")
		}
		e.create(gated("lambda-approve", rule("approve")))
		e.create(gated("lambda-reject", rule("reject")))

		// The function succeeds: the stage's action and the next stage run.
		ok := e.start("lambda-approve", map[string]string{"GATE": "CHG-42"})
		e.waitEnd("lambda-approve", ok, types.PipelineExecutionStatusSucceeded)
		e.wantRan("lambda-approve", ok, "Ship", "After")
		r := e.onlyRuleRun("lambda-approve", ok, "Gate", "Approval", types.RuleExecutionStatusSucceeded)
		wantRuleText(t, "approve", r, `The Lambda function approve succeeded, answering {"approved": true}`)
		if id := aws.ToString(r.Output.ExecutionResult.ExternalExecutionId); id != "request-approve" {
			t.Errorf("the rule execution's external id %q, want the invocation's request id", id)
		}
		if in := r.Input; in == nil || in.Configuration["UserParameters"] != params || in.ResolvedConfiguration["UserParameters"] != resolved {
			t.Errorf("the rule execution's input %+v, want UserParameters %s resolved to %s", in, params, resolved)
		}
		wantStateRule(t, "approve", e.stages("lambda-approve")["Gate"].BeforeEntryConditionState, types.ConditionExecutionStatusSucceeded,
			"Approval", types.RuleExecutionStatusSucceeded, "The Lambda function approve succeeded")

		// What the function got.
		var approve []lambdaCall
		for _, c := range calls() {
			if c.function == "approve" {
				approve = append(approve, c)
			}
		}
		if len(approve) != 1 {
			t.Fatalf("the function approve was invoked %d times, want once", len(approve))
		}
		call := approve[0]
		if call.invocationType != "RequestResponse" || !strings.Contains(call.authorization, "/us-east-1/lambda/aws4_request") {
			t.Errorf("invoked with invocation type %q, authorization %q; want RequestResponse, signed for Lambda in us-east-1", call.invocationType, call.authorization)
		}
		var ev lambdaEvent
		if err := json.Unmarshal(call.payload, &ev); err != nil {
			t.Fatalf("the payload is not CodePipeline's job event: %v\n%s", err, call.payload)
		}
		data := ev.Job.Data
		if ev.Job.ID == "" || ev.Job.AccountID != "000000000000" {
			t.Errorf("the event's job id %q, account %q; want an id and the server's account", ev.Job.ID, ev.Job.AccountID)
		}
		if got := data.ActionConfiguration.Configuration; got["UserParameters"] != resolved || got["FunctionName"] != "approve" {
			t.Errorf("the event's configuration %v, want FunctionName approve and UserParameters %s", got, resolved)
		}
		pc := data.PipelineContext
		if pc.PipelineName != "lambda-approve" || pc.Stage.Name != "Gate" || pc.Action.Name != "Approval" ||
			pc.Action.ActionExecutionID != aws.ToString(r.RuleExecutionId) {
			t.Errorf("the event's pipeline context %+v, want lambda-approve, Gate, the rule Approval and its execution %s", pc, aws.ToString(r.RuleExecutionId))
		}
		if len(data.InputArtifacts) != 1 || data.InputArtifacts[0].Name != "Src" || data.InputArtifacts[0].Location.Type != "S3" {
			t.Fatalf("the event's input artifacts %+v, want Src in S3\n%s", data.InputArtifacts, call.payload)
		}
		// A function reads its input from the artifact store: the S3 source's zip.
		loc := data.InputArtifacts[0].Location.S3Location
		obj, err := e.s3.GetObject(e.ctx, &s3.GetObjectInput{Bucket: aws.String(loc.BucketName), Key: aws.String(loc.ObjectKey)})
		if err != nil {
			t.Fatalf("read the input artifact at s3://%s/%s: %v", loc.BucketName, loc.ObjectKey, err)
		}
		raw, err := io.ReadAll(obj.Body)
		obj.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if files := unzipOf(t, raw); files["page.txt"] != "v1\n" {
			t.Errorf("the input artifact holds %v, want the source's page.txt", files)
		}

		// The function raises: nothing of the stage runs, the execution fails with its error.
		bad := e.start("lambda-reject", map[string]string{"GATE": "CHG-43"})
		e.waitEnd("lambda-reject", bad, types.PipelineExecutionStatusFailed)
		e.wantNoRun("lambda-reject", bad, "Ship", "After")
		failing := "The Lambda function reject failed (Unhandled): ChangeFrozen: change window frozen for web"
		r = e.onlyRuleRun("lambda-reject", bad, "Gate", "Approval", types.RuleExecutionStatusFailed)
		wantRuleText(t, "reject", r, failing)
		gs := e.stages("lambda-reject")["Gate"]
		if l := gs.LatestExecution; l == nil || aws.ToString(l.PipelineExecutionId) != bad || l.Status != types.StageExecutionStatusFailed {
			t.Fatalf("Gate's latest execution %+v, want %s Failed", gs.LatestExecution, bad)
		}
		wantStateRule(t, "reject", gs.BeforeEntryConditionState, types.ConditionExecutionStatusFailed, "Approval", types.RuleExecutionStatusFailed, failing)
		var reject []lambdaCall
		for _, c := range calls() {
			if c.function == "reject" {
				reject = append(reject, c)
			}
		}
		if len(reject) != 1 || !strings.Contains(string(reject[0].payload), `CHG-43`) {
			t.Errorf("the function reject was invoked %d times (%v), want once with its execution's variable", len(reject), reject)
		}

		// A server without --lambda-endpoint fails the rule, naming the flag, and invokes nothing.
		before := len(calls())
		bare := newCondEnv(t, bin, freshStore(t, args)...)
		bare.create(gated("lambda-approve", rule("approve")))
		id := bare.start("lambda-approve", nil)
		bare.waitEnd("lambda-approve", id, types.PipelineExecutionStatusFailed)
		bare.wantNoRun("lambda-approve", id, "Ship", "After")
		r = bare.onlyRuleRun("lambda-approve", id, "Gate", "Approval", types.RuleExecutionStatusFailed)
		wantRuleText(t, "no endpoint", r, "start the server with --lambda-endpoint URL")
		if n := len(calls()); n != before {
			t.Errorf("a server without --lambda-endpoint invoked the test's endpoint %d times", n-before)
		}
	})
}

// TestRulesDeploymentWindowEndToEnd gates a stage on deployment windows, against the server's
// real clock: a window open now (in a time zone other than UTC) lets the stage in; one that
// never opens again — its year is past — fails the execution at once; one that opens later
// holds the stage, its rule in progress and its actions not run, until the condition is
// overridden.
func TestRulesDeploymentWindowEndToEnd(t *testing.T) {
	bin := buildBinary(t)
	kolkata, err := time.LoadLocation("Asia/Kolkata")
	if err != nil {
		t.Fatal(err)
	}
	eachStoreArgs(t, func(t *testing.T, args ...string) {
		e := newCondEnv(t, bin, args...)
		window := func(cron, zone string) types.RuleDeclaration {
			config := map[string]string{"Cron": cron}
			if zone != "" {
				config["TimeZone"] = zone
			}
			return awsRule("Window", "DeploymentWindow", config)
		}
		// Open: every minute of this hour and the next in Kolkata (UTC+05:30), which are not this
		// hour in UTC — a rule that ignored TimeZone would wait instead.
		h := time.Now().In(kolkata).Hour()
		open := fmt.Sprintf("0 * %d,%d ? * * *", h, (h+1)%24)
		e.create(gated("window-open", window(open, "Asia/Kolkata")))
		// Past: every minute of 2020.
		past := "0 * * * * ? 2020"
		e.create(gated("window-past", window(past, "")))
		// Later: an hour two hours from now, in UTC.
		later := fmt.Sprintf("0 * %d ? * * *", (time.Now().UTC().Hour()+2)%24)
		e.create(gated("window-later", window(later, "UTC")))

		id := e.start("window-open", nil)
		e.waitEnd("window-open", id, types.PipelineExecutionStatusSucceeded)
		e.wantRan("window-open", id, "Ship", "After")
		r := e.onlyRuleRun("window-open", id, "Gate", "Window", types.RuleExecutionStatusSucceeded)
		wantRuleText(t, "open window", r, "is inside the deployment window "+open+" (Asia/Kolkata)", " IST")
		wantStateRule(t, "open window", e.stages("window-open")["Gate"].BeforeEntryConditionState, types.ConditionExecutionStatusSucceeded,
			"Window", types.RuleExecutionStatusSucceeded, "is inside the deployment window")

		start := time.Now()
		id = e.start("window-past", nil)
		e.waitEnd("window-past", id, types.PipelineExecutionStatusFailed)
		if took := time.Since(start); took > 20*time.Second {
			t.Errorf("the execution took %s to fail on a window that never opens; the rule should fail at once", took)
		}
		e.wantNoRun("window-past", id, "Ship", "After")
		r = e.onlyRuleRun("window-past", id, "Gate", "Window", types.RuleExecutionStatusFailed)
		wantRuleText(t, "past window", r, "is outside the deployment window "+past+" (UTC), which does not open again")
		gs := e.stages("window-past")["Gate"]
		if l := gs.LatestExecution; l == nil || aws.ToString(l.PipelineExecutionId) != id || l.Status != types.StageExecutionStatusFailed {
			t.Fatalf("Gate's latest execution %+v, want %s Failed", gs.LatestExecution, id)
		}
		wantStateRule(t, "past window", gs.BeforeEntryConditionState, types.ConditionExecutionStatusFailed, "Window",
			types.RuleExecutionStatusFailed, "which does not open again")

		// Later: the rule waits for its window; the stage holds.
		id = e.start("window-later", nil)
		waitFor(t, "the window rule to wait", func() bool {
			c := e.stages("window-later")["Gate"].BeforeEntryConditionState
			return c != nil && c.LatestExecution != nil && c.LatestExecution.Status == types.ConditionExecutionStatusInProgress &&
				len(c.ConditionStates) == 1 && len(c.ConditionStates[0].RuleStates) == 1 && c.ConditionStates[0].RuleStates[0].LatestExecution != nil &&
				c.ConditionStates[0].RuleStates[0].LatestExecution.Status == types.RuleExecutionStatusInProgress
		}, func() string { return e.describe("window-later") })
		// The rule's live log, which the stage state links to, says it waits, and until when.
		rs := e.stages("window-later")["Gate"].BeforeEntryConditionState.ConditionStates[0].RuleStates[0]
		logURL := aws.ToString(rs.LatestExecution.ExternalExecutionUrl)
		if logURL == "" {
			t.Fatalf("the waiting window rule's state has no log URL: %+v", rs.LatestExecution)
		}
		waiting := "is outside the deployment window " + later + " (UTC): waiting until it opens at "
		waitFor(t, "the window rule's log to say it waits", func() bool { return strings.Contains(httpGet(t, logURL), waiting) },
			func() string { return httpGet(t, logURL) })
		if ex := e.execution("window-later", id); ex.Status != types.PipelineExecutionStatusInProgress {
			t.Fatalf("the execution waiting for its window is %s (%s)", ex.Status, aws.ToString(ex.StatusSummary))
		}
		e.wantNoRun("window-later", id, "Ship", "After")
		e.onlyRuleRun("window-later", id, "Gate", "Window", types.RuleExecutionStatusInProgress)
		if _, err := e.cp.OverrideStageCondition(e.ctx, &cp.OverrideStageConditionInput{PipelineName: aws.String("window-later"),
			StageName: aws.String("Gate"), PipelineExecutionId: aws.String(id), ConditionType: types.ConditionTypeBeforeEntry}); err != nil {
			t.Fatalf("override the window: %v", err)
		}
		e.waitEnd("window-later", id, types.PipelineExecutionStatusSucceeded)
		e.wantRan("window-later", id, "Ship", "After")
		if runs := e.ruleRuns("window-later", id, 0, nil).RuleExecutionDetails; len(runs) != 1 || runs[0].Status != types.RuleExecutionStatusAbandoned {
			t.Fatalf("the overridden window's rule executions: %s", e.describe("window-later"))
		}
	})
}

// putZip writes files zipped at key in the sources bucket; executions then start on their
// pipeline's own key.
func (e *condEnv) putZip(key string, files map[string]string) {
	e.t.Helper()
	e.release = ""
	if _, err := e.s3.PutObject(e.ctx, &s3.PutObjectInput{Bucket: aws.String("sources"), Key: aws.String(key),
		Body: bytes.NewReader(zipOf(e.t, files))}); err != nil {
		e.t.Fatal(err)
	}
}

// keyedPipeline is condPipeline with its S3 source reading key instead of app.zip.
func keyedPipeline(name, key string, stages ...types.StageDeclaration) *types.PipelineDeclaration {
	p := condPipeline(name, types.ExecutionModeQueued, stages...)
	p.Stages[0].Actions[0].Configuration = map[string]string{"S3Bucket": "sources", "S3ObjectKey": key, "PollForSourceChanges": "false"}
	return p
}

const (
	passingBuildspec = `version: 0.2
phases:
  build:
    commands:
      - grep -q ready page.txt
      - echo "verified $(cat page.txt)"
`
	failingBuildspec = `version: 0.2
phases:
  build:
    commands:
      - echo "smoke test found 2 broken links"
      - exit 1
`
)

// TestRulesCodeBuildEndToEnd checks a stage after its actions with a CodeBuild rule: a
// buildspec.yml in the input artifact that exits 0 lets the execution go on; one that exits 1
// fails the stage (result FAIL) though its action succeeded; a project definition from
// --build-projects overrides the artifact's buildspec.
func TestRulesCodeBuildEndToEnd(t *testing.T) {
	bin := buildBinary(t)
	eachStoreArgs(t, func(t *testing.T, args ...string) {
		projects := writeProjects(t, map[string]string{"strict": failingBuildspec})
		e := newCondEnv(t, bin, append(args, "--build-projects", projects)...)
		e.putZip("pass.zip", map[string]string{"page.txt": "ready\n", "buildspec.yml": passingBuildspec})
		e.putZip("fail.zip", map[string]string{"page.txt": "ready\n", "buildspec.yml": failingBuildspec})
		checked := func(project string) types.StageDeclaration {
			s := stageOf("Work", commandsAction("Ship", 1, "cat page.txt"))
			s.OnSuccess = onSuccess(types.ResultFail, awsRule("Verify", "CodeBuild", map[string]string{"ProjectName": project}, "Src"))
			return s
		}
		e.create(keyedPipeline("verify-pass", "pass.zip", checked("verify"), stageOf("Last", commandsAction("After", 1, "echo after"))))
		e.create(keyedPipeline("verify-fail", "fail.zip", checked("verify"), stageOf("Last", commandsAction("After", 1, "echo after"))))
		e.create(keyedPipeline("verify-project", "pass.zip", checked("strict"), stageOf("Last", commandsAction("After", 1, "echo after"))))

		// Exit 0: the rule succeeds, the next stage runs.
		ok := e.start("verify-pass", nil)
		e.waitEnd("verify-pass", ok, types.PipelineExecutionStatusSucceeded)
		e.wantRan("verify-pass", ok, "Ship", "After")
		r := e.onlyRuleRun("verify-pass", ok, "Work", "Verify", types.RuleExecutionStatusSucceeded)
		wantRuleText(t, "exit 0", r, "Build verify:", "succeeded")
		if id := aws.ToString(r.Output.ExecutionResult.ExternalExecutionId); !strings.HasPrefix(id, "verify:") {
			t.Errorf("the rule execution's external id %q is not the build id", id)
		}
		logURL := aws.ToString(r.Output.ExecutionResult.ExternalExecutionUrl)
		if logURL == "" {
			t.Fatalf("the CodeBuild rule execution has no log URL")
		}
		if log := httpGet(t, logURL); !strings.Contains(log, "verified ready") {
			t.Errorf("the rule's build log does not show the buildspec's output:\n%s", log)
		}
		ws := e.stages("verify-pass")["Work"]
		wantStateRule(t, "exit 0", ws.OnSuccessConditionState, types.ConditionExecutionStatusSucceeded, "Verify", types.RuleExecutionStatusSucceeded, "succeeded")

		// Exit 1: the stage fails after its action succeeded; the next stage does not run.
		bad := e.start("verify-fail", nil)
		e.waitEnd("verify-fail", bad, types.PipelineExecutionStatusFailed)
		e.wantRan("verify-fail", bad, "Ship")
		e.wantNoRun("verify-fail", bad, "After")
		failing := "Error while executing command: exit 1. Reason: exit status 1 (phase BUILD)"
		r = e.onlyRuleRun("verify-fail", bad, "Work", "Verify", types.RuleExecutionStatusFailed)
		wantRuleText(t, "exit 1", r, failing)
		ws = e.stages("verify-fail")["Work"]
		if l := ws.LatestExecution; l == nil || aws.ToString(l.PipelineExecutionId) != bad || l.Status != types.StageExecutionStatusFailed {
			t.Fatalf("Work's latest execution %+v, want %s Failed", ws.LatestExecution, bad)
		}
		wantStateRule(t, "exit 1", ws.OnSuccessConditionState, types.ConditionExecutionStatusFailed, "Verify", types.RuleExecutionStatusFailed, failing)
		if log := httpGet(t, aws.ToString(r.Output.ExecutionResult.ExternalExecutionUrl)); !strings.Contains(log, "smoke test found 2 broken links") {
			t.Errorf("the failed rule's build log does not show the buildspec's output:\n%s", log)
		}

		// The project definition's buildspec, not the artifact's passing one, runs.
		strict := e.start("verify-project", nil)
		e.waitEnd("verify-project", strict, types.PipelineExecutionStatusFailed)
		e.wantNoRun("verify-project", strict, "After")
		r = e.onlyRuleRun("verify-project", strict, "Work", "Verify", types.RuleExecutionStatusFailed)
		wantRuleText(t, "project definition", r, failing)
	})
}
