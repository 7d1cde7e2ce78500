CREATE TABLE pipeline_runtime (
    name  TEXT COLLATE "C" PRIMARY KEY,
    state TEXT
);

CREATE TABLE executions (
    id           TEXT COLLATE "C" PRIMARY KEY,
    pipeline     TEXT COLLATE "C" NOT NULL,
    seq          BIGINT NOT NULL,
    version      BIGINT NOT NULL,
    status       TEXT NOT NULL,
    client_token TEXT,
    doc          TEXT NOT NULL,
    started_ms   BIGINT NOT NULL,
    updated_ms   BIGINT NOT NULL
);

CREATE INDEX executions_by_pipeline ON executions (pipeline, seq);

CREATE UNIQUE INDEX executions_by_token ON executions (pipeline, client_token);

CREATE TABLE action_executions (
    id           TEXT COLLATE "C" PRIMARY KEY,
    execution_id TEXT COLLATE "C" NOT NULL,
    pipeline     TEXT COLLATE "C" NOT NULL,
    stage        TEXT NOT NULL,
    action       TEXT NOT NULL,
    status       TEXT NOT NULL,
    sort_key     TEXT COLLATE "C" NOT NULL,
    doc          TEXT NOT NULL,
    started_ms   BIGINT NOT NULL,
    updated_ms   BIGINT NOT NULL
);

CREATE INDEX action_executions_by_pipeline ON action_executions (pipeline, sort_key);

CREATE INDEX action_executions_by_execution ON action_executions (execution_id, sort_key);

CREATE TABLE jobs (
    id                  TEXT COLLATE "C" PRIMARY KEY,
    action_execution_id TEXT NOT NULL,
    execution_id        TEXT COLLATE "C" NOT NULL,
    pipeline            TEXT COLLATE "C" NOT NULL,
    type_key            TEXT NOT NULL,
    query_value         TEXT NOT NULL,
    status              TEXT NOT NULL,
    nonce               TEXT NOT NULL,
    data                TEXT NOT NULL,
    created_ms          BIGINT NOT NULL,
    updated_ms          BIGINT NOT NULL
);

CREATE INDEX jobs_pollable ON jobs (type_key, status, created_ms);
