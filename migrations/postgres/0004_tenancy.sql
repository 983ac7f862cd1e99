-- Tenants, their API keys, the audit log and the admins' policies (issue 9).
-- Executions stored before this migration belong to the tenant `default`,
-- which is created here (with any other tenant an execution already names).
CREATE TABLE tenants (
    id          TEXT COLLATE "C" PRIMARY KEY,
    disabled    BOOLEAN NOT NULL DEFAULT FALSE,
    created_at  TIMESTAMPTZ NOT NULL,
    disabled_at TIMESTAMPTZ
);
INSERT INTO tenants (id, created_at) VALUES ('default', now());
-- Any other tenant an existing execution names becomes a tenant too.
INSERT INTO tenants (id, created_at)
SELECT DISTINCT tenant_id, now() FROM executions
WHERE tenant_id NOT IN (SELECT id FROM tenants);

-- A key is kept only as the SHA-256 of its text; `prefix` is its first
-- characters, to tell keys apart in a listing.
CREATE TABLE api_keys (
    id           TEXT COLLATE "C" PRIMARY KEY,
    tenant_id    TEXT COLLATE "C" NOT NULL REFERENCES tenants (id),
    prefix       TEXT NOT NULL,
    hash         TEXT COLLATE "C" NOT NULL UNIQUE,
    created_at   TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ,
    revoked_at   TIMESTAMPTZ,
    last_used_at TIMESTAMPTZ
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id);

CREATE TABLE audit_events (
    seq        BIGSERIAL PRIMARY KEY,
    at         TIMESTAMPTZ NOT NULL,
    actor      TEXT NOT NULL,
    tenant_id  TEXT COLLATE "C",
    key_id     TEXT COLLATE "C",
    action     TEXT NOT NULL,
    target     TEXT,
    outcome    TEXT NOT NULL,
    rule       TEXT,
    detail     TEXT NOT NULL DEFAULT '{}',
    peer       TEXT
);
CREATE INDEX audit_events_tenant ON audit_events (tenant_id, seq);
CREATE INDEX audit_events_action ON audit_events (action, seq);

-- The policy of a scope: `global`, or a tenant's id (its overrides).
-- `max_concurrent` repeats the body's cap, for the scheduler's claim query.
CREATE TABLE policies (
    scope          TEXT COLLATE "C" PRIMARY KEY,
    body           TEXT NOT NULL,
    max_concurrent INTEGER,
    updated_at     TIMESTAMPTZ NOT NULL
);

-- What an execution asked of its sandbox (image, runtime), and what the
-- policy made of it when it was admitted (JSON). Older rows were admitted
-- when no policy existed: they run as the local operator's.
ALTER TABLE executions ADD COLUMN sandbox JSONB NOT NULL DEFAULT '{}';
ALTER TABLE executions ADD COLUMN policy JSONB NOT NULL
    DEFAULT '{"operator": true, "allow_private_hosts": true}';
-- The scheduler counts each tenant's live executions.
CREATE INDEX executions_tenant_status ON executions (tenant_id, status);
