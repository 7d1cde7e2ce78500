ALTER TABLE pipelines ADD COLUMN generation TEXT NOT NULL DEFAULT '';

ALTER TABLE pipeline_versions ADD COLUMN generation TEXT NOT NULL DEFAULT '';
