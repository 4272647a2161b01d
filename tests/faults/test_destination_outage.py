"""Fault: one destination down for 60 s while a second, healthy destination shares the pipeline.

Promises under test:
- isolation: the healthy destination keeps up with the traffic while the other one fails (its throughput
  and delivery lag during the outage are measured and printed next to the figures from before it);
- no loss: when the failing destination comes back, everything is delivered to it;
- per-user order: the failing destination still receives each user's events in order.
"""

from __future__ import annotations

import time

import pytest
from support.load import LoadGenerator
from support.pipeline_proc import SluiceProcess, webhook_config
from support.sink import Sink, message_id_counts, order_violations

BEFORE_S = 8
OUTAGE_S = 60
AFTER_S = 5
RATE = 100  # events/s offered: well under one router's capacity even on a busy 2-core CI box
CAUGHT_UP_SLACK_S = 10  # a blocked healthy destination would be ~OUTAGE_S behind, not 10 s


def _window(times: list[float], lo: float, hi: float) -> float:
    """Events per second delivered in [lo, hi)."""
    return sum(1 for t in times if lo <= t < hi) / (hi - lo)


def _lags(sink: Sink, path: str, ack_times: dict[str, float], lo: float, hi: float) -> list[float]:
    """Ack-to-delivery lag (s) of events acknowledged in [lo, hi) and delivered to ``path``."""
    out = []
    seen = set()
    for rec in list(sink.deliveries):
        if rec.path != path:
            continue
        for e in rec.events():
            mid = e.get("messageId")
            at = ack_times.get(mid)
            if at is None or mid in seen or not (lo <= at < hi):
                continue
            seen.add(mid)
            out.append(rec.at - at)
    return out


def _pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


@pytest.mark.timeout(300)
def test_destination_down_60s_other_unaffected_all_delivered_in_order(pg_dsn, tmp_path, measurement):
    with Sink() as down_sink, Sink() as ok_sink:
        cfg = webhook_config(
            {"flaky": down_sink.url("/flaky"), "healthy": ok_sink.url("/healthy")},
            write_key="out-key",
            # short backoff so the test does not wait the production default (10 s doubling to 5 min)
            destination_overrides={"flaky": {"retry": {"initial_s": 1, "max_backoff_s": 4}}},
        )
        with SluiceProcess(cfg, tmp_path / "sluice", database_url=pg_dsn) as sluice:
            load = LoadGenerator(sluice.url, "out-key", users=50, batch_size=10, rate_per_s=RATE).start()
            try:
                t0 = time.monotonic()
                time.sleep(BEFORE_S)
                t_down = time.monotonic()
                down_sink.respond(503, seconds=OUTAGE_S, body='{"error":"down for maintenance"}')
                time.sleep(OUTAGE_S)
                t_up = time.monotonic()
                # healthy must have everything acknowledged until shortly before the outage ended
                ok_missing_at_end = ok_sink.wait_for_message_ids(
                    load.acked_before(t_up - CAUGHT_UP_SLACK_S), timeout=0.1, path="/healthy"
                )
                time.sleep(AFTER_S)
            finally:
                stats = load.stop()
            acked = load.acked()
            t_stop = time.monotonic()
            missing_flaky = down_sink.wait_for_message_ids(acked, timeout=120, path="/flaky")
            t_flaky_done = time.monotonic()
            missing_ok = ok_sink.wait_for_message_ids(acked, timeout=30, path="/healthy")
            sluice_alive = sluice.alive()

    ok_times = ok_sink.delivery_times("/healthy")
    ack_times = sorted(stats.ack_times.values())
    in_before = _window(ack_times, t0 + 2, t_down)
    in_during = _window(ack_times, t_down, t_up)
    thr_before = _window(ok_times, t0 + 2, t_down)
    thr_during = _window(ok_times, t_down, t_up)
    lag_before = _lags(ok_sink, "/healthy", stats.ack_times, t0 + 2, t_down)
    lag_during = _lags(ok_sink, "/healthy", stats.ack_times, t_down, t_up)
    flaky_events = down_sink.delivered_events("/flaky")
    violations = order_violations(flaky_events)
    flaky_counts = message_id_counts(flaky_events)
    ok_counts = message_id_counts(ok_sink.delivered_events("/healthy"))
    failed_attempts = sum(1 for r in down_sink.attempts if r.status >= 500)
    measurement(
        f"[destination-outage] acked={len(acked)} outage={OUTAGE_S}s "
        f"ingest_before={in_before:.0f} ev/s ingest_during={in_during:.0f} ev/s "
        f"healthy_throughput_before={thr_before:.0f} ev/s healthy_throughput_during={thr_during:.0f} ev/s "
        f"healthy_lag_before p50={_pct(lag_before, 0.5) * 1000:.0f}ms "
        f"p99={_pct(lag_before, 0.99) * 1000:.0f}ms "
        f"healthy_lag_during p50={_pct(lag_during, 0.5) * 1000:.0f}ms "
        f"p99={_pct(lag_during, 0.99) * 1000:.0f}ms "
        f"flaky_failed_attempts={failed_attempts} "
        f"flaky_drained_after_load_stop_s={t_flaky_done - t_stop:.1f} "
        f"flaky_dups={sum(c - 1 for c in flaky_counts.values() if c > 1)} "
        f"healthy_dups={sum(c - 1 for c in ok_counts.values() if c > 1)} "
        f"order_violations={len(violations)} client_statuses={dict(stats.statuses)}"
    )
    assert sluice_alive
    assert failed_attempts > 0, "the outage was not exercised"
    assert not ok_missing_at_end, f"healthy destination fell behind in the outage ({len(ok_missing_at_end)})"
    assert not missing_ok, f"{len(missing_ok)} events never reached the healthy destination"
    assert not missing_flaky, f"{len(missing_flaky)} events never reached the recovered destination"
    assert violations == [], f"per-user order broken on the recovered destination: {violations[:5]}"
    assert lag_during, "no healthy deliveries measured during the outage"
