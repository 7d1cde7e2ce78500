package server

import (
	"context"
	"sync"
	"time"
)

// Singletons are services of which one replica runs each account's at a time: the sweeper,
// which enforces timeouts (jobs unattended, approvals and rules that waited too long), and the
// poller of source actions. Each runs while its replica holds the account's lease of the same
// name in the store; a replica that dies stops renewing it, and another takes it over within
// leaseTTL.
const (
	leaseSweeper = "sweeper"
	leasePoller  = "source-poller"
)

// leaseTTL is how long a lease lasts unless renewed; it is renewed every leaseTTL/3.
const leaseTTL = 15 * time.Second

// whileHolding runs fn for as long as this replica holds the tenant's lease name, and again
// whenever it takes the lease back, until ctx ends. fn's context ends when the lease is lost
// (taken over, or not renewed before it lapses: the lease is counted from before each renewal
// was asked for, so fn stops here no later than the store lets another replica take it) or
// ctx ends; whileHolding waits for fn before it tries to take the lease again, so that two
// replicas never run it at once, and releases the lease when ctx ends so that another replica
// takes over at once.
func (s *Server) whileHolding(ctx context.Context, t *tenant, name string, fn func(context.Context)) {
	if s.cfg.Database == "" {
		// The embedded store's process is the only one on its data directory, which it locks:
		// it needs no lease, and a restart after a crash does not wait for its own to lapse.
		fn(ctx)
		return
	}
	renew := time.NewTicker(leaseTTL / 3)
	defer renew.Stop()
	// lapse fires when the lease this replica last renewed runs out.
	lapse := time.NewTimer(0)
	lapse.Stop()
	defer lapse.Stop()
	var (
		running func() // stops fn and waits for it
		held    bool
	)
	stop := func(why string) {
		if running != nil {
			s.cfg.Logger.Info("stopping the account's singleton here", "lease", name, "account_id", t.account, "why", why)
			running()
			running = nil
		}
	}
	defer func() {
		stop("the server is stopping")
		if held {
			releaseCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), leaseTTL/3)
			defer cancel()
			if err := t.store.ReleaseLease(releaseCtx, name, s.replica); err != nil {
				s.cfg.Logger.Warn("release a lease", "lease", name, "account_id", t.account, "err", err)
			}
		}
	}()
	for {
		asked := time.Now()
		acquireCtx, cancel := context.WithTimeout(ctx, leaseTTL/3)
		ok, err := t.store.AcquireLease(acquireCtx, name, s.replica, leaseTTL)
		cancel()
		switch {
		case err != nil && ctx.Err() == nil:
			// Not known either way: fn goes on until the lease it holds lapses.
			s.cfg.Logger.Warn("take or renew a lease", "lease", name, "account_id", t.account, "err", err)
		case ok:
			held = true
			lapse.Reset(time.Until(asked.Add(leaseTTL)))
			if running == nil {
				s.cfg.Logger.Info("lease taken: running the account's singleton here", "lease", name, "account_id", t.account)
				running = startSingleton(ctx, fn)
			}
		default:
			held = false
			stop("another replica holds the lease")
		}
		select {
		case <-ctx.Done():
			return
		case <-lapse.C:
			held = false
			stop("the lease lapsed before it could be renewed")
		case <-renew.C:
		}
	}
}

// startSingleton runs fn in a goroutine and returns the function that stops it and waits for it.
func startSingleton(ctx context.Context, fn func(context.Context)) (stop func()) {
	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { fn(runCtx) })
	return func() {
		cancel()
		wg.Wait()
	}
}
