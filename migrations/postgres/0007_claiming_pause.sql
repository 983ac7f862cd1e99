-- Claiming paused on every replica (issue 10): while this one row exists no
-- replica claims queued work; running work carries on.
CREATE TABLE claiming_pause (
    only_row  BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (only_row),
    paused_at TIMESTAMPTZ NOT NULL,
    paused_by TEXT NOT NULL
);
