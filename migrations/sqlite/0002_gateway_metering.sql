-- no-transaction
-- Adds the `budget_exceeded` status, the gateway's own metering (requests,
-- tokens, cost, counted from what upstream sent), and the cassette options
-- (record the model's side; replay it from a recorded execution). SQLite cannot change a CHECK
-- constraint in place, so the table is rebuilt the way SQLite's documentation
-- prescribes: foreign keys off (the event, artifact and resource rows stay),
-- copy into a new table, swap, check, foreign keys on again.
PRAGMA foreign_keys = OFF;
BEGIN IMMEDIATE;

CREATE TABLE executions_v2 (
    id                          TEXT PRIMARY KEY NOT NULL,
    tenant_id                   TEXT NOT NULL DEFAULT 'default',
    idempotency_key             TEXT,
    request_hash                TEXT NOT NULL,
    status                      TEXT NOT NULL CHECK (status IN (
                                    'queued', 'preparing', 'running', 'collecting',
                                    'succeeded', 'failed', 'timed_out', 'cancelled',
                                    'out_of_memory', 'budget_exceeded')),
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
    gateway_requests            INTEGER NOT NULL DEFAULT 0,
    gateway_input_tokens        INTEGER NOT NULL DEFAULT 0,
    gateway_output_tokens       INTEGER NOT NULL DEFAULT 0,
    gateway_cache_creation_input_tokens INTEGER NOT NULL DEFAULT 0,
    gateway_cache_read_input_tokens     INTEGER NOT NULL DEFAULT 0,
    gateway_cost_usd            REAL,
    record_model                BOOLEAN NOT NULL DEFAULT 0 CHECK (record_model IN (0, 1)),
    replay_from                 TEXT,
    UNIQUE (tenant_id, idempotency_key)
);

INSERT INTO executions_v2 (id, tenant_id, idempotency_key, request_hash, status, reason, repo, git_ref, prompt, agent, limits, context_file, branch, base_commit, head_commit, session_id, num_turns, input_tokens, output_tokens, cache_creation_input_tokens, cache_read_input_tokens, cost_usd, tool_calls, result, files_changed, exit_code, oom_killed, image, has_diff, has_bundle, owner, lease_expires_at, cancel_requested, log_cursor, created_at, started_at, finished_at, updated_at, duration_ms)
SELECT id, tenant_id, idempotency_key, request_hash, status, reason, repo, git_ref, prompt, agent, limits, context_file, branch, base_commit, head_commit, session_id, num_turns, input_tokens, output_tokens, cache_creation_input_tokens, cache_read_input_tokens, cost_usd, tool_calls, result, files_changed, exit_code, oom_killed, image, has_diff, has_bundle, owner, lease_expires_at, cancel_requested, log_cursor, created_at, started_at, finished_at, updated_at, duration_ms FROM executions;

DROP TABLE executions;
ALTER TABLE executions_v2 RENAME TO executions;

-- A tenant's executions, newest first.
CREATE INDEX executions_tenant ON executions (tenant_id, id DESC);
-- The queue (FIFO by id: ids are UUID v7) and the live set.
CREATE INDEX executions_status ON executions (status, id);
-- A repository's executions, newest first.
CREATE INDEX executions_repo ON executions (repo, id DESC);
-- Leases held by one supervisor.
CREATE INDEX executions_owner ON executions (owner) WHERE owner IS NOT NULL;

COMMIT;
PRAGMA foreign_key_check;
PRAGMA foreign_keys = ON;
