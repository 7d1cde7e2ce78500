CREATE TABLE pipelines (
    name                TEXT COLLATE "C" PRIMARY KEY,
    version             BIGINT NOT NULL,
    pipeline_type       TEXT NOT NULL,
    execution_mode      TEXT NOT NULL,
    declaration         TEXT NOT NULL,
    created_ms          BIGINT NOT NULL,
    updated_ms          BIGINT NOT NULL,
    polling_disabled_ms BIGINT
);

CREATE TABLE pipeline_versions (
    name                TEXT COLLATE "C" NOT NULL,
    version             BIGINT NOT NULL,
    pipeline_type       TEXT NOT NULL,
    execution_mode      TEXT NOT NULL,
    declaration         TEXT NOT NULL,
    created_ms          BIGINT NOT NULL,
    updated_ms          BIGINT NOT NULL,
    polling_disabled_ms BIGINT,
    PRIMARY KEY (name, version)
);

CREATE TABLE action_types (
    id          TEXT COLLATE "C" PRIMARY KEY,
    owner       TEXT NOT NULL,
    declaration TEXT NOT NULL,
    created_ms  BIGINT NOT NULL,
    deleted     BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE webhooks (
    name              TEXT COLLATE "C" PRIMARY KEY,
    definition        TEXT NOT NULL,
    url               TEXT NOT NULL,
    registered        BIGINT NOT NULL DEFAULT 0,
    last_triggered_ms BIGINT,
    error_message     TEXT,
    error_code        TEXT
);

CREATE TABLE tags (
    resource_arn TEXT COLLATE "C" NOT NULL,
    tag_key      TEXT COLLATE "C" NOT NULL,
    tag_value    TEXT NOT NULL,
    PRIMARY KEY (resource_arn, tag_key)
);

CREATE TABLE secrets (
    name  TEXT COLLATE "C" PRIMARY KEY,
    value TEXT NOT NULL
);
