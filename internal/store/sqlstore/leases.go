package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sluicehq/sluice/internal/store"
)

var _ store.Leases = (*DB)(nil)

// AcquireLease is one statement, which the database runs atomically: it inserts the lease, or,
// holding the lease's row, takes it over if it is the holder's or has expired. Expiry and the
// new term are reckoned by the database's clock (Dialect.NowMS), not the caller's, unlike the
// times of other records, which the server stamps: replicas' clocks may differ, and a lease must
// mean the same to all of them.
func (s *DB) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	if name == "" || holder == "" {
		return false, errors.New("acquire lease: a lease needs a name and a holder")
	}
	if ttl < time.Millisecond {
		return false, fmt.Errorf("acquire lease %s: ttl %v is under a millisecond", name, ttl)
	}
	var held bool
	err := s.tx(ctx, func(tx txn) error {
		res, err := tx.exec(`INSERT INTO leases (name, holder, expires_ms) VALUES (?, ?, `+s.dialect.NowMS+` + ?)
			ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_ms = excluded.expires_ms
			WHERE leases.holder = excluded.holder OR leases.expires_ms <= `+s.dialect.NowMS,
			name, holder, ttl.Milliseconds())
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		held = n == 1
		return err
	})
	if err != nil {
		return false, fmt.Errorf("acquire lease %s for %s: %w", name, holder, err)
	}
	return held, nil
}

func (s *DB) ReleaseLease(ctx context.Context, name, holder string) error {
	err := s.tx(ctx, func(tx txn) error {
		_, err := tx.exec(`DELETE FROM leases WHERE name = ? AND holder = ?`, name, holder)
		return err
	})
	if err != nil {
		return fmt.Errorf("release lease %s of %s: %w", name, holder, err)
	}
	return nil
}
