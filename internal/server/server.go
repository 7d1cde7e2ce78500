// Package server assembles a running Sluice: it builds the service from its configuration and
// serves it over HTTP, together with Sluice's own endpoints under /_sluice/.
package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/google/uuid"
	"golang.org/x/net/netutil"

	"github.com/sluicehq/sluice/internal/api"
	"github.com/sluicehq/sluice/internal/archive"
	"github.com/sluicehq/sluice/internal/artifacts"
	"github.com/sluicehq/sluice/internal/auth"
	"github.com/sluicehq/sluice/internal/credentials"
	"github.com/sluicehq/sluice/internal/notify"
	"github.com/sluicehq/sluice/internal/objects"
	"github.com/sluicehq/sluice/internal/store"
	"github.com/sluicehq/sluice/internal/store/postgres"
	"github.com/sluicehq/sluice/internal/store/sqlite"
)

// Config configures a server.
type Config struct {
	DataDir string
	// DataShared says that DataDir is shared by every replica on Database (a network file
	// system), or that there is one replica: only then may a server on PostgreSQL keep
	// artifacts and hosted repositories under it.
	DataShared bool
	// Database is a postgres:// URL; empty means the embedded SQLite store under DataDir.
	Database  string
	AccountID string
	Region    string
	// PublicURL is where clients reach the server, for the URLs it hands out.
	PublicURL       string
	Limits          api.Limits
	StartOnCreate   bool
	ApprovalTimeout time.Duration
	JobAckTimeout   time.Duration
	// SweepInterval is how often timeouts are enforced.
	SweepInterval   time.Duration
	MaxRequestBytes int64
	// Artifacts configures where artifacts are kept.
	Artifacts ArtifactsConfig
	// WorkerProviders are the AWS providers whose actions go to job workers; "*" for all.
	WorkerProviders []string
	// GitRemotes map repository names of Git sources to remotes (a path, file:// or http(s)
	// URL); other names are repositories the server hosts.
	GitRemotes map[string]string
	// BuildTimeout bounds local CodeBuild and Commands runs whose project sets no timeout.
	BuildTimeout time.Duration
	// BuildProjects is a directory of CodeBuild project definitions, <ProjectName>.json.
	BuildProjects string
	// BuildIsolation is how builds run: "sandbox" (bubblewrap; the default) or "none".
	BuildIsolation string
	// ArtifactLimits bound what an artifact may unpack to, and what a build may collect into
	// one; zero means archive.DefaultLimits.
	ArtifactLimits archive.Limits
	// SourcePollInterval is how often polling source actions are checked; 0 turns polling off.
	SourcePollInterval time.Duration
	// CloudWatchEndpoint is where CloudWatchAlarm rules read alarms: a URL, or "aws" for Amazon
	// CloudWatch; empty, those rules fail and say so.
	CloudWatchEndpoint string
	// LambdaEndpoint is where LambdaInvoke rules invoke functions: a URL, or "aws" for AWS
	// Lambda; empty, those rules fail and say so.
	LambdaEndpoint string
	// ReadTimeout bounds how long a request, body included, may take to arrive; WriteTimeout how
	// long its answer may take, from the end of the request's headers; IdleTimeout how long a
	// connection may wait for its next request. Git, the S3 endpoint and followed logs extend
	// the first two as long as their bodies keep moving (see streaming). Zero means no bound.
	ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// MaxConnections bounds the connections served at once: past it, new ones wait to be
	// accepted. Zero means no bound.
	MaxConnections int
	// ShutdownTimeout bounds how long Serve waits for requests in flight once asked to stop.
	ShutdownTimeout time.Duration
	// Identities, if set, turns authentication on: every request must be signed with one of
	// their access keys, and each account they name has its own pipelines, jobs, repositories,
	// buckets and logs. Nil, every request is the root of AccountID.
	Identities *auth.Identities
	Logger     *slog.Logger
}

// ArtifactsConfig chooses the artifact store: the local object store under the data directory
// (S3Endpoint empty), or an S3-compatible service.
type ArtifactsConfig struct {
	// S3Endpoint is the URL of an S3-compatible service; "aws" means Amazon S3 itself.
	S3Endpoint string
	// S3Region is the region to sign requests to the service for.
	S3Region string
	// GitBucket is the bucket of the S3-compatible service where replicas on PostgreSQL keep
	// the hosted git repositories' objects.
	GitBucket string
	// JobAccessKeyID and JobSecretAccessKey are the credentials jobs receive for the service;
	// empty, they receive the server's own.
	JobAccessKeyID     string
	JobSecretAccessKey string
}

var accountIDPattern = regexp.MustCompile(`^[0-9]{12}$`)

// Server is a configured Sluice, ready to serve.
type Server struct {
	cfg     Config
	handler http.Handler
	// issuer mints and recognises jobs' credentials, for every account.
	issuer *credentials.Issuer
	// objects is the local object store the built-in S3 endpoint serves, shared by the accounts,
	// whose buckets each belong to one; nil when artifacts are kept in an S3-compatible service,
	// in artifacts.
	objects   *objects.Store
	artifacts artifacts.Store
	// s3 reaches the S3-compatible service of artifacts.Store, if that is where they are kept,
	// and of the hosted repositories the replicas share.
	s3              *s3.Client
	workerProviders map[string]bool
	authenticator   *auth.Authenticator
	// notifier carries notifications between the replicas on one PostgreSQL database, or within
	// this process on the embedded store; each account hears its own through a scoped view.
	notifier interface {
		notify.Notifier
		Close() error
	}

	// replica names this process among the replicas sharing a database, as the holder of leases.
	replica string

	mu      sync.Mutex
	tenants map[string]*tenant
	opening map[string]*opening
	closed  bool
	// openings are the accounts being opened, which Close waits for.
	openings sync.WaitGroup
	// serving is set while Serve runs, for the services of tenants opened meanwhile.
	serving *serving
}

// openArtifacts opens the artifact store cfg asks for: an S3-compatible service, with the client
// that reaches it, or the local object store that the built-in S3 endpoint serves, in which
// each account keeps its own buckets.
func openArtifacts(ctx context.Context, cfg Config) (artifacts.Store, *objects.Store, *s3.Client, error) {
	a := cfg.Artifacts
	if a.S3Endpoint == "" {
		if cfg.DataDir == "" {
			return nil, nil, nil, errors.New("a data directory is required for the local artifact store")
		}
		objs, err := objects.Open(ctx, filepath.Join(cfg.DataDir, "artifacts"))
		if err != nil {
			return nil, nil, nil, err
		}
		return nil, objs, nil, nil
	}
	region := a.S3Region
	if region == "" {
		region = cfg.Region
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(region))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("load credentials for the S3 artifact store: %w", err)
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if a.S3Endpoint != "aws" {
			o.BaseEndpoint = aws.String(a.S3Endpoint)
			o.UsePathStyle = true
		}
	})
	jobCreds := artifacts.Credentials{AccessKeyID: a.JobAccessKeyID, SecretAccessKey: a.JobSecretAccessKey}
	if jobCreds.AccessKeyID == "" {
		own, err := awsCfg.Credentials.Retrieve(ctx)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("retrieve credentials for the S3 artifact store: %w", err)
		}
		jobCreds = artifacts.Credentials{AccessKeyID: own.AccessKeyID, SecretAccessKey: own.SecretAccessKey, SessionToken: own.SessionToken}
	}
	cfg.Logger.Info("artifacts", "kind", "s3", "endpoint", a.S3Endpoint, "region", region)
	return artifacts.NewS3(client, a.S3Endpoint, jobCreds), nil, client, nil
}

// New checks cfg and prepares everything the server needs before it can answer a request: it
// opens the stores of the server's account and of every account of the identities, and brings
// their schemas up to date.
func New(ctx context.Context, cfg Config) (*Server, error) {
	if !accountIDPattern.MatchString(cfg.AccountID) {
		return nil, fmt.Errorf("account id %q is not 12 digits", cfg.AccountID)
	}
	if cfg.Region == "" {
		return nil, errors.New("a region is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if err := absolutePaths(&cfg); err != nil {
		return nil, err
	}
	if err := checkShared(cfg); err != nil {
		return nil, err
	}
	st, err := openStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, tenants: map[string]*tenant{}, opening: map[string]*opening{}, workerProviders: map[string]bool{}, replica: uuid.NewString()}
	for _, p := range cfg.WorkerProviders {
		s.workerProviders[p] = true
	}
	if cfg.Identities != nil {
		s.authenticator = &auth.Authenticator{Identities: cfg.Identities}
	}
	fail := func(err error) (*Server, error) {
		st.Close()
		s.Close()
		return nil, err
	}
	secret, err := st.Secret(ctx, "job-credentials")
	if err != nil {
		return fail(fmt.Errorf("load the job credentials secret: %w", err))
	}
	s.issuer = credentials.NewIssuer(secret)
	if cfg.Database != "" {
		if s.notifier, err = notify.NewPostgres(ctx, cfg.Database, notify.PostgresOptions{Logger: cfg.Logger}); err != nil {
			return fail(fmt.Errorf("listen for notifications: %w", err))
		}
	} else {
		s.notifier = notify.NewInProcess(0)
	}
	if s.artifacts, s.objects, s.s3, err = openArtifacts(ctx, cfg); err != nil {
		return fail(err)
	}
	own, err := s.openTenant(ctx, cfg.AccountID, st)
	if err != nil {
		return fail(err)
	}
	s.tenants[cfg.AccountID] = own
	if cfg.Identities != nil {
		for _, account := range cfg.Identities.Accounts() {
			if _, err := s.tenant(ctx, account); err != nil {
				s.Close()
				return nil, err
			}
		}
	}
	s.handler = s.routes()
	return s, nil
}

// checkShared refuses a server on PostgreSQL, where replicas share the store, that would keep what
// it stores on its own disk, which the other replicas never see, unless the operator says the
// data directory is shared.
func checkShared(cfg Config) error {
	if !isPostgres(cfg.Database) || cfg.DataShared || (cfg.Artifacts.S3Endpoint != "" && cfg.Artifacts.GitBucket != "") {
		return nil
	}
	return fmt.Errorf("with --database, replicas share what they store, but this one would keep artifacts or hosted git repositories under --data %s, where no other replica reaches them: set --artifacts-s3-endpoint to an S3-compatible service and --git-s3-bucket to a bucket of it for the repositories, or pass --data-shared if --data is a directory every replica shares, or this is the only replica", cfg.DataDir)
}

// isPostgres tells whether database is the URL of a PostgreSQL database.
func isPostgres(database string) bool {
	return strings.HasPrefix(database, "postgres://") || strings.HasPrefix(database, "postgresql://")
}

// readyTimeout bounds how long /_sluice/ready waits for the store's write.
const readyTimeout = 5 * time.Second

// ready answers GET /_sluice/ready: 200 when the store can write, else 503 saying why. Unlike
// /_sluice/health, which answers as long as the process serves, it is for load balancers and
// orchestrators to send traffic only where it can be stored.
func ready(st store.Store, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
		defer cancel()
		w.Header().Set("Content-Type", "application/json")
		if err := st.Ready(ctx); err != nil {
			logger.Warn("not ready", "err", err)
			w.WriteHeader(http.StatusServiceUnavailable)
			_ = json.NewEncoder(w).Encode(struct {
				Status string `json:"status"`
				Reason string `json:"reason"`
			}{"unavailable", "The store cannot take writes: " + err.Error()})
			return
		}
		_, _ = w.Write([]byte(`{"status":"ready"}` + "\n"))
	})
}

// absolutePaths makes the configured directories absolute, so that whatever the server hands to a
// child process (build scripts and their directories, git's repository root) means the same
// wherever that process runs: a build runs in its own source directory, not the server's.
func absolutePaths(cfg *Config) error {
	for _, dir := range []*string{&cfg.DataDir, &cfg.BuildProjects} {
		if *dir == "" {
			continue
		}
		abs, err := filepath.Abs(*dir)
		if err != nil {
			return fmt.Errorf("directory %q: %w", *dir, err)
		}
		*dir = abs
	}
	return nil
}

func openStore(ctx context.Context, cfg Config) (store.Store, error) {
	if isPostgres(cfg.Database) {
		st, err := postgres.Open(ctx, cfg.Database)
		if err != nil {
			return nil, err
		}
		cfg.Logger.Info("store", "kind", "postgres")
		return st, nil
	}
	if cfg.Database != "" {
		return nil, fmt.Errorf("database %q is not a postgres:// URL; leave it empty for the embedded store", cfg.Database)
	}
	if cfg.DataDir == "" {
		return nil, errors.New("a data directory is required for the embedded store")
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	lock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(cfg.DataDir, "sluice.db")
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		lock.Close()
		return nil, err
	}
	cfg.Logger.Info("store", "kind", "sqlite", "path", path)
	return lockedStore{Store: st, lock: lock}, nil
}

// Close releases the stores; call it after Serve returns.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	// An account being opened finds the server closed when it is done, and closes what it opened.
	s.openings.Wait()
	s.mu.Lock()
	tenants := slices.Collect(maps.Values(s.tenants))
	s.mu.Unlock()
	var errs []error
	for _, t := range tenants {
		errs = append(errs, t.close())
	}
	if s.objects != nil {
		errs = append(errs, s.objects.Close())
	}
	if s.notifier != nil {
		errs = append(errs, s.notifier.Close())
	}
	return errors.Join(errs...)
}

// Handler returns the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

// maxHeaderWait bounds how long a request's headers may take to arrive.
const maxHeaderWait = 10 * time.Second

// Serve answers requests on ln until ctx is done, then stops accepting new ones and waits, up to
// the shutdown timeout, for those in flight.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if s.cfg.MaxConnections > 0 {
		ln = netutil.LimitListener(ln, s.cfg.MaxConnections)
	}
	headerWait := maxHeaderWait
	if s.cfg.ReadTimeout > 0 {
		headerWait = min(headerWait, s.cfg.ReadTimeout)
	}
	idle := s.cfg.IdleTimeout
	if idle == 0 {
		// No bound: http.Server would take the read timeout instead.
		idle = -1
	}
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: headerWait,
		ReadTimeout:       s.cfg.ReadTimeout,
		WriteTimeout:      s.cfg.WriteTimeout,
		IdleTimeout:       idle,
		ErrorLog:          slog.NewLogLogger(s.cfg.Logger.Handler(), slog.LevelWarn),
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	// The tenants' services run until the server shuts down, and are waited for before it
	// returns; a tenant opened meanwhile starts its own.
	servicesCtx, stopServices := context.WithCancel(ctx)
	s.mu.Lock()
	s.serving = &serving{ctx: servicesCtx}
	for _, t := range s.tenants {
		s.start(t)
	}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		running := s.serving
		s.serving = nil
		s.mu.Unlock()
		stopServices()
		running.wg.Wait()
	}()
	s.cfg.Logger.Info("serving", "listen", ln.Addr().String(), "account_id", s.cfg.AccountID, "region", s.cfg.Region)
	select {
	case err := <-done:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	timeout := s.cfg.ShutdownTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	s.cfg.Logger.Info("shutting down")
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
