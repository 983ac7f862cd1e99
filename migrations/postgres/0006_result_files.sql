-- Result files kept in the database (`--results database`, the default with
-- PostgreSQL): one row per file, its bytes in chunks of 1 MiB.
CREATE TABLE result_files (
    execution_id TEXT NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    size BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (execution_id, name)
);

CREATE TABLE result_chunks (
    execution_id TEXT NOT NULL,
    name TEXT NOT NULL,
    seq BIGINT NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (execution_id, name, seq),
    FOREIGN KEY (execution_id, name) REFERENCES result_files (execution_id, name) ON DELETE CASCADE
);
