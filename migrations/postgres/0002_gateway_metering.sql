-- Adds the `budget_exceeded` status, the gateway's own metering (requests,
-- tokens, cost, counted from what upstream sent), and the cassette options
-- (record the model's side; replay it from a recorded execution).
ALTER TABLE executions DROP CONSTRAINT executions_status_check;
ALTER TABLE executions ADD CONSTRAINT executions_status_check CHECK (status IN (
    'queued', 'preparing', 'running', 'collecting',
    'succeeded', 'failed', 'timed_out', 'cancelled',
    'out_of_memory', 'budget_exceeded'));
ALTER TABLE executions
    ADD COLUMN gateway_requests                    BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN gateway_input_tokens                BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN gateway_output_tokens               BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN gateway_cache_creation_input_tokens BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN gateway_cache_read_input_tokens     BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN gateway_cost_usd                    DOUBLE PRECISION,
    ADD COLUMN record_model                        BOOLEAN NOT NULL DEFAULT FALSE,
    ADD COLUMN replay_from                         TEXT;
