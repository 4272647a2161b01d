-- Named queries used by the pipeline. Python loads them by name (see pipeline/queue/db.py) and
-- never builds SQL by string concatenation. Parameters are psycopg named placeholders.

-- name: migrations_table
CREATE TABLE IF NOT EXISTS sluice_schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- name: migrations_lock
SELECT pg_advisory_xact_lock(hashtext('sluice.migrations'));

-- name: migrations_applied
SELECT version FROM sluice_schema_migrations ORDER BY version;

-- name: migration_record
INSERT INTO sluice_schema_migrations (version, name) VALUES (%(version)s, %(name)s);

-- name: ping
SELECT 1;

-- name: try_leader_lock
SELECT pg_try_advisory_lock(hashtext(%(key)s));

-- name: gateway_commit_lock
-- Serialises gateway commits so ids become visible in id order (the processor reads by id cursor).
SELECT pg_advisory_xact_lock(hashtext('sluice.gateway.commit'));

-- name: gateway_copy
COPY gateway_jobs (source, event) FROM STDIN;

-- name: ensure_gateway_partitions
SELECT sluice_ensure_id_partitions('gateway_jobs', 'gateway_jobs_id_seq', 'gateway_partition_size', %(extra)s);

-- name: ensure_delivery_partitions
SELECT sluice_ensure_id_partitions('delivery_jobs', 'delivery_jobs_id_seq', 'delivery_partition_size', %(extra)s);

-- name: ensure_dedupe_partitions
SELECT sluice_ensure_dedupe_partitions();

-- name: drop_finished_partitions
SELECT sluice_drop_finished_partitions(%(dedupe_window_s)s);

-- name: set_lock_timeout
SET LOCAL lock_timeout = '200ms';

-- name: processor_cursor
SELECT last_id FROM processor_cursor WHERE name = 'processor';

-- name: processor_read
-- The event as text: the processor parses it itself, so one row Python cannot read (a number with
-- thousands of digits) is isolated like any other bad event instead of failing the whole fetch.
SELECT id, source, event::text FROM gateway_jobs WHERE id > %(after)s ORDER BY id LIMIT %(limit)s;

-- name: processor_advance
UPDATE processor_cursor SET last_id = %(to)s, updated_at = now(), failing_since = NULL,
       isolated = isolated + %(isolated)s
 WHERE name = 'processor' AND last_id = %(from)s;

-- name: processor_failed
UPDATE processor_cursor SET failing_since = coalesce(failing_since, now()), last_error = %(error)s,
       last_error_at = now()
 WHERE name = 'processor';

-- name: processor_health
-- What /health says about the processor: unprocessed gateway jobs, the age of the oldest one, and
-- whether hand-offs are failing.
SELECT (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM gateway_jobs_id_seq) - c.last_id AS backlog,
       coalesce(extract(epoch FROM now() - (SELECT g.received_at FROM gateway_jobs g
                                              WHERE g.id > c.last_id ORDER BY g.id LIMIT 1)), 0)::float8 AS lag_s,
       extract(epoch FROM now() - c.failing_since)::float8 AS failing_for_s,
       c.last_error, c.last_error_at, c.isolated
  FROM processor_cursor c
 WHERE c.name = 'processor';

-- name: dedupe_seen
-- ids arrive as one JSON array (much cheaper to pass from Python than a text[] of thousands).
SELECT DISTINCT message_id FROM dedupe_keys
 WHERE message_id = ANY(ARRAY(SELECT jsonb_array_elements_text(%(ids)s::jsonb)))
   AND seen_at > now() - make_interval(secs => %(window_s)s);

-- name: dedupe_insert
INSERT INTO dedupe_keys (message_id, bucket)
SELECT m, floor(extract(epoch FROM now()) / (SELECT value FROM sluice_queue_settings WHERE name = 'dedupe_bucket_s'))
  FROM jsonb_array_elements_text(%(ids)s::jsonb) AS m;

-- name: delivery_copy
COPY delivery_jobs (destination, user_key, message_id, gateway_job_id, event, requests) FROM STDIN;

-- name: isolate_dead_letters
-- One gateway job the processor cannot hand off, dead-lettered for each of its destinations with the
-- event exactly as stored (copied in SQL: it may be the very thing Python cannot read or write back).
INSERT INTO dead_letters (stage, gateway_job_id, destination, user_key, message_id, event, reason)
SELECT 'transform', g.id, d, %(user)s, %(message_id)s, g.event, %(reason)s
  FROM gateway_jobs g, unnest(%(destinations)s::text[]) AS d
 WHERE g.id = %(gateway_id)s;

-- name: transform_dead_letters
INSERT INTO dead_letters (stage, gateway_job_id, destination, user_key, message_id, event, reason)
SELECT 'transform', g, d, u, m, e::jsonb, r
  FROM unnest(%(gateway_ids)s::bigint[], %(destinations)s::text[], %(users)s::text[], %(message_ids)s::text[],
              %(events)s::text[], %(reasons)s::text[]) AS t(g, d, u, m, e, r);

-- name: router_fresh
-- The next window of pending jobs of the destination after the shard's cursor (all shards: the
-- existing (destination, id) index serves it), flagged `mine` for this shard's users. Only this
-- shard's rows carry their payload; the others only let the cursor move past them, so a shard with
-- few users never rescans the other shards' backlog. With one shard every row is `mine`.
SELECT id, user_key, CASE WHEN mine THEN requests::text END AS requests,
       CASE WHEN mine AND requests IS NULL THEN event::text END AS event, attempts, first_attempt_at, mine
  FROM (SELECT id, user_key, requests, event, attempts, first_attempt_at,
               sluice_user_shard(user_key, %(shards)s) = %(shard)s AS mine
          FROM delivery_jobs
         WHERE destination = %(destination)s AND state = 'pending' AND id > %(after)s
         ORDER BY id LIMIT %(scan)s) w
 ORDER BY id;

-- name: router_backlog
-- Pending jobs, below the fresh cursor, of users whose earlier failed job has just been resolved.
SELECT id, user_key, requests::text, CASE WHEN requests IS NULL THEN event::text END AS event, attempts,
       first_attempt_at
  FROM delivery_jobs
 WHERE destination = %(destination)s AND state = 'pending' AND user_key = ANY(%(users)s) AND id <= %(upto)s
   AND sluice_user_shard(user_key, %(shards)s) = %(shard)s
 ORDER BY id LIMIT %(limit)s;

-- name: router_retry_heads
-- Per user of the shard, the earliest failed job, if it is due. Later failed jobs of the same user
-- wait their turn.
SELECT * FROM (
    SELECT DISTINCT ON (user_key) id, user_key, requests::text,
           CASE WHEN requests IS NULL THEN event::text END AS event,
           attempts, first_attempt_at, next_attempt_at
      FROM delivery_jobs
     WHERE destination = %(destination)s AND state = 'failed'
       AND sluice_user_shard(user_key, %(shards)s) = %(shard)s
     ORDER BY user_key, id
) heads
 WHERE next_attempt_at <= now()
 ORDER BY id LIMIT %(limit)s;

-- name: router_retry_due
-- Unordered destinations: every due failed job of the shard.
SELECT id, user_key, requests::text, CASE WHEN requests IS NULL THEN event::text END AS event, attempts,
       first_attempt_at
  FROM delivery_jobs
 WHERE destination = %(destination)s AND state = 'failed' AND next_attempt_at <= now()
   AND sluice_user_shard(user_key, %(shards)s) = %(shard)s
 ORDER BY id LIMIT %(limit)s;

-- name: router_blocked_users
SELECT DISTINCT user_key FROM delivery_jobs
 WHERE destination = %(destination)s AND state = 'failed'
   AND sluice_user_shard(user_key, %(shards)s) = %(shard)s;

-- name: router_next_due
SELECT min(next_attempt_at) FROM delivery_jobs WHERE destination = %(destination)s AND state = 'failed';

-- name: router_shard_lock
-- Session advisory locks, two-key form (destination key, shard): shard k >= 0 is held exclusively by
-- the process delivering it; -1 is held shared by every process able to deliver the destination (so
-- processes can count each other and take a fair share). All are released when the session ends.
SELECT pg_try_advisory_lock(hashtext('sluice.router:' || %(destination)s), %(shard)s);

-- name: router_shard_unlock
SELECT pg_advisory_unlock(hashtext('sluice.router:' || %(destination)s), %(shard)s);

-- name: router_member_lock
SELECT pg_try_advisory_lock_shared(hashtext('sluice.router:' || %(destination)s), -1);

-- name: router_members
-- Sessions (processes) currently able to deliver the destination, in this database.
SELECT count(DISTINCT pid) FROM pg_locks
 WHERE locktype = 'advisory' AND granted AND objsubid = 2
   AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
   AND classid = hashtext('sluice.router:' || %(destination)s)::oid AND objid = (-1)::oid;

-- name: router_shard_holders
-- Which session holds which shard of the destination (for inspection and tests).
SELECT objid::bigint AS shard, pid FROM pg_locks
 WHERE locktype = 'advisory' AND granted AND objsubid = 2 AND mode = 'ExclusiveLock'
   AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
   AND classid = hashtext('sluice.router:' || %(destination)s)::oid AND objid <> (-1)::oid
 ORDER BY 1;

-- name: router_update
-- One statement records every outcome of a round.
UPDATE delivery_jobs j
   SET state = u.state,
       attempts = u.attempts,
       next_attempt_at = u.next_at,
       first_attempt_at = coalesce(j.first_attempt_at, u.attempted_at),
       last_attempt_at = coalesce(u.attempted_at, j.last_attempt_at),  -- NULL: deferred, not attempted
       last_status = u.status,
       last_error = u.error
  FROM unnest(%(ids)s::bigint[], %(states)s::text[], %(attempts)s::int[], %(next_at)s::timestamptz[],
              %(attempted_at)s::timestamptz[], %(statuses)s::int[], %(errors)s::text[])
       AS u(id, state, attempts, next_at, attempted_at, status, error)
 WHERE j.id = u.id;

-- name: router_succeeded
-- The common case of router_update, cheaper to send: jobs delivered by the same answer (one batch, or
-- several requests answered alike), as one array literal of ids.
UPDATE delivery_jobs
   SET state = 'succeeded',
       attempts = %(attempts)s,
       next_attempt_at = %(attempted_at)s,
       first_attempt_at = coalesce(first_attempt_at, %(attempted_at)s),
       last_attempt_at = %(attempted_at)s,
       last_status = %(status)s,
       last_error = NULL
 WHERE id = ANY(%(ids)s::bigint[]);

-- name: router_dead_letters
INSERT INTO dead_letters (stage, job_id, gateway_job_id, destination, user_key, message_id, event,
                          last_request, last_status, last_response, reason, attempts)
SELECT 'delivery', j.id, j.gateway_job_id, j.destination, j.user_key, j.message_id, j.event,
       u.request::jsonb, u.status, u.response, u.reason, j.attempts
  FROM unnest(%(ids)s::bigint[], %(requests)s::text[], %(statuses)s::int[], %(responses)s::text[],
              %(reasons)s::text[]) AS u(id, request, status, response, reason)
  JOIN delivery_jobs j ON j.id = u.id
 WHERE NOT EXISTS (SELECT 1 FROM dead_letters d WHERE d.job_id = u.id)
 ORDER BY j.id;

-- name: dlq_list
SELECT id, stage, job_id, gateway_job_id, destination, user_key, message_id, last_status, reason, attempts,
       created_at, replayed_at
  FROM dead_letters
 WHERE (%(destination)s::text IS NULL OR destination = %(destination)s)
   AND (%(since)s::timestamptz IS NULL OR created_at >= %(since)s)
   AND (%(reason)s::text IS NULL OR reason ILIKE '%%' || %(reason)s || '%%')
   AND (%(include_replayed)s OR replayed_at IS NULL)
 ORDER BY coalesce(gateway_job_id, 0), coalesce(job_id, 0), id LIMIT %(limit)s;  -- event order, as replay

-- name: dlq_show
SELECT * FROM dead_letters WHERE id = %(id)s;

-- name: dlq_replay_select
SELECT id FROM dead_letters
 WHERE replayed_at IS NULL
   AND (%(ids)s::bigint[] IS NULL OR id = ANY(%(ids)s))
   AND (%(destination)s::text IS NULL OR destination = %(destination)s)
   AND (%(since)s::timestamptz IS NULL OR created_at >= %(since)s)
   AND (%(reason)s::text IS NULL OR reason ILIKE '%%' || %(reason)s || '%%')
 ORDER BY coalesce(gateway_job_id, 0), coalesce(job_id, 0), id
 FOR UPDATE;

-- name: dlq_replay_destinations
SELECT destination, count(*) FROM dead_letters WHERE id = ANY(%(ids)s) GROUP BY destination ORDER BY 1;

-- name: dlq_replay_insert
-- Re-enqueue as new delivery jobs, in original order; requests NULL so the current connector re-maps.
WITH src AS (
    SELECT d.*, o.ord FROM unnest(%(ids)s::bigint[]) WITH ORDINALITY AS o(id, ord)
      JOIN dead_letters d ON d.id = o.id
), ins AS (
    INSERT INTO delivery_jobs (destination, user_key, message_id, gateway_job_id, event, requests, replay_of)
    SELECT destination, user_key, message_id, gateway_job_id, event, NULL, id FROM src ORDER BY ord
    RETURNING id, replay_of
)
UPDATE dead_letters d SET replayed_at = now(), replay_job_id = ins.id FROM ins WHERE d.id = ins.replay_of
RETURNING d.id, ins.id AS job_id;

-- name: queue_stats
SELECT destination, state, count(*) AS n FROM delivery_jobs GROUP BY destination, state ORDER BY 1, 2;

-- name: vendor_signals_upsert
-- Runtime drift signals, one statement per flush (keys are unique within a flush).
INSERT INTO vendor_signals AS s (integration, destination, kind, signal, detail, example, count, first_seen,
                                 last_seen)
SELECT * FROM unnest(%(integrations)s::text[], %(destinations)s::text[], %(kinds)s::text[],
                     %(signals)s::text[], %(details)s::text[], %(examples)s::jsonb[], %(counts)s::bigint[],
                     %(firsts)s::timestamptz[], %(lasts)s::timestamptz[])
ON CONFLICT (integration, destination, kind, signal) DO UPDATE
   SET count = s.count + EXCLUDED.count,
       first_seen = LEAST(s.first_seen, EXCLUDED.first_seen),
       last_seen = GREATEST(s.last_seen, EXCLUDED.last_seen);

-- name: vendor_signals_list
SELECT integration, destination, kind, signal, detail, example, count, first_seen, last_seen
  FROM vendor_signals
 WHERE (%(name)s::text IS NULL OR integration = %(name)s OR destination = %(name)s)
 ORDER BY last_seen DESC, integration, destination, kind, signal
 LIMIT %(limit)s;
