-- Delivery (issue 11). A tenant's credentials for its git remotes: the
-- secret only sealed (AES-256-GCM with the operator's secret key, bound to
-- the row's id and tenant), with the fingerprint of the key that sealed it.
CREATE TABLE credentials (
    id              TEXT PRIMARY KEY NOT NULL,
    tenant_id       TEXT NOT NULL REFERENCES tenants (id),
    kind            TEXT NOT NULL CHECK (kind IN ('https', 'ssh')),
    repo_pattern    TEXT,
    username        TEXT,
    sealed          TEXT NOT NULL,
    key_fingerprint TEXT NOT NULL,
    created_at      TEXT NOT NULL
);
CREATE INDEX credentials_tenant ON credentials (tenant_id);

-- What a request asked of delivery (`{"push", "merge_into"}`, NULL when it
-- asked for none) and what became of it (the `Delivery` record as JSON).
ALTER TABLE executions ADD COLUMN delivery_plan TEXT;
ALTER TABLE executions ADD COLUMN delivery TEXT;

-- The request's lifecycle hooks in the sandbox (`{"setup": […], "teardown":
-- […]}`), NULL when it has none.
ALTER TABLE executions ADD COLUMN hooks TEXT;

-- Status webhooks: a tenant's endpoints (the signing secret sealed like a
-- credential) and the durable outbox of their deliveries. Rows of the outbox
-- are written in the transaction that stores the event they carry, so no
-- event is stored without its deliveries; any replica claims and sends them.
CREATE TABLE webhooks (
    id              TEXT PRIMARY KEY NOT NULL,
    tenant_id       TEXT NOT NULL REFERENCES tenants (id),
    url             TEXT NOT NULL,
    events          TEXT NOT NULL,
    sealed_secret   TEXT NOT NULL,
    key_fingerprint TEXT NOT NULL,
    operator        BOOLEAN NOT NULL DEFAULT 0,
    created_at      TEXT NOT NULL
);
CREATE INDEX webhooks_tenant ON webhooks (tenant_id);

CREATE TABLE webhook_deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id       TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    tenant_id        TEXT NOT NULL,
    execution_id     TEXT NOT NULL,
    seq              BIGINT NOT NULL,
    event_type       TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT NOT NULL,
    claimed_by       TEXT,
    claim_expires_at TEXT,
    last_status      INTEGER,
    last_error       TEXT,
    created_at       TEXT NOT NULL,
    delivered_at     TEXT
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries (webhook_id, id);
