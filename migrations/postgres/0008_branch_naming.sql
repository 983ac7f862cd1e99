-- Branch naming (issue 11): the request's `agent_id`, `task_id` and branch
-- template, as one JSON object (`{"agent_id", "task_id", "branch_template"}`); NULL
-- for executions made before it, whose branch is `agent/<id>`.
ALTER TABLE executions ADD COLUMN naming TEXT;
