// Package worker is Sluice's reference job worker: it polls CodePipeline (Sluice or AWS) for the
// jobs of one action type, runs a command for each in a fresh work directory holding the job's
// input artifacts, and reports the result with the artifacts, variables and revision the command
// produced. It speaks only the public job protocol and S3, so it works against AWS as well.
package worker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	cp "github.com/aws/aws-sdk-go-v2/service/codepipeline"
	"github.com/aws/aws-sdk-go-v2/service/codepipeline/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Config configures a Worker.
type Config struct {
	// CodePipeline is the client the job protocol goes through.
	CodePipeline *cp.Client
	// S3 configures the client for artifacts; the job's credentials are set on it per job.
	S3 aws.Config
	// S3Endpoint, when set, is where artifacts are (path-style), instead of Amazon S3.
	S3Endpoint string
	ActionType types.ActionTypeId
	QueryParam map[string]string
	// Concurrency is how many jobs run at once.
	Concurrency int
	// Command is what runs for each job: the program and its arguments.
	Command []string
	// WorkDir is where jobs' work directories are made (default: the system's temporary directory).
	WorkDir string
	// PollInterval is how long to wait after a poll found no job.
	PollInterval time.Duration
	Logger       *slog.Logger
}

// Worker runs jobs.
type Worker struct {
	cfg Config
}

// New returns a Worker.
func New(cfg Config) (*Worker, error) {
	if len(cfg.Command) == 0 {
		return nil, errors.New("a command to run for each job is required")
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 1
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.WorkDir != "" {
		// The command runs in its job's directory; the paths it is given must not depend on that.
		abs, err := filepath.Abs(cfg.WorkDir)
		if err != nil {
			return nil, fmt.Errorf("work directory %q: %w", cfg.WorkDir, err)
		}
		cfg.WorkDir = abs
	}
	return &Worker{cfg: cfg}, nil
}

// Run polls for jobs and runs them until ctx ends; jobs already running then finish, unless
// jobCtx ends too, which stops their commands.
func (w *Worker) Run(ctx, jobCtx context.Context) error {
	var wg sync.WaitGroup
	for range w.cfg.Concurrency {
		wg.Go(func() { w.loop(ctx, jobCtx) })
	}
	wg.Wait()
	return nil
}

func (w *Worker) loop(ctx, jobCtx context.Context) {
	for ctx.Err() == nil {
		out, err := w.cfg.CodePipeline.PollForJobs(ctx, &cp.PollForJobsInput{
			ActionTypeId: &w.cfg.ActionType, MaxBatchSize: aws.Int32(1), QueryParam: w.cfg.QueryParam,
		})
		if err != nil {
			if ctx.Err() == nil {
				w.cfg.Logger.Error("poll for jobs", "err", err)
			}
			sleep(ctx, w.cfg.PollInterval)
			continue
		}
		if len(out.Jobs) == 0 {
			sleep(ctx, w.cfg.PollInterval)
			continue
		}
		for _, job := range out.Jobs {
			w.handle(jobCtx, job)
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// handle acknowledges a job, runs it and reports how it went.
func (w *Worker) handle(ctx context.Context, job types.Job) {
	log := w.cfg.Logger.With("job", aws.ToString(job.Id))
	if job.Data == nil {
		job.Data = &types.JobData{}
	}
	ack, err := w.cfg.CodePipeline.AcknowledgeJob(ctx, &cp.AcknowledgeJobInput{JobId: job.Id, Nonce: job.Nonce})
	if err != nil {
		log.Error("acknowledge job", "err", err)
		return
	}
	if ack.Status != types.JobStatusInProgress {
		log.Warn("job is not ours to run", "status", ack.Status)
		return
	}
	pipeline, stage, action, _ := names(job.Data)
	log.Info("job started", "pipeline", pipeline, "stage", stage, "action", action)
	res := w.run(ctx, job)
	if res.continuation != "" && len(res.variables) > 0 {
		// CodePipeline takes output variables only with the result that ends the job.
		res.failure = "The command wrote output variables and a continuation token: output variables can be given only by the run that finishes the job, without a continuation token"
	}
	if res.failure != "" {
		log.Warn("job failed", "reason", res.failure)
		_, err = w.cfg.CodePipeline.PutJobFailureResult(ctx, &cp.PutJobFailureResultInput{JobId: job.Id,
			FailureDetails: &types.FailureDetails{Type: types.FailureTypeJobFailed, Message: aws.String(res.failure)}})
	} else {
		log.Info("job succeeded", "continuing", res.continuation != "")
		in := &cp.PutJobSuccessResultInput{JobId: job.Id, OutputVariables: res.variables,
			ExecutionDetails: &types.ExecutionDetails{Summary: aws.String(res.summary)}}
		if res.continuation != "" {
			in.ContinuationToken = aws.String(res.continuation)
		}
		if res.revision != "" {
			in.CurrentRevision = &types.CurrentRevision{Revision: aws.String(res.revision), ChangeIdentifier: aws.String(res.revision)}
		}
		_, err = w.cfg.CodePipeline.PutJobSuccessResult(ctx, in)
	}
	if err != nil {
		log.Error("report job result", "err", err)
	}
}

// result is how a job went.
type result struct {
	failure      string
	summary      string
	variables    map[string]string
	revision     string
	continuation string
}

// maxFailureMessage is the longest failure message the job protocol takes.
const maxFailureMessage = 5000

// run runs the command for a job in a fresh work directory.
func (w *Worker) run(ctx context.Context, job types.Job) result {
	dir, err := os.MkdirTemp(w.cfg.WorkDir, "sluice-job-")
	if err != nil {
		return result{failure: "The worker could not make a work directory: " + err.Error()}
	}
	defer os.RemoveAll(dir)
	data := job.Data
	s3c := w.s3Client(data.ArtifactCredentials)
	env := w.environment(job, dir)
	for i, in := range data.InputArtifacts {
		target := filepath.Join(dir, "inputs", aws.ToString(in.Name))
		if err := download(ctx, s3c, in, target, filepath.Join(dir, fmt.Sprintf("input-%d.zip", i))); err != nil {
			return result{failure: fmt.Sprintf("The input artifact %s could not be fetched: %v", aws.ToString(in.Name), err)}
		}
	}
	if err := os.Mkdir(filepath.Join(dir, ".sluice"), 0o755); err != nil {
		return result{failure: "The worker could not make its control directory: " + err.Error()}
	}
	for _, out := range data.OutputArtifacts {
		if err := os.MkdirAll(filepath.Join(dir, "outputs", aws.ToString(out.Name)), 0o755); err != nil {
			return result{failure: "The worker could not make an output directory: " + err.Error()}
		}
	}
	cmd := exec.Command(w.cfg.Command[0], w.cfg.Command[1:]...)
	cmd.Dir, cmd.Env = dir, env
	cmd.Stdout = os.Stdout
	tail := &tailBuffer{max: maxFailureMessage - 200}
	cmd.Stderr = &teeWriter{os.Stderr, tail}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return result{failure: fmt.Sprintf("The command %s could not start: %v", w.cfg.Command[0], err)}
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		return result{failure: "The worker stopped before the command finished"}
	}
	if err != nil {
		msg := fmt.Sprintf("The command failed (%v)", err)
		if t := strings.TrimSpace(tail.String()); t != "" {
			msg += "; the end of its error output:\n" + t
		}
		return result{failure: msg}
	}
	res := result{summary: "The command succeeded"}
	if res.variables, err = readVariables(filepath.Join(dir, ".sluice", "variables.env")); err != nil {
		return result{failure: "The output variables could not be read: " + err.Error()}
	}
	res.revision = readTrimmed(filepath.Join(dir, ".sluice", "revision"))
	if res.continuation = readTrimmed(filepath.Join(dir, ".sluice", "continuation")); res.continuation != "" {
		res.summary = "The command asked to be run again to continue"
		return res
	}
	for i, out := range data.OutputArtifacts {
		source := filepath.Join(dir, "outputs", aws.ToString(out.Name))
		if err := upload(ctx, s3c, out, source, filepath.Join(dir, fmt.Sprintf("output-%d.zip", i))); err != nil {
			return result{failure: fmt.Sprintf("The output artifact %s could not be stored: %v", aws.ToString(out.Name), err)}
		}
	}
	return res
}

// s3Client returns a client for the job's artifacts, signing with the job's credentials.
func (w *Worker) s3Client(creds *types.AWSSessionCredentials) *s3.Client {
	return s3.NewFromConfig(w.cfg.S3, func(o *s3.Options) {
		o.DisableLogOutputChecksumValidationSkipped = true
		if creds != nil {
			o.Credentials = credentials.NewStaticCredentialsProvider(aws.ToString(creds.AccessKeyId), aws.ToString(creds.SecretAccessKey), aws.ToString(creds.SessionToken))
		}
		if w.cfg.S3Endpoint != "" {
			o.BaseEndpoint = aws.String(w.cfg.S3Endpoint)
			o.UsePathStyle = true
		}
	})
}

var notIdentifier = regexp.MustCompile(`[^A-Za-z0-9]+`)

// envName turns a name into the tail of an environment variable's name.
func envName(s string) string {
	return strings.ToUpper(strings.Trim(notIdentifier.ReplaceAllString(s, "_"), "_"))
}

// names returns the names in a job's pipeline context, which a job may lack in part.
func names(data *types.JobData) (pipeline, stage, action, actionExecution string) {
	pc := data.PipelineContext
	if pc == nil {
		return "", "", "", ""
	}
	if pc.Stage != nil {
		stage = aws.ToString(pc.Stage.Name)
	}
	if pc.Action != nil {
		action, actionExecution = aws.ToString(pc.Action.Name), aws.ToString(pc.Action.ActionExecutionId)
	}
	return aws.ToString(pc.PipelineName), stage, action, actionExecution
}

// environment is what the command learns of its job through its environment.
func (w *Worker) environment(job types.Job, dir string) []string {
	data := job.Data
	pipeline, stage, action, actionExecution := names(data)
	var arn, execution string
	if pc := data.PipelineContext; pc != nil {
		arn, execution = aws.ToString(pc.PipelineArn), aws.ToString(pc.PipelineExecutionId)
	}
	env := append(os.Environ(),
		"SLUICE_JOB_ID="+aws.ToString(job.Id),
		"SLUICE_ACCOUNT_ID="+aws.ToString(job.AccountId),
		"SLUICE_PIPELINE_NAME="+pipeline,
		"SLUICE_PIPELINE_ARN="+arn,
		"SLUICE_PIPELINE_EXECUTION_ID="+execution,
		"SLUICE_STAGE_NAME="+stage,
		"SLUICE_ACTION_NAME="+action,
		"SLUICE_ACTION_EXECUTION_ID="+actionExecution,
		"SLUICE_WORK_DIR="+dir,
		"SLUICE_OUTPUT_VARIABLES="+filepath.Join(dir, ".sluice", "variables.env"),
		"SLUICE_REVISION_FILE="+filepath.Join(dir, ".sluice", "revision"),
		"SLUICE_CONTINUATION_FILE="+filepath.Join(dir, ".sluice", "continuation"),
		"SLUICE_CONTINUATION_TOKEN="+aws.ToString(data.ContinuationToken),
	)
	if data.ActionConfiguration != nil {
		for k, v := range data.ActionConfiguration.Configuration {
			env = append(env, "SLUICE_CONFIG_"+envName(k)+"="+v)
		}
	}
	for i, in := range data.InputArtifacts {
		path := filepath.Join(dir, "inputs", aws.ToString(in.Name))
		env = append(env, "SLUICE_INPUT_"+envName(aws.ToString(in.Name))+"="+path)
		if i == 0 {
			env = append(env, "SLUICE_INPUT_DIR="+path)
		}
	}
	for i, out := range data.OutputArtifacts {
		path := filepath.Join(dir, "outputs", aws.ToString(out.Name))
		env = append(env, "SLUICE_OUTPUT_"+envName(aws.ToString(out.Name))+"="+path)
		if i == 0 {
			env = append(env, "SLUICE_OUTPUT_DIR="+path)
		}
	}
	return env
}

// readVariables reads KEY=VALUE lines; a missing file means no variables.
func readVariables(path string) (map[string]string, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	vars := map[string]string{}
	for n, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("line %d of %s is not KEY=VALUE", n+1, filepath.Base(path))
		}
		vars[strings.TrimSpace(k)] = v
	}
	return vars, nil
}

func readTrimmed(path string) string {
	raw, _ := os.ReadFile(path)
	return strings.TrimSpace(string(raw))
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = t.buf[over:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(bytes.ToValidUTF8(t.buf, nil))
}

// teeWriter writes to both, ignoring errors of the first (the worker's own stderr).
type teeWriter struct {
	first  *os.File
	second *tailBuffer
}

func (t *teeWriter) Write(p []byte) (int, error) {
	t.first.Write(p)
	return t.second.Write(p)
}
