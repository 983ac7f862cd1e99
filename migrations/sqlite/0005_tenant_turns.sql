-- When each tenant last had an execution claimed: the fair claim serves the
-- tenant waiting longest among those running fewest (round robin).
CREATE TABLE tenant_turns (
    tenant_id     TEXT PRIMARY KEY NOT NULL,
    last_claim_at TEXT NOT NULL
);
