-- Claiming paused on every replica (issue 10): while this one row exists no
-- replica claims queued work; running work carries on.
CREATE TABLE claiming_pause (
    only_row  INTEGER PRIMARY KEY NOT NULL CHECK (only_row = 1),
    paused_at TEXT NOT NULL,
    paused_by TEXT NOT NULL
);
