-- What agentd observed and what the agent claimed, kept apart (issue 7): the
-- gateway's record of the conversation (answers, tool calls asked for, how the
-- last answer ended and its text), the agent's own report, and the files left
-- out of collection. JSON text; absent means "not known".
ALTER TABLE executions ADD COLUMN conversation TEXT;
ALTER TABLE executions ADD COLUMN claimed TEXT;
ALTER TABLE executions ADD COLUMN left_out TEXT NOT NULL DEFAULT '[]';
