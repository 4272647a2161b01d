"""SIGTERM during load: ``sluice up`` drains and exits 0; after a restart nothing is lost and, unlike a
crash, nothing is delivered twice (a clean stop records every outcome before exiting)."""

from __future__ import annotations

import time

import pytest
from support.load import LoadGenerator
from support.pipeline_proc import SluiceProcess, webhook_config
from support.sink import Sink, message_id_counts, order_violations


@pytest.mark.timeout(180)
def test_sigterm_during_load_drains_without_loss_or_duplicates(request, pg_dsn, tmp_path, measurement):
    with Sink() as sink:
        cfg = webhook_config({"drain-webhook": sink.url("/hook")}, write_key="drain-key")
        sluice = SluiceProcess(cfg, tmp_path / "sluice", database_url=pg_dsn)
        request.addfinalizer(sluice.close)  # never leak the process, whatever happens below
        sluice.start()
        load = LoadGenerator(sluice.url, "drain-key", users=20, batch_size=20, rate_per_s=1000).start()
        try:
            time.sleep(3)
            t_term = time.monotonic()
            code = sluice.terminate(timeout=60)
            stop_s = time.monotonic() - t_term
            delivered_at_stop = sink.delivered_count("/hook")
            acked_at_stop = load.acked_count()
            time.sleep(0.5)
            sluice.start(timeout=60)
            time.sleep(1)
        finally:
            stats = load.stop()
        acked = load.acked()
        missing = sink.wait_for_message_ids(acked, timeout=120, path="/hook")
        time.sleep(1)
        delivered = sink.delivered_events("/hook")
        sluice.close()

    counts = message_id_counts(delivered)
    duplicates = sum(c - 1 for c in counts.values() if c > 1)
    violations = order_violations(delivered)
    measurement(
        f"[sigterm-drain] exit_code={code} stop_s={stop_s:.2f} acked_at_stop={acked_at_stop} "
        f"delivered_at_stop={delivered_at_stop} acked_total={len(acked)} missing_acked={len(missing)} "
        f"duplicates={duplicates} order_violations={len(violations)} client_statuses={dict(stats.statuses)}"
    )
    assert code == 0, f"sluice up exited {code} on SIGTERM:\n{sluice.log_tail()}"
    assert not missing, f"{len(missing)} acknowledged events were lost across a clean stop"
    assert duplicates == 0, f"a clean stop must not cause redelivery, got {duplicates} duplicates"
    assert violations == []
