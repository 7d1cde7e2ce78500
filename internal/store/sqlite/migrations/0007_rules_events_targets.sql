ALTER TABLE action_executions ADD COLUMN targets BLOB;

CREATE TABLE rule_executions (
    id           TEXT PRIMARY KEY,
    execution_id TEXT NOT NULL,
    pipeline     TEXT NOT NULL,
    stage        TEXT NOT NULL,
    rule         TEXT NOT NULL,
    status       TEXT NOT NULL,
    sort_key     TEXT NOT NULL,
    doc          TEXT NOT NULL,
    started_ms   INTEGER NOT NULL,
    updated_ms   INTEGER NOT NULL
);

CREATE INDEX rule_executions_by_pipeline ON rule_executions (pipeline, sort_key);

CREATE INDEX rule_executions_by_execution ON rule_executions (execution_id, sort_key);

CREATE TABLE events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    pipeline     TEXT NOT NULL,
    execution_id TEXT NOT NULL,
    kind         TEXT NOT NULL,
    doc          TEXT NOT NULL,
    at_ms        INTEGER NOT NULL
);

CREATE INDEX events_by_pipeline ON events (pipeline, id);
