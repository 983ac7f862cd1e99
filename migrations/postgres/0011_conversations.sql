-- Conversations (issue 13): a follow-up execution continues its parent's
-- branch and agent session. `conversation_id` is the root execution's id
-- (NULL on executions made before this migration: each is its own root);
-- `sibling` numbers a parent's follow-ups from 1, so two follow-ups of one
-- parent can never be given the same branch.
ALTER TABLE executions ADD COLUMN parent_id TEXT;
ALTER TABLE executions ADD COLUMN conversation_id TEXT;
ALTER TABLE executions ADD COLUMN sibling BIGINT;
ALTER TABLE executions ADD COLUMN streaming_input BOOLEAN NOT NULL DEFAULT FALSE;
CREATE UNIQUE INDEX executions_parent_sibling ON executions (parent_id, sibling);
CREATE INDEX executions_conversation ON executions (conversation_id);

-- What clients said to a running agent in streaming-input mode, in order:
-- messages and interrupts, written by whichever replica took the request
-- and delivered by the one holding the execution.
CREATE TABLE execution_inputs (
    execution_id TEXT NOT NULL,
    seq          BIGINT NOT NULL,
    kind         TEXT NOT NULL,
    text         TEXT NOT NULL,
    sender       TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    delivered_at TIMESTAMPTZ,
    PRIMARY KEY (execution_id, seq)
);
