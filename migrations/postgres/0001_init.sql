-- agentd's store on PostgreSQL. Ids are text in the "C" collation so they sort
-- bytewise (UUID v7 text sorts by creation time). Event bodies are JSON *text*,
-- kept verbatim: jsonb refuses the \u0000 escapes raw agent output may contain.

CREATE TABLE executions (
    id                          TEXT COLLATE "C" PRIMARY KEY,
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
    agent                       JSONB NOT NULL,
    limits                      JSONB NOT NULL,
    context_file                TEXT,
    branch                      TEXT NOT NULL,
    base_commit                 TEXT,
    head_commit                 TEXT,
    session_id                  TEXT,
    num_turns                   BIGINT NOT NULL DEFAULT 0,
    input_tokens                BIGINT NOT NULL DEFAULT 0,
    output_tokens               BIGINT NOT NULL DEFAULT 0,
    cache_creation_input_tokens BIGINT NOT NULL DEFAULT 0,
    cache_read_input_tokens     BIGINT NOT NULL DEFAULT 0,
    cost_usd                    DOUBLE PRECISION,
    tool_calls                  BIGINT NOT NULL DEFAULT 0,
    result                      TEXT,
    files_changed               JSONB NOT NULL DEFAULT '[]',
    exit_code                   BIGINT,
    oom_killed                  BOOLEAN NOT NULL DEFAULT FALSE,
    image                       TEXT,
    has_diff                    BOOLEAN NOT NULL DEFAULT FALSE,
    has_bundle                  BOOLEAN NOT NULL DEFAULT FALSE,
    owner                       TEXT,
    lease_expires_at            TIMESTAMPTZ,
    cancel_requested            BOOLEAN NOT NULL DEFAULT FALSE,
    log_cursor                  BIGINT NOT NULL DEFAULT 0,
    created_at                  TIMESTAMPTZ NOT NULL,
    started_at                  TIMESTAMPTZ,
    finished_at                 TIMESTAMPTZ,
    updated_at                  TIMESTAMPTZ NOT NULL,
    duration_ms                 BIGINT,
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
    execution_id TEXT COLLATE "C" NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    seq          BIGINT NOT NULL CHECK (seq >= 1),
    at           TIMESTAMPTZ NOT NULL,
    source       TEXT NOT NULL,
    type         TEXT NOT NULL,
    body         TEXT NOT NULL,
    PRIMARY KEY (execution_id, seq)
);

CREATE TABLE artifacts (
    execution_id TEXT COLLATE "C" NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    path         TEXT COLLATE "C" NOT NULL,
    size         BIGINT NOT NULL,
    sha256       TEXT NOT NULL,
    PRIMARY KEY (execution_id, path)
);

-- Containers, volumes and sockets made for an execution, kept after removal so
-- reconciliation and audits can tell what existed.
CREATE TABLE resources (
    execution_id TEXT COLLATE "C" NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    kind         TEXT NOT NULL CHECK (kind IN ('container', 'volume', 'socket')),
    name         TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    removed_at   TIMESTAMPTZ,
    PRIMARY KEY (execution_id, kind, name)
);

CREATE INDEX resources_name ON resources (kind, name);
