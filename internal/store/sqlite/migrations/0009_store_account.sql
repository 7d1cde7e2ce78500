-- The account whose records the store holds: each account has a store of its own, and a store
-- that existed before accounts belongs to the account that claims it first.
CREATE TABLE store_account (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    id        TEXT NOT NULL
);
