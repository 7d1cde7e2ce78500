CREATE TABLE source_events (
    id         TEXT COLLATE "C" PRIMARY KEY,
    doc        TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);

CREATE INDEX source_events_by_age ON source_events (created_ms, id);
