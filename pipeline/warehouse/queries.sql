-- Named queries of the warehouse loader (pipeline/warehouse); loaded like pipeline/queue/queries.sql.

-- name: lock
-- One loader per warehouse destination across every sluice process: a session advisory lock.
SELECT pg_try_advisory_lock(hashtext('sluice.warehouse:' || %(destination)s));

-- name: backlog
-- How much waits (up to one load's worth) and since when: decides whether a sync is due.
SELECT count(*), min(created_at)
  FROM (SELECT created_at FROM delivery_jobs
         WHERE destination = %(destination)s AND state IN ('pending', 'failed') AND next_attempt_at <= now()
         ORDER BY id LIMIT %(limit)s) w;

-- name: claim
SELECT id, event, created_at, attempts, first_attempt_at FROM delivery_jobs
 WHERE destination = %(destination)s AND state IN ('pending', 'failed') AND next_attempt_at <= now()
 ORDER BY id LIMIT %(limit)s;

-- name: open_loads
SELECT id, load_id, job_ids, attempts, next_attempt_at, started_at, events, rows, tables, discards,
       tables_added, columns_added, oldest_event_at
  FROM warehouse_loads WHERE destination = %(destination)s AND state = 'loading' ORDER BY id;

-- name: load_begin
INSERT INTO warehouse_loads (destination, load_id, job_ids, first_job_id, last_job_id, events, rows, tables,
                             tables_added, columns_added, discards, oldest_event_at)
VALUES (%(destination)s, %(load_id)s, %(job_ids)s, %(first_job_id)s, %(last_job_id)s, %(events)s, %(rows)s,
        %(tables)s, %(tables_added)s, %(columns_added)s, %(discards)s, %(oldest_event_at)s)
RETURNING id;

-- name: load_done
UPDATE warehouse_loads
   SET state = 'done', attempts = attempts + 1, finished_at = now(), seconds = %(seconds)s, last_error = NULL
 WHERE id = %(id)s;

-- name: load_retry
UPDATE warehouse_loads SET attempts = attempts + 1, next_attempt_at = %(next_at)s, last_error = %(error)s
 WHERE id = %(id)s;

-- name: load_end
-- aborted (dead-lettered) or lost (its package is gone; its jobs are loaded again by a new load).
UPDATE warehouse_loads SET state = %(state)s, finished_at = now(), last_error = %(error)s WHERE id = %(id)s;

-- name: jobs_done
UPDATE delivery_jobs
   SET state = 'succeeded', attempts = attempts + 1, first_attempt_at = coalesce(first_attempt_at, now()),
       last_attempt_at = now(), last_status = 200, last_error = NULL
 WHERE id = ANY(%(ids)s) AND state IN ('pending', 'failed');

-- name: jobs_retry
UPDATE delivery_jobs
   SET state = 'failed', attempts = attempts + 1, first_attempt_at = coalesce(first_attempt_at, now()),
       last_attempt_at = now(), next_attempt_at = %(next_at)s, last_status = NULL, last_error = %(error)s
 WHERE id = ANY(%(ids)s) AND state IN ('pending', 'failed');

-- name: jobs_release
-- A lost load's jobs: due again now, so the next load takes them.
UPDATE delivery_jobs SET next_attempt_at = now() WHERE id = ANY(%(ids)s) AND state IN ('pending', 'failed');

-- name: jobs_abort
UPDATE delivery_jobs j
   SET state = 'aborted', attempts = j.attempts + 1, first_attempt_at = coalesce(j.first_attempt_at, now()),
       last_attempt_at = now(), last_status = NULL, last_error = u.reason
  FROM unnest(%(ids)s::bigint[], %(reasons)s::text[]) AS u(id, reason)
 WHERE j.id = u.id AND j.state IN ('pending', 'failed');

-- name: dead_letters
INSERT INTO dead_letters (stage, job_id, gateway_job_id, destination, user_key, message_id, event, reason, attempts)
SELECT 'delivery', j.id, j.gateway_job_id, j.destination, j.user_key, j.message_id, j.event, u.reason, j.attempts
  FROM unnest(%(ids)s::bigint[], %(reasons)s::text[]) AS u(id, reason)
  JOIN delivery_jobs j ON j.id = u.id
 WHERE NOT EXISTS (SELECT 1 FROM dead_letters d WHERE d.job_id = u.id)
 ORDER BY j.id;

-- name: status_last
SELECT DISTINCT ON (destination) destination, id, load_id, state, events, rows, tables, discards,
       tables_added, columns_added, attempts, last_error, started_at, finished_at, seconds, oldest_event_at
  FROM warehouse_loads WHERE destination = ANY(%(destinations)s)
 ORDER BY destination, id DESC;

-- name: status_totals
SELECT destination, count(*) FILTER (WHERE state = 'done') AS loads,
       coalesce(sum(events) FILTER (WHERE state = 'done'), 0) AS events,
       coalesce(sum(rows) FILTER (WHERE state = 'done'), 0) AS rows,
       coalesce(sum(discards) FILTER (WHERE state = 'done'), 0) AS discards,
       coalesce(sum(cardinality(tables_added)) FILTER (WHERE state = 'done'), 0) AS tables_added,
       coalesce(sum(cardinality(columns_added)) FILTER (WHERE state = 'done'), 0) AS columns_added,
       count(*) FILTER (WHERE state = 'aborted') AS aborted
  FROM warehouse_loads WHERE destination = ANY(%(destinations)s) GROUP BY destination;

-- name: status_backlog
SELECT destination, count(*) AS waiting, min(created_at) AS oldest
  FROM delivery_jobs WHERE destination = ANY(%(destinations)s) AND state IN ('pending', 'failed')
 GROUP BY destination;

-- name: status_dead_letters
SELECT destination, count(*) FROM dead_letters
 WHERE destination = ANY(%(destinations)s) AND replayed_at IS NULL GROUP BY destination;
