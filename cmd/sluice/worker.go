package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cp "github.com/aws/aws-sdk-go-v2/service/codepipeline"
	"github.com/aws/aws-sdk-go-v2/service/codepipeline/types"

	"github.com/sluicehq/sluice/internal/worker"
)

// queryParams collects repeated --query-param key=value flags.
type queryParams map[string]string

func (q queryParams) String() string { return fmt.Sprint(map[string]string(q)) }

func (q queryParams) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return fmt.Errorf("%q is not key=value", v)
	}
	q[k] = val
	return nil
}

func runWorker(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: sluice worker --category C --provider P [flags] -- COMMAND [ARGS...]")
		fs.PrintDefaults()
	}
	endpoint := fs.String("endpoint", "", "CodePipeline endpoint URL, e.g. http://127.0.0.1:4566 (default: AWS's, from the region)")
	s3Endpoint := fs.String("s3-endpoint", "", "S3 endpoint URL for artifacts (default: --endpoint, whose built-in S3 endpoint serves them; AWS's without --endpoint)")
	region := fs.String("region", "", "AWS region (default: from the AWS configuration, else us-east-1)")
	category := fs.String("category", "", "action category of the action type: Source, Build, Test, Deploy, Invoke, Approval or Compute")
	owner := fs.String("owner", "Custom", "action owner: Custom, AWS or ThirdParty")
	provider := fs.String("provider", "", "action provider")
	version := fs.String("version", "1", "action type version")
	concurrency := fs.Int("concurrency", 1, "jobs to run at once")
	workDir := fs.String("work-dir", "", "where each job's work directory is made (default: the system's temporary directory)")
	pollInterval := fs.Duration("poll-interval", time.Second, "wait after a poll that found no job")
	grace := fs.Duration("shutdown-grace", 5*time.Minute, "on SIGTERM, how long running jobs may still take before their commands are killed")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	logFormat := fs.String("log-format", "text", "text or json")
	query := queryParams{}
	fs.Var(query, "query-param", "key=value a job's queryable property must match (repeatable)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *category == "" || *provider == "" || fs.NArg() == 0 {
		fs.Usage()
		return errors.New("--category, --provider and a command are required")
	}
	logger, err := newLogger(stderr, *logLevel, *logFormat)
	if err != nil {
		return err
	}
	awsCfg, err := loadAWSConfig(ctx, *region, false)
	if err != nil {
		return err
	}
	client := cp.NewFromConfig(awsCfg, func(o *cp.Options) {
		if *endpoint != "" {
			o.BaseEndpoint = aws.String(*endpoint)
		}
	})
	if *s3Endpoint == "" {
		*s3Endpoint = *endpoint
	}
	w, err := worker.New(worker.Config{
		CodePipeline: client, S3: awsCfg, S3Endpoint: *s3Endpoint,
		ActionType: types.ActionTypeId{Category: types.ActionCategory(*category), Owner: types.ActionOwner(*owner),
			Provider: aws.String(*provider), Version: aws.String(*version)},
		QueryParam: query, Concurrency: *concurrency, Command: fs.Args(), WorkDir: *workDir,
		PollInterval: *pollInterval, Logger: logger,
	})
	if err != nil {
		return err
	}
	// On SIGTERM the worker stops polling (ctx ends) and lets running jobs finish for the grace
	// period; a second signal, or the period running out, kills their commands.
	jobCtx, cancelJobs := context.WithCancel(context.Background())
	defer cancelJobs()
	go func() {
		<-ctx.Done()
		logger.Info("stopping: no new jobs; running jobs may finish", "grace", grace.String())
		again := make(chan os.Signal, 1)
		signal.Notify(again, os.Interrupt, syscall.SIGTERM)
		defer signal.Stop(again)
		select {
		case <-again:
		case <-time.After(*grace):
		case <-jobCtx.Done():
		}
		cancelJobs()
	}()
	logger.Info("worker polling", "category", *category, "owner", *owner, "provider", *provider, "version", *version, "concurrency", *concurrency)
	return w.Run(ctx, jobCtx)
}
