package store

import (
	"context"
	"time"
)

// Leases elect, among the replicas sharing a store, the one that runs a singleton: the sweeper
// that enforces timeouts, the source poller. A lease is named; whoever holds it is its holder, an
// opaque id (a replica's random id), until it expires, unless the holder renews it first.
//
// Leases run by the database's clock, not the replicas': a lease held for ttl expires ttl after
// the database granted or last renewed it, however the replicas' clocks differ. A holder should
// count its ttl from before it asked, and stop the singleton's work before then unless a renewal
// has succeeded.
type Leases interface {
	// AcquireLease takes the lease name for holder for ttl if it is free, expired, or held by
	// holder already, which renews it: it reports whether holder holds it now. It is atomic: of
	// any number of holders asking at once, at most one gets a lease. ttl must be positive.
	AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (held bool, err error)
	// ReleaseLease frees the lease name if holder holds it, so that another can take it without
	// waiting for it to expire; a lease held by another, or by no one, stays as it is, and is no
	// error.
	ReleaseLease(ctx context.Context, name, holder string) error
}
