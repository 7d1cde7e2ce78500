package runners

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/sluicehq/sluice/internal/executor"
)

// lambdaInvoke is the LambdaInvoke rule, after the User Guide's rule-reference-LambdaInvoke: it
// invokes the function FunctionName (Invoke, RequestResponse, in the rule's region or the
// server's) on the Lambda the server's --lambda-endpoint names, and waits for its answer. The
// reference says only that UserParameters are the function's input; Sluice sends them the way
// CodePipeline sends them to the Lambda invoke action's functions, so that one function can
// serve both: the event {"CodePipeline.job": {"id", "accountId", "data"}}, data being the job's
// data — actionConfiguration.configuration with FunctionName and UserParameters (a string, as
// written), the rule's inputArtifacts with their S3 locations, the pipelineContext (the rule's
// name and execution id as its action). The rule succeeds when the invocation does; a function
// error (the invocation's FunctionError: the function raised, or timed out) fails it, with the
// error's message, and so do a missing function and a server without --lambda-endpoint. The
// invocation's outcome is the rule's: a function need not call PutJobSuccessResult.
type lambdaInvoke struct {
	endpoint  *serviceEndpoint
	accountID string
}

func newLambdaInvoke(endpoint *serviceEndpoint, accountID string) lambdaInvoke {
	return lambdaInvoke{endpoint: endpoint, accountID: accountID}
}

// lambdaEvent is what a LambdaInvoke rule sends its function.
type lambdaEvent struct {
	Job lambdaJob `json:"CodePipeline.job"`
}

type lambdaJob struct {
	ID        string `json:"id"`
	AccountID string `json:"accountId"`
	Data      any    `json:"data"`
}

func (l lambdaInvoke) run(ctx context.Context, j *job) executor.Result {
	function := strings.TrimSpace(ruleConfig(j)["FunctionName"])
	if function == "" {
		return failed("The LambdaInvoke rule has no FunctionName: set it to the name of the function to invoke")
	}
	if l.endpoint.url == "" {
		return failed(l.endpoint.missing())
	}
	payload, err := json.Marshal(lambdaEvent{Job: lambdaJob{ID: j.id, AccountID: l.accountID, Data: j.data}})
	if err != nil {
		return failedErr(err)
	}
	region := ruleRegion(j, l.endpoint.defaultRegion)
	cfg, base, err := l.endpoint.config(ctx, region)
	if err != nil {
		return failedErr(err)
	}
	client := lambda.NewFromConfig(cfg, func(o *lambda.Options) { o.BaseEndpoint = base })
	where := l.endpoint.where(region)
	j.logf("Invoking the Lambda function %s on %s", function, where)
	out, err := client.Invoke(ctx, &lambda.InvokeInput{
		FunctionName:   aws.String(function),
		InvocationType: types.InvocationTypeRequestResponse,
		LogType:        types.LogTypeTail,
		Payload:        payload,
	})
	if err != nil {
		if ctx.Err() != nil {
			return failed(fmt.Sprintf("Stopped while the Lambda function %s ran", function))
		}
		var missing *types.ResourceNotFoundException
		if errors.As(err, &missing) {
			return failed(fmt.Sprintf("The Lambda function %s does not exist in %s: create it first, or correct FunctionName", function, where))
		}
		return failed(fmt.Sprintf("Invoking the Lambda function %s on %s failed: %v", function, where, err))
	}
	if tail, err := base64.StdEncoding.DecodeString(aws.ToString(out.LogResult)); err == nil && len(tail) > 0 {
		j.logf("The end of the function's log:\n%s", tail)
	}
	requestID, _ := awsmiddleware.GetRequestIDMetadata(out.ResultMetadata)
	if out.FunctionError != nil {
		res := failed(fmt.Sprintf("The Lambda function %s failed (%s): %s", function, *out.FunctionError, functionErrorMessage(out.Payload)))
		res.ExternalID = requestID
		return res
	}
	summary := fmt.Sprintf("The Lambda function %s succeeded", function)
	if answer := excerpt(out.Payload, 200); answer != "" && answer != "null" {
		summary += ", answering " + answer
	}
	return executor.Result{Succeeded: true, Summary: summary, ExternalID: requestID}
}

// functionErrorMessage reads the message of a function error from the error document Lambda
// answers with ({"errorMessage", "errorType", …}), or gives the document itself.
func functionErrorMessage(payload []byte) string {
	var doc struct {
		ErrorMessage string `json:"errorMessage"`
		ErrorType    string `json:"errorType"`
	}
	if json.Unmarshal(payload, &doc) == nil && doc.ErrorMessage != "" {
		if doc.ErrorType != "" {
			return doc.ErrorType + ": " + doc.ErrorMessage
		}
		return doc.ErrorMessage
	}
	if s := excerpt(payload, 500); s != "" {
		return s
	}
	return "the function gave no error message"
}

// excerpt is the start of b as text, at most max bytes, cut at a character boundary.
func excerpt(b []byte, max int) string {
	s := strings.TrimSpace(string(b))
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
