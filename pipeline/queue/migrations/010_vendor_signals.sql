-- Runtime drift signals (pipeline/router/telemetry.py): vendor answers a connector was never certified
-- against, one row per (integration, destination, kind, signal), counted and timestamped.
CREATE TABLE IF NOT EXISTS vendor_signals (
    integration text        NOT NULL,
    destination text        NOT NULL,
    kind        text        NOT NULL,  -- deprecation | sunset | warning | status | shape
    signal      text        NOT NULL,  -- what identifies it, e.g. 'Sunset: <date>', 'events 410'
    detail      text        NOT NULL DEFAULT '',
    example     jsonb,                 -- one request/answer summary, secrets redacted
    count       bigint      NOT NULL DEFAULT 0,
    first_seen  timestamptz NOT NULL,
    last_seen   timestamptz NOT NULL,
    PRIMARY KEY (integration, destination, kind, signal)
);
CREATE INDEX IF NOT EXISTS vendor_signals_last_seen ON vendor_signals (last_seen DESC);
