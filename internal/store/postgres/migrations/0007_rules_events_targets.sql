ALTER TABLE action_executions ADD COLUMN targets BYTEA;

CREATE TABLE rule_executions (
    id           TEXT COLLATE "C" PRIMARY KEY,
    execution_id TEXT COLLATE "C" NOT NULL,
    pipeline     TEXT COLLATE "C" NOT NULL,
    stage        TEXT NOT NULL,
    rule         TEXT NOT NULL,
    status       TEXT NOT NULL,
    sort_key     TEXT COLLATE "C" NOT NULL,
    doc          TEXT NOT NULL,
    started_ms   BIGINT NOT NULL,
    updated_ms   BIGINT NOT NULL
);

CREATE INDEX rule_executions_by_pipeline ON rule_executions (pipeline, sort_key);

CREATE INDEX rule_executions_by_execution ON rule_executions (execution_id, sort_key);

CREATE TABLE events (
    id           BIGSERIAL PRIMARY KEY,
    pipeline     TEXT COLLATE "C" NOT NULL,
    execution_id TEXT COLLATE "C" NOT NULL,
    kind         TEXT NOT NULL,
    doc          TEXT NOT NULL,
    at_ms        BIGINT NOT NULL
);

CREATE INDEX events_by_pipeline ON events (pipeline, id);
