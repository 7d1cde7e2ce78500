-- The tags each polling source of a remote repository last saw, so that whichever replica polls
-- next, or this one after a restart, starts the pipelines of the tags that appeared meanwhile.
CREATE TABLE source_tags (
    source TEXT PRIMARY KEY,
    doc    TEXT NOT NULL
);
