package server

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sluicehq/sluice/internal/api"
	"github.com/sluicehq/sluice/internal/artifacts"
	"github.com/sluicehq/sluice/internal/connections"
	"github.com/sluicehq/sluice/internal/githost"
	"github.com/sluicehq/sluice/internal/gitrepo"
	"github.com/sluicehq/sluice/internal/gitrepo/shared"
	"github.com/sluicehq/sluice/internal/logs"
	"github.com/sluicehq/sluice/internal/notify"
	"github.com/sluicehq/sluice/internal/runners"
	"github.com/sluicehq/sluice/internal/s3server"
	"github.com/sluicehq/sluice/internal/sources"
	"github.com/sluicehq/sluice/internal/store"
	"github.com/sluicehq/sluice/internal/store/postgres"
	"github.com/sluicehq/sluice/internal/store/sqlite"
	"github.com/sluicehq/sluice/internal/webhooks"
)

// A tenant is one account's share of the server: its own store (a database file, or a schema
// of the PostgreSQL database), its service and executor, its runners, its source watcher, its
// hosted repositories, its build logs, its webhooks and connections. Nothing of one account is
// reachable through another's tenant: isolation is by construction, not by filtering.
//
// The account given by --account-id keeps the layout of a server without accounts (the data
// directory itself, the database's own schema), so that what existed before accounts belongs to
// it; every other account lives under accounts/<id> of the data directory, or in the schema
// <schema>_account_<id>.
type tenant struct {
	account string
	store   store.Store
	service *api.Service
	git     http.Handler
	hooks   *webhooks.Handler
	conns   *connections.Handler
	// logs serves the build logs of the account's runs, which logStore keeps.
	logs     http.Handler
	logStore *logs.Store
	// gitStore keeps the hosted repositories where every replica reaches them; nil when they
	// are kept under the data directory.
	gitStore *shared.Store
	runners  *runners.Runners
	sources  *sources.Watcher
}

// openTimeout bounds how long opening an account's share of the server may take: its schema,
// migrations and stores.
const openTimeout = time.Minute

// opening is an account's share of the server being opened, which callers wait for.
type opening struct {
	done chan struct{}
	t    *tenant
	err  error
}

// tenant returns the tenant of account, opening it (and starting its services, if the server is
// serving) on first use. The opening runs apart from the request that asked for it, so that a
// caller that gives up does not abort it and one slow opening holds up no other request.
func (s *Server) tenant(ctx context.Context, account string) (*tenant, error) {
	s.mu.Lock()
	if t, ok := s.tenants[account]; ok {
		s.mu.Unlock()
		return t, nil
	}
	if s.closed {
		s.mu.Unlock()
		return nil, errors.New("the server is shutting down")
	}
	o, ok := s.opening[account]
	if !ok {
		o = &opening{done: make(chan struct{})}
		s.opening[account] = o
		s.openings.Go(func() { s.open(context.WithoutCancel(ctx), account, o) })
	}
	s.mu.Unlock()
	select {
	case <-o.done:
		return o.t, o.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// open opens account's tenant for the callers of tenant waiting on o.
func (s *Server) open(ctx context.Context, account string, o *opening) {
	defer close(o.done)
	ctx, cancel := context.WithTimeout(ctx, openTimeout)
	defer cancel()
	t, err := s.openTenant(ctx, account, nil)
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.opening, account)
	if err == nil && s.closed {
		t.close()
		t, err = nil, errors.New("the server is shutting down")
	}
	if err != nil {
		o.err = err
		return
	}
	s.tenants[account] = t
	if s.serving != nil {
		s.start(t)
	}
	o.t = t
}

// OpenAccounts opens the share of every account of the identities that is not open yet, as after
// the identities were read again: each starts running its services (its runners, its webhooks'
// deliveries) at once, not when its first request comes.
func (s *Server) OpenAccounts(ctx context.Context) {
	if s.cfg.Identities == nil {
		return
	}
	for _, account := range s.cfg.Identities.Accounts() {
		if _, err := s.tenant(ctx, account); err != nil {
			s.cfg.Logger.Error("open an account", "account_id", account, "err", err)
		}
	}
}

// close releases what a tenant holds open.
func (t *tenant) close() error {
	var errs []error
	if t.gitStore != nil {
		errs = append(errs, t.gitStore.Close())
	}
	return errors.Join(append(errs, t.logStore.Close(), t.store.Close())...)
}

// openTenant opens account's tenant; st is its store if it is open already. Whoever opened the
// store closes it if opening the tenant fails.
func (s *Server) openTenant(ctx context.Context, account string, st store.Store) (t *tenant, err error) {
	cfg := s.cfg
	dir := cfg.DataDir
	if account != cfg.AccountID {
		dir = filepath.Join(cfg.DataDir, "accounts", account)
	}
	if st == nil {
		if st, err = openAccountStore(ctx, cfg, account, dir); err != nil {
			return nil, fmt.Errorf("open the store of account %s: %w", account, err)
		}
		defer func() {
			if err != nil {
				st.Close()
			}
		}()
	}
	if err := st.Claim(ctx, account); err != nil {
		return nil, fmt.Errorf("the store of account %s: %w", account, err)
	}
	t, err = s.assemble(ctx, account, dir, st)
	if err != nil {
		return nil, fmt.Errorf("account %s: %w", account, err)
	}
	s.cfg.Logger.Info("account", "account_id", account)
	return t, nil
}

// assemble builds a tenant's parts over its store.
func (s *Server) assemble(ctx context.Context, account, dir string, st store.Store) (_ *tenant, err error) {
	cfg := s.cfg
	t := &tenant{account: account, store: st}
	arts := s.artifacts
	if s.objects != nil {
		arts = artifacts.NewLocal(s.objects, s.issuer, cfg.PublicURL, account, cfg.AccountID)
	}
	logStore, err := s.openLogs(ctx, account, dir)
	if err != nil {
		return nil, err
	}
	t.logStore = logStore
	defer func() {
		if err != nil {
			logStore.Close()
		}
	}()
	t.logs = streaming(logStore, cfg.ReadTimeout, cfg.WriteTimeout)
	publicURL := strings.TrimSuffix(cfg.PublicURL, "/")
	svc, err := api.New(ctx, api.Config{AccountID: account, Region: cfg.Region, PublicURL: cfg.PublicURL, Limits: cfg.Limits,
		StartOnCreate: cfg.StartOnCreate, ApprovalTimeout: cfg.ApprovalTimeout, JobAckTimeout: cfg.JobAckTimeout,
		Artifacts: arts, WorkerProviders: s.workerProviders, LocalProviders: runners.Providers(), ClientID: s.issuer.ClientID,
		LogURL:           func(id string) string { return publicURL + "/_sluice/logs/" + id },
		WebhookURL:       func(token string) string { return webhooks.URL(publicURL, token, s.accountQuery(account)) },
		PipelinesChanged: func() { t.sources.Changed() }, Notifier: notify.Scoped(s.notifier, s.namespace(account))}, st)
	if err != nil {
		return nil, err
	}
	t.service = svc
	remotes := gitrepo.NewRemotes(filepath.Join(dir, "git"), filepath.Join(dir, "git-mirrors"), cfg.GitRemotes)
	gitStore, err := s.openSharedGit(ctx, account)
	if err != nil {
		return nil, err
	}
	if gitStore != nil {
		t.gitStore = gitStore
		defer func() {
			if err != nil {
				gitStore.Close()
			}
		}()
		// The directory is only a cache: the repositories are in the database and the bucket.
		remotes = gitrepo.NewSharedRemotes(filepath.Join(dir, "git"), filepath.Join(dir, "git-mirrors"), cfg.GitRemotes, gitStore)
	}
	t.sources = sources.New(svc.Executor(), st, arts, remotes, account, cfg.Region, cfg.Logger)
	t.git = streaming(githost.New(remotes, t.sources.Pushed, s.authorizeGit(account), cfg.Logger), cfg.ReadTimeout, cfg.WriteTimeout)
	t.hooks = webhooks.New(webhooks.Config{Store: st, Recorder: t.sources, Region: cfg.Region, AccountID: account, Logger: cfg.Logger})
	t.conns = connections.New(connections.Config{Secrets: st, Recorder: t.sources, PublicURL: publicURL, Account: s.accountQuery(account), Logger: cfg.Logger})
	t.runners, err = runners.New(ctx, runners.Config{
		Executor: svc.Executor(), Artifacts: arts, Logs: logStore, Git: remotes,
		WorkDir: filepath.Join(dir, "work"), BuildTimeout: cfg.BuildTimeout, BuildProjects: cfg.BuildProjects,
		Isolation: cfg.BuildIsolation, ArtifactLimits: cfg.ArtifactLimits,
		Heartbeat: cfg.JobAckTimeout / 4, PublicURL: publicURL, AccountID: account, Region: cfg.Region, Logger: cfg.Logger,
		CloudWatchEndpoint: cfg.CloudWatchEndpoint, LambdaEndpoint: cfg.LambdaEndpoint,
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// accountQuery is what URLs the server hands out for account's webhooks add to say whose they
// are: nothing for the server's own account, whose URLs stay as they were before accounts.
func (s *Server) accountQuery(account string) string {
	if account == s.cfg.AccountID {
		return ""
	}
	return account
}

// openAccountStore opens the store of an account other than the server's own: a database file
// under dir, or a schema of its own in the PostgreSQL database.
func openAccountStore(ctx context.Context, cfg Config, account, dir string) (store.Store, error) {
	if cfg.Database == "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("create the account's directory: %w", err)
		}
		return sqlite.Open(ctx, filepath.Join(dir, "sluice.db"))
	}
	u, schema, err := accountDatabase(cfg.Database, account)
	if err != nil {
		return nil, err
	}
	if err := postgres.CreateSchema(ctx, cfg.Database, schema); err != nil {
		return nil, err
	}
	return postgres.Open(ctx, u)
}

// accountDatabase is the URL of the schema that holds the records of an account other than the
// server's own in the database at database, and the schema's name: the database's own schema
// (search_path, else "sluice") with _account_<id> after it.
func accountDatabase(database, account string) (url_, schema string, err error) {
	u, err := url.Parse(database)
	if err != nil {
		return "", "", fmt.Errorf("database URL: %w", err)
	}
	q := u.Query()
	// The first schema of a search path is the one the server's own records are in.
	base, _, _ := strings.Cut(q.Get("search_path"), ",")
	if base = strings.Trim(strings.TrimSpace(base), `"`); base == "" {
		base = "sluice"
	}
	schema = base + "_account_" + account
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), schema, nil
}

// namespace keeps an account's notifications apart from other accounts' and from other servers'
// on the same database: the account's schema.
func (s *Server) namespace(account string) string {
	if s.cfg.Database == "" {
		return account
	}
	if account == s.cfg.AccountID {
		u, err := url.Parse(s.cfg.Database)
		if err != nil {
			return account
		}
		return u.Query().Get("search_path")
	}
	_, schema, _ := accountDatabase(s.cfg.Database, account)
	return schema
}

// openSharedGit opens where replicas on PostgreSQL keep an account's hosted repositories: their
// refs in the account's schema, their objects in the git bucket under git/<account>/. Without a
// database and a bucket, repositories are kept under the data directory: nil.
func (s *Server) openSharedGit(ctx context.Context, account string) (*shared.Store, error) {
	cfg := s.cfg
	if cfg.Database == "" || s.s3 == nil || cfg.Artifacts.GitBucket == "" {
		return nil, nil
	}
	u := cfg.Database
	if account != cfg.AccountID {
		var err error
		if u, _, err = accountDatabase(cfg.Database, account); err != nil {
			return nil, err
		}
	}
	return shared.Open(ctx, shared.Config{DatabaseURL: u, Client: s.s3, Bucket: cfg.Artifacts.GitBucket,
		Prefix: "git/" + account + "/", Logger: cfg.Logger})
}

// openLogs opens where an account's build logs are kept: files under dir with the embedded store;
// with PostgreSQL, the account's schema, so that every replica reads and follows them, woken by
// the notifier whenever a replica writes some out.
func (s *Server) openLogs(ctx context.Context, account, dir string) (*logs.Store, error) {
	cfg := s.cfg
	if cfg.Database == "" {
		return logs.Open(filepath.Join(dir, "logs"))
	}
	u := cfg.Database
	if account != cfg.AccountID {
		var err error
		if u, _, err = accountDatabase(cfg.Database, account); err != nil {
			return nil, err
		}
	}
	n := notify.Scoped(s.notifier, s.namespace(account))
	topic := func(id string) string { return "log/" + id }
	st, err := logs.OpenPostgres(ctx, u, logs.PostgresOptions{Flushed: func(id string) {
		// Told under the writer's lock: it must not wait.
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = n.Notify(ctx, topic(id), notify.Resync)
		}()
	}})
	if err != nil {
		return nil, err
	}
	st.Follow = func(id string) (<-chan string, func()) { return n.Listen(topic(id)) }
	return st, nil
}

// start starts a tenant's services, which run until the server stops serving: on every
// replica, the runners and the delivery of recorded source events; on one replica at a time, the
// singletons.
func (s *Server) start(t *tenant) {
	ctx, wg := s.serving.ctx, &s.serving.wg
	wg.Go(func() { s.whileHolding(ctx, t, leaseSweeper, func(ctx context.Context) { s.sweep(ctx, t) }) })
	wg.Go(func() { t.runners.Run(ctx) })
	wg.Go(func() { t.sources.Deliver(ctx) })
	if s.cfg.SourcePollInterval > 0 {
		wg.Go(func() {
			s.whileHolding(ctx, t, leasePoller, func(ctx context.Context) { t.sources.Run(ctx, s.cfg.SourcePollInterval) })
		})
	}
}

// serving is what runs while the server serves: the services of every tenant.
type serving struct {
	ctx context.Context
	wg  sync.WaitGroup
}

// sweep enforces a tenant's timeouts until ctx ends.
func (s *Server) sweep(ctx context.Context, t *tenant) {
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
			if err := t.service.Sweep(ctx); err != nil && ctx.Err() == nil {
				s.cfg.Logger.Error("sweep", "account_id", t.account, "err", err)
			}
		}
	}
}

// JobObjects tells the S3 endpoint what a job's credentials reach, asking each account's
// executor in turn: a job belongs to one of them.
func (s *Server) JobObjects(ctx context.Context, jobID string) (read, write []s3server.Location, running bool, err error) {
	s.mu.Lock()
	tenants := slices.Collect(maps.Values(s.tenants))
	s.mu.Unlock()
	for _, t := range tenants {
		r, w, running, err := t.service.Executor().JobObjects(ctx, jobID)
		if err != nil {
			return nil, nil, false, err
		}
		if !running {
			continue
		}
		for _, o := range r {
			read = append(read, s3server.Location(o))
		}
		for _, o := range w {
			write = append(write, s3server.Location(o))
		}
		return read, write, true, nil
	}
	return nil, nil, false, nil
}

// uploaded tells the watcher of the account that owns bucket of an object written to it through
// the built-in S3 endpoint.
func (s *Server) uploaded(ctx context.Context, bucket, key, version string) error {
	b, err := s.objects.Bucket(ctx, bucket)
	if err != nil {
		return err
	}
	account := b.Owner
	if account == "" {
		account = s.cfg.AccountID
	}
	s.mu.Lock()
	t, ok := s.tenants[account]
	s.mu.Unlock()
	if !ok {
		return nil
	}
	return t.sources.Uploaded(ctx, bucket, key, version)
}
