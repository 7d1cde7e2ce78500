ALTER TABLE pipeline_runtime ADD COLUMN active BIGINT NOT NULL DEFAULT 0;

CREATE INDEX pipeline_runtime_active ON pipeline_runtime (active);
