-- Retries (issue 12): how many times the request allows its execution to be
-- queued again when the engine that ran it was lost (its pod or node gone
-- without draining), and how many times it has been.
ALTER TABLE executions ADD COLUMN retries INTEGER NOT NULL DEFAULT 0;
ALTER TABLE executions ADD COLUMN retried INTEGER NOT NULL DEFAULT 0;
