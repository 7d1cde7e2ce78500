CREATE TABLE source_events (
    id         TEXT PRIMARY KEY,
    doc        TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);

CREATE INDEX source_events_by_age ON source_events (created_ms, id);
