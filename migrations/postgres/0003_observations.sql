-- What agentd observed and what the agent claimed, kept apart (issue 7): the
-- gateway's record of the conversation (answers, tool calls asked for, how the
-- last answer ended and its text), the agent's own report, and the files left
-- out of collection. JSON as text (jsonb refuses the \u0000 escapes agent text
-- may contain); absent means "not known".
ALTER TABLE executions
    ADD COLUMN conversation TEXT,
    ADD COLUMN claimed      TEXT,
    ADD COLUMN left_out     TEXT NOT NULL DEFAULT '[]';
