-- Sluice queue schema, version 1.
--
-- Two job stages (gateway_jobs: what clients sent; delivery_jobs: one row per event per destination),
-- range-partitioned by id so that finished partitions are DROPPED, never DELETEd row by row: the
-- queue does not bloat however long it runs. Every table is plain SQL-inspectable.

CREATE TABLE sluice_queue_settings (
    name  text PRIMARY KEY,
    value bigint NOT NULL
);
INSERT INTO sluice_queue_settings (name, value) VALUES
    ('gateway_partition_size', 1000000),
    ('delivery_partition_size', 1000000),
    ('dedupe_bucket_s', 600),
    ('partitions_ahead', 2);

-- Every partition the maintenance task created, with its bounds, so dropping needs no catalog parsing.
CREATE TABLE sluice_partitions (
    parent     text NOT NULL,
    name       text PRIMARY KEY,
    lo         bigint NOT NULL,
    hi         bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Stage 1: events exactly as accepted by the gateway (already normalised: messageId, receivedAt, timestamp).
CREATE SEQUENCE gateway_jobs_id_seq;
CREATE TABLE gateway_jobs (
    id          bigint NOT NULL DEFAULT nextval('gateway_jobs_id_seq'),
    source      text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    event       jsonb NOT NULL,
    PRIMARY KEY (id)
) PARTITION BY RANGE (id);

-- The processor's read position in gateway_jobs; advanced in the same transaction that writes delivery jobs.
CREATE TABLE processor_cursor (
    name       text PRIMARY KEY,
    last_id    bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO processor_cursor (name, last_id) VALUES ('processor', 0);

-- messageIds seen within the dedupe window, partitioned by time bucket and dropped when out of the window.
CREATE TABLE dedupe_keys (
    message_id text NOT NULL,
    bucket     bigint NOT NULL,
    seen_at    timestamptz NOT NULL DEFAULT now()
) PARTITION BY RANGE (bucket);
CREATE INDEX dedupe_keys_message_id ON dedupe_keys (message_id);

-- Stage 2: one row per (event, destination). requests holds VendorRequest.to_wire() dicts; NULL means
-- "map at delivery time" (used by DLQ replay, so a fixed config or connector applies).
-- state: pending (never tried) -> succeeded | failed (retry later) -> ... -> succeeded | aborted.
CREATE SEQUENCE delivery_jobs_id_seq;
CREATE TABLE delivery_jobs (
    id               bigint NOT NULL DEFAULT nextval('delivery_jobs_id_seq'),
    destination      text NOT NULL,
    user_key         text NOT NULL,
    message_id       text,
    gateway_job_id   bigint,
    event            jsonb NOT NULL,
    requests         jsonb,
    state            text NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'succeeded', 'failed', 'aborted', 'filtered')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    first_attempt_at timestamptz,
    last_attempt_at  timestamptz,
    last_status      integer,
    last_error       text,
    replay_of        bigint,
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (id)
) PARTITION BY RANGE (id);
CREATE INDEX delivery_jobs_active ON delivery_jobs (destination, id) WHERE state IN ('pending', 'failed');
CREATE INDEX delivery_jobs_failed_user ON delivery_jobs (destination, user_key, id) WHERE state = 'failed';
CREATE INDEX delivery_jobs_pending_user ON delivery_jobs (destination, user_key, id) WHERE state = 'pending';

-- Events that will not be delivered without a human: mapping errors (stage 'transform', job_id NULL)
-- and aborted deliveries (stage 'delivery'), with what was sent, what came back, and why.
CREATE TABLE dead_letters (
    id             bigserial PRIMARY KEY,
    stage          text NOT NULL CHECK (stage IN ('transform', 'delivery')),
    job_id         bigint,
    gateway_job_id bigint,
    destination    text NOT NULL,
    user_key       text NOT NULL,
    message_id     text,
    event          jsonb NOT NULL,
    last_request   jsonb,
    last_status    integer,
    last_response  text,
    reason         text NOT NULL,
    attempts       integer NOT NULL DEFAULT 0,
    created_at     timestamptz NOT NULL DEFAULT now(),
    replayed_at    timestamptz,
    replay_job_id  bigint
);
CREATE INDEX dead_letters_destination ON dead_letters (destination, created_at);

-- Create the id-range partitions of `parent` from the one holding the sequence's current value up to
-- `partitions_ahead` more beyond the one that will hold `extra` further ids (a writer about to insert
-- `extra` rows passes it after a "no partition" error). Idempotent and safe to race.
CREATE FUNCTION sluice_ensure_id_partitions(parent text, seq text, size_key text, extra bigint DEFAULT 0)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    psize bigint;
    ahead bigint;
    cur bigint;
    first_no bigint;
    pname text;
    made integer := 0;
BEGIN
    SELECT value INTO psize FROM sluice_queue_settings WHERE name = size_key;
    SELECT value INTO ahead FROM sluice_queue_settings WHERE name = 'partitions_ahead';
    EXECUTE format('SELECT last_value FROM %I', seq) INTO cur;
    first_no := cur / psize;
    FOR n IN first_no .. (cur + extra) / psize + ahead LOOP
        pname := format('%s_p%s', parent, lpad(n::text, 10, '0'));
        CONTINUE WHEN to_regclass(pname) IS NOT NULL;
        CONTINUE WHEN EXISTS (SELECT 1 FROM sluice_partitions p WHERE p.name = pname);
        BEGIN
            EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%s) TO (%s)',
                           pname, parent, n * psize, (n + 1) * psize);
            INSERT INTO sluice_partitions (parent, name, lo, hi) VALUES (parent, pname, n * psize, (n + 1) * psize);
            made := made + 1;
        EXCEPTION WHEN duplicate_table OR unique_violation OR invalid_object_definition THEN
            NULL;
        END;
    END LOOP;
    RETURN made;
END $$;

CREATE FUNCTION sluice_ensure_dedupe_partitions() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    bsize bigint;
    b bigint;
    pname text;
    made integer := 0;
BEGIN
    SELECT value INTO bsize FROM sluice_queue_settings WHERE name = 'dedupe_bucket_s';
    b := floor(extract(epoch FROM now()) / bsize)::bigint;
    FOR n IN b .. b + 2 LOOP
        pname := format('dedupe_keys_b%s', n);
        CONTINUE WHEN to_regclass(pname) IS NOT NULL;
        BEGIN
            EXECUTE format('CREATE TABLE %I PARTITION OF dedupe_keys FOR VALUES FROM (%s) TO (%s)',
                           pname, n, n + 1);
            INSERT INTO sluice_partitions (parent, name, lo, hi) VALUES ('dedupe_keys', pname, n, n + 1);
            made := made + 1;
        EXCEPTION WHEN duplicate_table OR unique_violation OR invalid_object_definition THEN
            NULL;
        END;
    END LOOP;
    RETURN made;
END $$;

-- Drop partitions whose every row is finished. A partition is locked first (NOWAIT) and only then
-- checked, so a writer that is still committing into it makes us skip it rather than lose its rows.
CREATE FUNCTION sluice_drop_finished_partitions(dedupe_window_s bigint) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    p record;
    cursor_id bigint;
    gw_last bigint;
    dj_last bigint;
    bsize bigint;
    busy boolean;
    dropped integer := 0;
BEGIN
    SELECT last_id INTO cursor_id FROM processor_cursor WHERE name = 'processor';
    SELECT last_value INTO gw_last FROM gateway_jobs_id_seq;
    SELECT last_value INTO dj_last FROM delivery_jobs_id_seq;
    SELECT value INTO bsize FROM sluice_queue_settings WHERE name = 'dedupe_bucket_s';
    FOR p IN SELECT * FROM sluice_partitions ORDER BY parent, lo LOOP
        BEGIN
            IF p.parent = 'gateway_jobs' THEN
                CONTINUE WHEN NOT (p.hi <= cursor_id + 1 AND p.hi <= gw_last);
                EXECUTE format('LOCK TABLE %I IN ACCESS EXCLUSIVE MODE NOWAIT', p.name);
                SELECT last_id INTO cursor_id FROM processor_cursor WHERE name = 'processor';
                CONTINUE WHEN NOT (p.hi <= cursor_id + 1);
            ELSIF p.parent = 'delivery_jobs' THEN
                CONTINUE WHEN NOT (p.hi <= dj_last);
                EXECUTE format('LOCK TABLE %I IN ACCESS EXCLUSIVE MODE NOWAIT', p.name);
                EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I WHERE state IN (''pending'', ''failed''))', p.name)
                    INTO busy;
                CONTINUE WHEN busy;
            ELSIF p.parent = 'dedupe_keys' THEN
                CONTINUE WHEN NOT (p.hi * bsize < extract(epoch FROM now()) - dedupe_window_s);
                EXECUTE format('LOCK TABLE %I IN ACCESS EXCLUSIVE MODE NOWAIT', p.name);
            ELSE
                CONTINUE;
            END IF;
            EXECUTE format('DROP TABLE %I', p.name);
            DELETE FROM sluice_partitions WHERE name = p.name;
            dropped := dropped + 1;
        EXCEPTION WHEN lock_not_available OR undefined_table THEN
            IF NOT EXISTS (SELECT 1 FROM pg_class WHERE relname = p.name) THEN
                DELETE FROM sluice_partitions WHERE name = p.name;
            END IF;
        END;
    END LOOP;
    RETURN dropped;
END $$;
