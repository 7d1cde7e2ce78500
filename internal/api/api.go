// Package api answers CodePipeline's operations: one method per operation, each receiving an input
// that the protocol layer has already decoded and validated, and each working through the store.
// Service implements every operation of model.Service.
package api

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sluicehq/sluice/internal/artifacts"
	"github.com/sluicehq/sluice/internal/executor"
	"github.com/sluicehq/sluice/internal/model"
	"github.com/sluicehq/sluice/internal/notify"
	"github.com/sluicehq/sluice/internal/pipeline"
	"github.com/sluicehq/sluice/internal/store"
)

// Limits are the account's quotas. DefaultLimits holds CodePipeline's.
type Limits struct {
	Pipelines         int
	StagesPerPipeline int
	ActionsPerStage   int
	CustomActionTypes int
	Webhooks          int
	TagsPerResource   int
}

// DefaultLimits are CodePipeline's default quotas per account and region.
var DefaultLimits = Limits{
	Pipelines:         1000,
	StagesPerPipeline: pipeline.DefaultLimits.StagesPerPipeline,
	ActionsPerStage:   pipeline.DefaultLimits.ActionsPerStage,
	CustomActionTypes: 50,
	Webhooks:          300,
	TagsPerResource:   50,
}

// Config is what the operations need to know about the account they serve.
type Config struct {
	AccountID string
	Region    string
	// PublicURL is where clients reach this server, for the URLs it hands out (webhooks).
	PublicURL string
	Limits    Limits
	// StartOnCreate starts a first execution of every pipeline CreatePipeline creates, as AWS does.
	StartOnCreate bool
	// ApprovalTimeout is how long a Manual approval waits when its action sets no timeout.
	ApprovalTimeout time.Duration
	// JobAckTimeout is how long a polled job may go unacknowledged before it is handed out again.
	JobAckTimeout time.Duration
	// Now is the clock; time.Now unless a test drives time itself.
	Now func() time.Time
	// Artifacts keeps pipeline artifacts.
	Artifacts artifacts.Store
	// LocalProviders are the AWS action types (executor.TypeKey) served by runners in the server.
	LocalProviders map[string]bool
	// WorkerProviders are the AWS providers routed to job workers; "*" routes all without a runner.
	WorkerProviders map[string]bool
	// ClientID gives a third-party job the client id its worker must present.
	ClientID func(jobID string) string
	// LogURL is where the log of a built-in runner's action execution is served.
	LogURL func(actionExecutionID string) string
	// WebhookURL is the URL PutWebhook hands out for a new webhook, whose deliveries carry token.
	WebhookURL func(token string) string
	// CheckStateCache makes every execution step check its cached state against the store, for
	// tests (executor.Config).
	CheckStateCache bool
	// Notifier carries what steps did to jobs to the runners of every replica; nil means an
	// in-process one.
	Notifier notify.Notifier
	// PipelinesChanged, if set, is told whenever a pipeline was created, updated or deleted.
	PipelinesChanged func()
}

// Service implements model.Service.
type Service struct {
	cfg    Config
	store  store.Store
	tokens *tokens
	exec   *executor.Executor
	now    func() time.Time
	// answers keeps GetPipeline's declarations.
	answers answerCache
}

var _ model.Service = (*Service)(nil)

// New returns a Service for the account and region in cfg, keeping its state in st.
func New(ctx context.Context, cfg Config, st store.Store) (*Service, error) {
	secret, err := st.Secret(ctx, "pagination-tokens")
	if err != nil {
		return nil, fmt.Errorf("load the pagination secret: %w", err)
	}
	if cfg.Artifacts == nil || cfg.ClientID == nil {
		return nil, errors.New("an artifact store and a client id source are required")
	}
	if cfg.Limits == (Limits{}) {
		cfg.Limits = DefaultLimits
	}
	if cfg.JobAckTimeout == 0 {
		cfg.JobAckTimeout = time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	exec := executor.New(executor.Config{AccountID: cfg.AccountID, Region: cfg.Region, ApprovalTimeout: cfg.ApprovalTimeout, Now: cfg.Now,
		Artifacts: cfg.Artifacts, LocalProviders: cfg.LocalProviders, WorkerProviders: cfg.WorkerProviders, LogURL: cfg.LogURL, CheckStateCache: cfg.CheckStateCache,
		Notifier: cfg.Notifier}, st)
	return &Service{cfg: cfg, store: st, tokens: &tokens{key: secret}, exec: exec, now: cfg.Now}, nil
}

// Executor returns the executor that runs the service's pipelines, for the server's runners and
// its S3 endpoint.
func (s *Service) Executor() *executor.Executor { return s.exec }

// internal wraps an unexpected store error; the protocol layer logs it and answers InternalFailure.
func internal(op string, err error) error {
	return fmt.Errorf("%s: %w", op, err)
}

// conflict maps a store conflict that outlived its retries to AWS's exception.
func conflict(err error, resource string) error {
	if errors.Is(err, store.ErrConflict) {
		return model.ErrConcurrentModification("%s was modified by another request at the same time; try again", resource)
	}
	return err
}

// Sweep does the work that the passing of time asks for: unacknowledged jobs are handed out
// again, actions and approvals past their deadline fail. The server calls it periodically.
func (s *Service) Sweep(ctx context.Context) error {
	return s.exec.Sweep(ctx, s.cfg.JobAckTimeout)
}
