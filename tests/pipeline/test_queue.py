"""Queue: idempotent migrations and partition rotation (finished partitions dropped, busy ones kept)."""

from __future__ import annotations

import httpx
from pipeline_helpers import WRITE_KEY, pipeline_config, sql, track, wait_until, webhook

from pipeline.queue.db import migrate, queries


def test_migrations_apply_once_and_named_queries_load(pg_dsn):
    assert migrate(pg_dsn) == [1, 2, 3, 20]  # 20: warehouse_loads (pipeline/warehouse)
    assert migrate(pg_dsn) == []
    assert sql(pg_dsn, "SELECT version FROM sluice_schema_migrations ORDER BY 1") == [(1,), (2,), (3,), (20,)]
    q = queries()
    assert "gateway_copy" in q and q["gateway_copy"].startswith("COPY gateway_jobs")


def shrink_partitions(dsn, size=10):
    migrate(dsn)
    sql(
        dsn,
        "UPDATE sluice_queue_settings SET value = %s "
        "WHERE name IN ('gateway_partition_size', 'delivery_partition_size')",
        (size,),
    )
    sql(dsn, "UPDATE sluice_queue_settings SET value = 3 WHERE name = 'partitions_ahead'")
    for (name,) in sql(dsn, "SELECT name FROM sluice_partitions WHERE parent <> 'dedupe_keys'"):
        sql(dsn, f'DROP TABLE "{name}"')
    sql(dsn, "DELETE FROM sluice_partitions WHERE parent <> 'dedupe_keys'")
    sql(
        dsn,
        "SELECT sluice_ensure_id_partitions('gateway_jobs', 'gateway_jobs_id_seq', 'gateway_partition_size')",
    )
    sql(
        dsn,
        "SELECT sluice_ensure_id_partitions('delivery_jobs', 'delivery_jobs_id_seq', "
        "'delivery_partition_size')",
    )


def partitions(dsn, parent):
    return sql(dsn, "SELECT lo, hi FROM sluice_partitions WHERE parent = %s ORDER BY lo", (parent,))


def test_finished_partitions_are_dropped_and_busy_ones_kept(start_pipeline, sink, pg_dsn):
    shrink_partitions(pg_dsn)
    sink.respond(500, match=lambda path, body: body.get("userId") == "stuck")
    p = start_pipeline(pipeline_config([webhook("hook", sink.url())]))
    sent = 0
    for r in range(6):
        batch = [track(f"u{i % 4}", r * 10 + i) for i in range(7)]
        if r == 1:
            batch[0] = track("stuck", 1)
        resp = httpx.post(f"{p.url}/v1/batch", json={"batch": batch}, auth=(WRITE_KEY, ""))
        assert resp.status_code == 200, resp.text
        sent += len(batch)
    wait_until(lambda: sink.delivered_count() >= sent - 1, timeout=60)
    wait_until(
        lambda: sql(pg_dsn, "SELECT count(*) FROM delivery_jobs WHERE state = 'succeeded'")[0][0] == sent - 1
    )
    stuck_id = sql(pg_dsn, "SELECT id FROM delivery_jobs WHERE user_key = 'stuck'")[0][0]
    cursor = sql(pg_dsn, "SELECT last_id FROM processor_cursor")[0][0]
    # Ids may have gaps (a COPY retried after creating a missing partition burns sequence values).
    assert cursor == sql(pg_dsn, "SELECT last_value FROM gateway_jobs_id_seq")[0][0] >= sent
    sql(pg_dsn, "SELECT sluice_drop_finished_partitions(3600)")
    # Gateway partitions wholly below the processor cursor are gone (no row-by-row DELETE).
    assert all(hi > cursor for _, hi in partitions(pg_dsn, "gateway_jobs"))
    # Delivery partitions: only the one holding the unfinished job (and those still open) remain.
    left = partitions(pg_dsn, "delivery_jobs")
    assert any(lo <= stuck_id < hi for lo, hi in left)
    dj_last = sql(pg_dsn, "SELECT last_value FROM delivery_jobs_id_seq")[0][0]
    assert all(lo <= stuck_id < hi or hi > dj_last for lo, hi in left)
    assert len(left) < 4 + 3
    # The catalog agrees with the bookkeeping table.
    names = {r[0] for r in sql(pg_dsn, "SELECT name FROM sluice_partitions")}
    tables = {
        r[0]
        for r in sql(
            pg_dsn,
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE c.relkind = 'r'",
        )
    }
    assert names == tables
    # The unfinished job is still there, still retrying.
    assert sql(pg_dsn, "SELECT state FROM delivery_jobs WHERE id = %s", (stuck_id,))[0][0] == "failed"
    # And new events keep flowing after the rotation.
    resp = httpx.post(f"{p.url}/v1/track", json={"userId": "late", "event": "E"}, auth=(WRITE_KEY, ""))
    assert resp.status_code == 200
    wait_until(lambda: any(e.get("userId") == "late" for e in sink.delivered_events()))
