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
    created_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX credentials_tenant ON credentials (tenant_id);

-- What a request asked of delivery (`{"push", "merge_into"}`, NULL when it
-- asked for none) and what became of it (the `Delivery` record as JSON).
ALTER TABLE executions ADD COLUMN delivery_plan TEXT;
ALTER TABLE executions ADD COLUMN delivery TEXT;

-- The request's lifecycle hooks in the sandbox (`{"setup": […], "teardown":
-- […]}`), NULL when it has none.
ALTER TABLE executions ADD COLUMN hooks TEXT;
