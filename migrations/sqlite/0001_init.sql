-- agentd's store on SQLite. Timestamps are UTC text of one fixed width
-- (2026-01-02T03:04:05.123456Z) so they compare in time order as text; JSON
-- columns hold serde_json text; booleans are 0/1.

CREATE TABLE executions (
    id                          TEXT PRIMARY KEY NOT NULL,
    tenant_id                   TEXT NOT NULL DEFAULT 'default',
    idempotency_key             TEXT,
    request_hash                TEXT NOT NULL,
    status                      TEXT NOT NULL CHECK (status IN (
                                    'queued', 'preparing', 'running', 'collecting',
                                    'succeeded', 'failed', 'timed_out', 'cancelled',
                                    'out_of_memory')),
    reason                      TEXT,
    repo                        TEXT NOT NULL,
    git_ref                     TEXT,
    prompt                      TEXT NOT NULL,
    agent                       TEXT NOT NULL CHECK (json_valid(agent)),
    limits                      TEXT NOT NULL CHECK (json_valid(limits)),
    context_file                TEXT,
    branch                      TEXT NOT NULL,
    base_commit                 TEXT,
    head_commit                 TEXT,
    session_id                  TEXT,
    num_turns                   INTEGER NOT NULL DEFAULT 0,
    input_tokens                INTEGER NOT NULL DEFAULT 0,
    output_tokens               INTEGER NOT NULL DEFAULT 0,
    cache_creation_input_tokens INTEGER NOT NULL DEFAULT 0,
    cache_read_input_tokens     INTEGER NOT NULL DEFAULT 0,
    cost_usd                    REAL,
    tool_calls                  INTEGER NOT NULL DEFAULT 0,
    result                      TEXT,
    files_changed               TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(files_changed)),
    exit_code                   INTEGER,
    oom_killed                  BOOLEAN NOT NULL DEFAULT 0 CHECK (oom_killed IN (0, 1)),
    image                       TEXT,
    has_diff                    BOOLEAN NOT NULL DEFAULT 0 CHECK (has_diff IN (0, 1)),
    has_bundle                  BOOLEAN NOT NULL DEFAULT 0 CHECK (has_bundle IN (0, 1)),
    owner                       TEXT,
    lease_expires_at            TEXT,
    cancel_requested            BOOLEAN NOT NULL DEFAULT 0 CHECK (cancel_requested IN (0, 1)),
    log_cursor                  INTEGER NOT NULL DEFAULT 0,
    created_at                  TEXT NOT NULL,
    started_at                  TEXT,
    finished_at                 TEXT,
    updated_at                  TEXT NOT NULL,
    duration_ms                 INTEGER,
    UNIQUE (tenant_id, idempotency_key)
);

-- A tenant's executions, newest first.
CREATE INDEX executions_tenant ON executions (tenant_id, id DESC);
-- The queue (FIFO by id: ids are UUID v7) and the live set.
CREATE INDEX executions_status ON executions (status, id);
-- A repository's executions, newest first.
CREATE INDEX executions_repo ON executions (repo, id DESC);
-- Leases held by one supervisor.
CREATE INDEX executions_owner ON executions (owner) WHERE owner IS NOT NULL;

-- Event log: `seq` from 1 without gaps per execution; `body` is the whole event
-- body as JSON text (source and type repeated in their own columns for filtering).
CREATE TABLE events (
    execution_id TEXT NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    seq          INTEGER NOT NULL CHECK (seq >= 1),
    at           TEXT NOT NULL,
    source       TEXT NOT NULL,
    type         TEXT NOT NULL,
    body         TEXT NOT NULL,
    PRIMARY KEY (execution_id, seq)
) WITHOUT ROWID;

CREATE TABLE artifacts (
    execution_id TEXT NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    path         TEXT NOT NULL,
    size         INTEGER NOT NULL,
    sha256       TEXT NOT NULL,
    PRIMARY KEY (execution_id, path)
) WITHOUT ROWID;

-- Containers, volumes and sockets made for an execution, kept after removal so
-- reconciliation and audits can tell what existed.
CREATE TABLE resources (
    execution_id TEXT NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    kind         TEXT NOT NULL CHECK (kind IN ('container', 'volume', 'socket')),
    name         TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    removed_at   TEXT,
    PRIMARY KEY (execution_id, kind, name)
);

CREATE INDEX resources_name ON resources (kind, name);
