-- Warehouse loads (pipeline/warehouse): one row per load of a warehouse destination.
--
-- Written BEFORE the load starts, with the exact delivery jobs its dlt load package holds, and
-- finished in the same transaction that marks those jobs succeeded. After a crash the loader finds
-- the open row and finishes that same package instead of building a new one from other jobs: the
-- bookkeeping that makes warehouse loads exactly-once (see pipeline/warehouse/loader.py).
CREATE TABLE warehouse_loads (
    id              bigserial PRIMARY KEY,
    destination     text NOT NULL,
    load_id         text NOT NULL,
    job_ids         bigint[] NOT NULL,
    first_job_id    bigint NOT NULL,
    last_job_id     bigint NOT NULL,
    events          integer NOT NULL,
    rows            integer NOT NULL,
    tables          integer NOT NULL,
    tables_added    text[] NOT NULL DEFAULT '{}',
    columns_added   text[] NOT NULL DEFAULT '{}',
    discards        integer NOT NULL DEFAULT 0,
    state           text NOT NULL DEFAULT 'loading'
                    CHECK (state IN ('loading', 'done', 'aborted', 'lost')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    oldest_event_at timestamptz,
    started_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    seconds         double precision
);
CREATE UNIQUE INDEX warehouse_loads_package ON warehouse_loads (destination, load_id);
CREATE INDEX warehouse_loads_open ON warehouse_loads (destination, id) WHERE state = 'loading';
CREATE INDEX warehouse_loads_recent ON warehouse_loads (destination, id DESC);
