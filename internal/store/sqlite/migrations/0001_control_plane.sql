CREATE TABLE pipelines (
    name                TEXT PRIMARY KEY,
    version             INTEGER NOT NULL,
    pipeline_type       TEXT NOT NULL,
    execution_mode      TEXT NOT NULL,
    declaration         TEXT NOT NULL,
    created_ms          INTEGER NOT NULL,
    updated_ms          INTEGER NOT NULL,
    polling_disabled_ms INTEGER
);

CREATE TABLE pipeline_versions (
    name                TEXT NOT NULL,
    version             INTEGER NOT NULL,
    pipeline_type       TEXT NOT NULL,
    execution_mode      TEXT NOT NULL,
    declaration         TEXT NOT NULL,
    created_ms          INTEGER NOT NULL,
    updated_ms          INTEGER NOT NULL,
    polling_disabled_ms INTEGER,
    PRIMARY KEY (name, version)
);

CREATE TABLE action_types (
    id          TEXT PRIMARY KEY,
    owner       TEXT NOT NULL,
    declaration TEXT NOT NULL,
    created_ms  INTEGER NOT NULL,
    deleted     INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE webhooks (
    name              TEXT PRIMARY KEY,
    definition        TEXT NOT NULL,
    url               TEXT NOT NULL,
    registered        INTEGER NOT NULL DEFAULT 0,
    last_triggered_ms INTEGER,
    error_message     TEXT,
    error_code        TEXT
);

CREATE TABLE tags (
    resource_arn TEXT NOT NULL,
    tag_key      TEXT NOT NULL,
    tag_value    TEXT NOT NULL,
    PRIMARY KEY (resource_arn, tag_key)
);

CREATE TABLE secrets (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
