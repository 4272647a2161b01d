"""Fault: Postgres stopped for 10 s during load.

Promise under test: while the database is gone the gateway answers 503 with Retry-After (it never
acknowledges what it could not persist, and the process does not crash); when the database returns the
pipeline recovers by itself, and every acknowledged event is delivered.
The test owns a private Postgres cluster so stopping it cannot disturb other tests.
"""

from __future__ import annotations

import time

import pytest
from support.load import LoadGenerator
from support.pipeline_proc import SluiceProcess, webhook_config
from support.sink import Sink, message_id_counts

OUTAGE_S = 10


@pytest.mark.timeout(240)
def test_postgres_down_10s_gives_503_then_recovers_without_loss(private_postgres, tmp_path, measurement):
    dsn = private_postgres.start()
    with Sink() as sink:
        cfg = webhook_config({"pg-webhook": sink.url("/hook")}, write_key="pg-key")
        with SluiceProcess(cfg, tmp_path / "sluice", database_url=dsn) as sluice:
            load = LoadGenerator(sluice.url, "pg-key", users=20, batch_size=10, rate_per_s=500).start()
            try:
                time.sleep(3)
                acked_before = load.acked_count()
                t_down = time.monotonic()
                private_postgres.stop(mode="immediate")
                time.sleep(OUTAGE_S)
                acked_during = load.acked_count() - acked_before
                statuses_during = dict(load.stats.statuses)
                t_up = time.monotonic()
                private_postgres.start()
                pg_restart_s = time.monotonic() - t_up
                # keep the load on until the gateway acknowledges again (bounded), then a little more
                deadline = time.monotonic() + 60
                while load.stats.first_ack_after_refusal_at is None and time.monotonic() < deadline:
                    time.sleep(0.1)
                time.sleep(2)
            finally:
                stats = load.stop()
            alive = sluice.alive()
            acked = load.acked()
            missing = sink.wait_for_message_ids(acked, timeout=90, path="/hook")
            health = sluice.wait_healthy(timeout=10) is None

    counts = message_id_counts(sink.delivered_events("/hook"))
    recovery_s = (
        stats.first_ack_after_refusal_at - t_up if stats.first_ack_after_refusal_at is not None else None
    )
    first_refusal_s = stats.first_refusal_at - t_down if stats.first_refusal_at is not None else None
    measurement(
        f"[postgres-outage] acked_before={acked_before} acked_during_outage={acked_during} "
        f"acked_total={len(acked)} missing_acked={len(missing)} "
        f"duplicates={sum(c - 1 for c in counts.values() if c > 1)} statuses={dict(stats.statuses)} "
        f"client_errors={dict(stats.errors)} retry_after={sorted(set(stats.retry_after_values))[:3]} "
        f"first_503_after_stop_s={first_refusal_s} pg_restart_s={pg_restart_s:.2f} "
        f"first_ack_after_pg_start_s={recovery_s} process_alive={alive}"
    )
    assert alive, "sluice up crashed while Postgres was down"
    assert health
    assert statuses_during.get(503, 0) > 0, f"expected 503s while Postgres was down, got {statuses_during}"
    assert stats.retry_after_values, "503 answers must carry Retry-After"
    assert recovery_s is not None, "the gateway never acknowledged again after Postgres came back"
    assert not missing, f"{len(missing)} acknowledged events were lost, e.g. {sorted(missing)[:5]}"
