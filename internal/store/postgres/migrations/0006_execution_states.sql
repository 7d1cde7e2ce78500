ALTER TABLE pipeline_runtime ADD COLUMN token TEXT NOT NULL DEFAULT '';

CREATE TABLE execution_states (
    pipeline     TEXT NOT NULL,
    execution_id TEXT NOT NULL,
    state        TEXT NOT NULL,
    PRIMARY KEY (pipeline, execution_id)
);
