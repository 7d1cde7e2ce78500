// Package server assembles a running Sluice: it builds the service from its configuration and
// serves it over HTTP, together with Sluice's own endpoints under /_sluice/.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/sluicehq/sluice/internal/api"
	"github.com/sluicehq/sluice/internal/protocol"
	"github.com/sluicehq/sluice/internal/store"
	"github.com/sluicehq/sluice/internal/store/postgres"
	"github.com/sluicehq/sluice/internal/store/sqlite"
)

// Config configures a server.
type Config struct {
	DataDir string
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
	// ShutdownTimeout bounds how long Serve waits for requests in flight once asked to stop.
	ShutdownTimeout time.Duration
	Logger          *slog.Logger
}

var accountIDPattern = regexp.MustCompile(`^[0-9]{12}$`)

// Server is a configured Sluice, ready to serve.
type Server struct {
	cfg     Config
	store   store.Store
	service *api.Service
	handler http.Handler
}

// New checks cfg and prepares everything the server needs before it can answer a request: it
// opens the store and brings its schema up to date.
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
	st, err := openStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	svc, err := api.New(ctx, api.Config{AccountID: cfg.AccountID, Region: cfg.Region, PublicURL: cfg.PublicURL, Limits: cfg.Limits,
		StartOnCreate: cfg.StartOnCreate, ApprovalTimeout: cfg.ApprovalTimeout, JobAckTimeout: cfg.JobAckTimeout}, st)
	if err != nil {
		st.Close()
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /_sluice/health", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
	})
	mux.Handle("/", &protocol.Handler{Service: svc, MaxBodyBytes: cfg.MaxRequestBytes, Logger: cfg.Logger})
	return &Server{cfg: cfg, store: st, service: svc, handler: mux}, nil
}

func openStore(ctx context.Context, cfg Config) (store.Store, error) {
	if strings.HasPrefix(cfg.Database, "postgres://") || strings.HasPrefix(cfg.Database, "postgresql://") {
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
	path := filepath.Join(cfg.DataDir, "sluice.db")
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		return nil, err
	}
	cfg.Logger.Info("store", "kind", "sqlite", "path", path)
	return st, nil
}

// Close releases the store; call it after Serve returns.
func (s *Server) Close() error { return s.store.Close() }

// Handler returns the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

// Serve answers requests on ln until ctx is done, then stops accepting new ones and waits, up to
// the shutdown timeout, for those in flight.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.cfg.Logger.Handler(), slog.LevelWarn),
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	sweepCtx, stopSweeping := context.WithCancel(ctx)
	defer stopSweeping()
	go s.sweep(sweepCtx)
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

// sweep enforces timeouts until ctx ends.
func (s *Server) sweep(ctx context.Context) {
	interval := s.cfg.SweepInterval
	if interval <= 0 {
		interval = 5 * time.Second
	}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			if err := s.service.Sweep(ctx); err != nil && ctx.Err() == nil {
				s.cfg.Logger.Error("sweep", "err", err)
			}
		}
	}
}
