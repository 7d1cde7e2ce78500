-- Leases elect the replica that runs a singleton (the sweeper, the source poller): holder, a
-- replica's id, holds the lease name until expires_ms, by the database's clock, unless it renews.
CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_ms INTEGER NOT NULL
);
