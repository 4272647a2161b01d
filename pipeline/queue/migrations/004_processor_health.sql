-- The processor's health, kept where every process can read it: /health is answered by the gateway
-- process, while the processor usually runs in the workers process (or in another sluice up).
--   failing_since  set when a hand-off transaction fails, cleared by the next successful one
--   last_error     what failed last (also kept after recovery, with its time)
--   isolated       events the processor could not hand off even alone, dead-lettered with the reason
ALTER TABLE processor_cursor
    ADD COLUMN failing_since timestamptz,
    ADD COLUMN last_error text,
    ADD COLUMN last_error_at timestamptz,
    ADD COLUMN isolated bigint NOT NULL DEFAULT 0;

-- Dedupe keys are now scoped to the source and to the messageId's JSON type (pipeline/processor/keys.py),
-- and long ones are hashed; keys written before this migration no longer match and age out with
-- their partitions, so the dedupe window restarts once, at the upgrade.
COMMENT ON TABLE dedupe_keys IS 'message_id holds keys.dedupe_key(source, messageId), not the raw messageId';
