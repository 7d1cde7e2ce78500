package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cp "github.com/aws/aws-sdk-go-v2/service/codepipeline"
	"github.com/aws/aws-sdk-go-v2/service/codepipeline/types"
)

// runLogs prints the logs of the built-in actions of a pipeline execution, and with --follow
// keeps printing them as they are written until the execution ends.
func runLogs(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("logs", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: sluice logs [flags] PIPELINE [EXECUTION_ID]\n\nPrints the logs of the execution's built-in actions (the latest execution without EXECUTION_ID).")
		fs.PrintDefaults()
	}
	endpoint := fs.String("endpoint", "http://127.0.0.1:4566", "the Sluice server's URL")
	region := fs.String("region", "", "the server's region, which requests are signed for (default: the AWS configuration's, else us-east-1)")
	follow := fs.Bool("follow", false, "keep printing the logs as they are written until the execution ends")
	actionName := fs.String("action", "", "print only the action with this name")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() < 1 || fs.NArg() > 2 {
		fs.Usage()
		return flag.ErrHelp
	}
	pipeline := fs.Arg(0)
	awsCfg, err := loadAWSConfig(ctx, *region, true)
	if err != nil {
		return err
	}
	client := cp.NewFromConfig(awsCfg, func(o *cp.Options) { o.BaseEndpoint = endpoint })
	execID := fs.Arg(1)
	if execID == "" {
		out, err := client.ListPipelineExecutions(ctx, &cp.ListPipelineExecutionsInput{PipelineName: &pipeline, MaxResults: aws.Int32(1)})
		if err != nil {
			return err
		}
		if len(out.PipelineExecutionSummaries) == 0 {
			return fmt.Errorf("the pipeline %s has no executions", pipeline)
		}
		execID = aws.ToString(out.PipelineExecutionSummaries[0].PipelineExecutionId)
	}
	printed := map[string]int64{}
	done := map[string]bool{}
	for {
		exec, err := client.GetPipelineExecution(ctx, &cp.GetPipelineExecutionInput{PipelineName: &pipeline, PipelineExecutionId: &execID})
		if err != nil {
			return err
		}
		running := exec.PipelineExecution.Status == types.PipelineExecutionStatusInProgress
		actions, err := actionExecutions(ctx, client, pipeline, execID)
		if err != nil {
			return err
		}
		for _, a := range actions {
			id := aws.ToString(a.ActionExecutionId)
			url := ""
			if a.Output != nil && a.Output.ExecutionResult != nil {
				url = aws.ToString(a.Output.ExecutionResult.ExternalExecutionUrl)
			}
			if done[id] || !strings.Contains(url, "/_sluice/logs/") || (*actionName != "" && aws.ToString(a.ActionName) != *actionName) {
				continue
			}
			if printed[id] == 0 {
				fmt.Fprintf(stdout, "==> %s / %s (%s) <==\n", aws.ToString(a.StageName), aws.ToString(a.ActionName), id)
			}
			actionRunning := a.Status == types.ActionExecutionStatusInProgress
			n, complete, err := printLog(ctx, awsCfg, stdout, url, printed[id], *follow && actionRunning)
			printed[id] += n
			if errors.Is(err, errNoLog) && actionRunning {
				continue // the run has not started yet
			}
			if err != nil && !errors.Is(err, errNoLog) {
				return err
			}
			done[id] = complete || !actionRunning
		}
		if !*follow || !running {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// actionExecutions lists an execution's action runs in the order they started.
func actionExecutions(ctx context.Context, client *cp.Client, pipeline, execID string) ([]types.ActionExecutionDetail, error) {
	var all []types.ActionExecutionDetail
	p := cp.NewListActionExecutionsPaginator(client, &cp.ListActionExecutionsInput{PipelineName: &pipeline,
		Filter: &types.ActionExecutionFilter{PipelineExecutionId: &execID}})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		all = append(all, page.ActionExecutionDetails...)
	}
	slices.SortStableFunc(all, func(a, b types.ActionExecutionDetail) int {
		return aws.ToTime(a.StartTime).Compare(aws.ToTime(b.StartTime))
	})
	return all, nil
}

var errNoLog = errors.New("no log yet")

// printLog copies a log from offset to w, following it while it is written if follow is set.
func printLog(ctx context.Context, cfg aws.Config, w io.Writer, url string, offset int64, follow bool) (int64, bool, error) {
	url = fmt.Sprintf("%s?offset=%d&follow=%t", url, offset, follow)
	resp, err := getSigned(ctx, cfg, url)
	if err != nil {
		return 0, false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return 0, false, errNoLog
	}
	if resp.StatusCode != http.StatusOK {
		return 0, false, fmt.Errorf("%s: %s", url, resp.Status)
	}
	n, err := io.Copy(w, resp.Body)
	if ctx.Err() != nil {
		return n, false, nil
	}
	return n, follow || resp.Header.Get("X-Sluice-Log-Complete") == "true", err
}
