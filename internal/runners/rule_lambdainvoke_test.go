package runners

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/sluicehq/sluice/internal/model"
)

// invocation is a request the Lambda endpoint of the tests received.
type invocation struct {
	function, invocationType, logType, authorization string
	payload                                          []byte
}

// lambdaEndpoint serves Lambda's Invoke route, POST /2015-03-31/functions/{name}/invocations, for
// three functions: "ok" answers {"verdict": "clean"}, "boom" raises an error, and "timeout" is
// cut off as Lambda cuts off a function past its timeout; any other is not found.
func lambdaEndpoint(t *testing.T) (string, func() []invocation) {
	t.Helper()
	var mu sync.Mutex
	var seen []invocation
	mux := http.NewServeMux()
	mux.HandleFunc("POST /2015-03-31/functions/{name}/invocations", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		name := r.PathValue("name")
		mu.Lock()
		seen = append(seen, invocation{function: name, invocationType: r.Header.Get("X-Amz-Invocation-Type"),
			logType: r.Header.Get("X-Amz-Log-Type"), authorization: r.Header.Get("Authorization"), payload: body})
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Amzn-RequestId", "request-"+name)
		switch name {
		case "ok":
			w.Header().Set("X-Amz-Executed-Version", "$LATEST")
			w.Header().Set("X-Amz-Log-Result", base64.StdEncoding.EncodeToString([]byte("START RequestId: request-ok\nscanned the image: no findings\nEND\n")))
			w.Write([]byte(`{"verdict": "clean"}`))
		case "boom":
			w.Header().Set("X-Amz-Function-Error", "Unhandled")
			w.Write([]byte(`{"errorMessage": "the image has 3 critical findings", "errorType": "Exception", "stackTrace": []}`))
		case "timeout":
			w.Header().Set("X-Amz-Function-Error", "Unhandled")
			w.Write([]byte(`{"errorMessage": "2025-03-10T14:30:00.000Z request-timeout Task timed out after 3.00 seconds"}`))
		default:
			w.Header().Set("X-Amzn-ErrorType", "ResourceNotFoundException")
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"Type": "User", "Message": "Function not found: arn:aws:lambda:eu-west-1:000000000000:function:` + name + `"}`))
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL, func() []invocation {
		mu.Lock()
		defer mu.Unlock()
		return append([]invocation(nil), seen...)
	}
}

// lambdaRule is a LambdaInvoke rule on the endpoint url, declared in eu-west-1, with an input
// artifact.
func lambdaRule(t *testing.T, url string, config map[string]string) (lambdaInvoke, *job, *syncBuffer) {
	t.Helper()
	l := newLambdaInvoke(newServiceEndpoint(lambdaService, url, "us-east-1"), "111122223333")
	source := model.Artifact{Name: new("SourceArtifact"), Revision: new("abc123"), Location: &model.ArtifactLocation{
		Type: new(model.ArtifactLocationType("S3")), S3Location: &model.S3ArtifactLocation{BucketName: new("artifacts"), ObjectKey: new("my-pipeline/SourceArti/x1y2z3")}}}
	j, log := ruleJob(t, "LambdaInvoke", model.RuleDeclaration{Name: new("ScanRule"), Configuration: config, Region: new("eu-west-1")}, source)
	return l, j, log
}

// TestLambdaInvokeRule runs the rule against a Lambda Invoke endpoint: the function's success
// succeeds it, a function error or a missing function fails it, and the function gets the event
// the Lambda invoke action's functions get.
func TestLambdaInvokeRule(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	url, seen := lambdaEndpoint(t)
	ctx := context.Background()

	params := `{"repository": "web", "severity": "CRITICAL"}`
	l, j, log := lambdaRule(t, url, map[string]string{"FunctionName": "ok", "UserParameters": params})
	res := l.run(ctx, j)
	wantResult(t, res, true, `The Lambda function ok succeeded, answering {"verdict": "clean"}`)
	if res.ExternalID != "request-ok" {
		t.Errorf("external id %q, want the invocation's request id", res.ExternalID)
	}
	if !strings.Contains(log.String(), "scanned the image: no findings") {
		t.Errorf("the log lacks the end of the function's log:\n%s", log)
	}
	calls := seen()
	if len(calls) != 1 {
		t.Fatalf("%d invocations, want 1", len(calls))
	}
	call := calls[0]
	if call.function != "ok" || call.invocationType != "RequestResponse" || call.logType != "Tail" {
		t.Errorf("invoked %s with invocation type %q and log type %q", call.function, call.invocationType, call.logType)
	}
	if !strings.Contains(call.authorization, "/eu-west-1/lambda/aws4_request") {
		t.Errorf("the request is not signed for Lambda in the rule's region: %q", call.authorization)
	}
	var event struct {
		Job struct {
			ID        string        `json:"id"`
			AccountID string        `json:"accountId"`
			Data      model.JobData `json:"data"`
		} `json:"CodePipeline.job"`
	}
	if err := json.Unmarshal(call.payload, &event); err != nil {
		t.Fatalf("the payload is not an event: %v\n%s", err, call.payload)
	}
	data := event.Job.Data
	switch {
	case event.Job.ID != "job-1" || event.Job.AccountID != "111122223333":
		t.Errorf("job id %q, account %q", event.Job.ID, event.Job.AccountID)
	case data.ActionConfiguration == nil || data.ActionConfiguration.Configuration["UserParameters"] != params ||
		data.ActionConfiguration.Configuration["FunctionName"] != "ok":
		t.Errorf("the configuration is not passed on as written: %s", call.payload)
	case len(data.InputArtifacts) != 1 || *data.InputArtifacts[0].Name != "SourceArtifact" ||
		*data.InputArtifacts[0].Location.S3Location.ObjectKey != "my-pipeline/SourceArti/x1y2z3":
		t.Errorf("the input artifacts are not passed on with their locations: %s", call.payload)
	case data.PipelineContext == nil || *data.PipelineContext.Action.Name != "ScanRule" ||
		*data.PipelineContext.Action.ActionExecutionId != "rule-execution-1" || *data.PipelineContext.PipelineName != "my-pipeline":
		t.Errorf("the pipeline context does not name the rule and its execution: %s", call.payload)
	}

	l, j, _ = lambdaRule(t, url, map[string]string{"FunctionName": "boom"})
	res = l.run(ctx, j)
	wantResult(t, res, false, "The Lambda function boom failed (Unhandled): Exception: the image has 3 critical findings")
	if res.ExternalID != "request-boom" {
		t.Errorf("external id %q, want the invocation's request id", res.ExternalID)
	}
	l, j, _ = lambdaRule(t, url, map[string]string{"FunctionName": "timeout"})
	wantResult(t, l.run(ctx, j), false, "The Lambda function timeout failed (Unhandled):", "Task timed out after 3.00 seconds")

	l, j, _ = lambdaRule(t, url, map[string]string{"FunctionName": "nowhere"})
	wantResult(t, l.run(ctx, j), false, "The Lambda function nowhere does not exist in the Lambda endpoint "+url+" (region eu-west-1)")

	l, j, _ = lambdaRule(t, url, map[string]string{"UserParameters": "x"})
	wantResult(t, l.run(ctx, j), false, "has no FunctionName")
	if n := len(seen()); n != 4 {
		t.Errorf("%d invocations, want 4: a rule without a function invokes nothing", n)
	}
}
