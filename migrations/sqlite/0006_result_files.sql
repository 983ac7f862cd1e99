-- Result files kept in the database: the same tables as PostgreSQL's, so the
-- schemas stay alike; with SQLite agentd keeps results as local files.
CREATE TABLE result_files (
    execution_id TEXT NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    size INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (execution_id, name)
);

CREATE TABLE result_chunks (
    execution_id TEXT NOT NULL,
    name TEXT NOT NULL,
    seq INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (execution_id, name, seq),
    FOREIGN KEY (execution_id, name) REFERENCES result_files (execution_id, name) ON DELETE CASCADE
);
