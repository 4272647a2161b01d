"""Failures: logged per destination without flooding (issue 11, item 11), dead-letter reasons of
batched destinations written once, and per-user order kept while jobs flow past failing ones."""

from __future__ import annotations

import logging
import random

import pytest
from pipeline_helpers import (
    TEST_INTEGRATIONS,
    fast_retry,
    pipeline_config,
    send,
    sql,
    track,
    wait_until,
    webhook,
)
from support.sink import message_id_counts

from pipeline.router.failures import FailureLog


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_failure_log_reports_the_first_failure_at_once_then_sums_up_per_interval(caplog):
    caplog.set_level(logging.WARNING, logger="test.failures")
    clock = Clock()
    flog = FailureLog("hook", interval_s=10, clock=clock, logger=logging.getLogger("test.failures"))
    flog.tick()
    assert caplog.records == [], "nothing failed, nothing logged"
    flog.record("failed", "vendor answered 503")
    assert len(caplog.records) == 1
    assert "router[hook]" in caplog.records[0].getMessage() and "503" in caplog.records[0].getMessage()
    for i in range(500):  # a failing destination: hundreds of failures per interval
        clock.now += 0.01
        flog.record("aborted" if i % 5 == 0 else "failed", f"reason {i}")
    assert len(caplog.records) == 1, "no flood"
    clock.now += 10
    flog.tick()
    assert len(caplog.records) == 2
    line = caplog.records[1].getMessage()
    assert "400 failed (will be retried)" in line and "100 aborted" in line and "reason 499" in line
    clock.now += 30
    flog.tick()
    assert len(caplog.records) == 2, "quiet once the failures stop"


def test_batched_dead_letter_reasons_are_not_nested(start_pipeline, sink, pg_dsn):
    """The router used to prefix "gave up after ..." to a Result shared by every job of a batch, once per
    job: the reasons nested recursively."""
    sink.respond(503)
    dest = {
        "name": "strict",
        "integration": "strictbox",
        "config": {"url": sink.url("/s")},
        "retry": fast_retry(max_age_s=0, min_attempts=2, initial_s=0.05, max_backoff_s=0.1),
    }
    p = start_pipeline(pipeline_config([dest]), integrations_root=TEST_INTEGRATIONS)
    send(p, [track(f"u{i}", 1, revenue=1) for i in range(6)])
    wait_until(lambda: sql(pg_dsn, "SELECT count(*) FROM dead_letters")[0][0] == 6, timeout=60)
    reasons = [r[0] for r in sql(pg_dsn, "SELECT reason FROM dead_letters")]
    assert all(r.count("gave up after") == 1 and r.startswith("gave up after 2 attempts") for r in reasons)
    assert max(len(r) for r in reasons) < 400


@pytest.mark.parametrize("kind", ["chains", "batches"])
def test_order_and_exactly_one_delivery_with_random_vendor_failures(start_pipeline, sink, pg_dsn, kind):
    rnd = random.Random(11)
    sink.respond(500, match=lambda path, body: rnd.random() < 0.25)
    if kind == "chains":
        dest = webhook("hook", sink.url("/s"), concurrency=4, batch_size=10)
    else:
        dest = {
            "name": "strict",
            "integration": "strictbox",
            "config": {"url": sink.url("/s")},
            "retry": fast_retry(),
            "batch_size": 10,
        }
    dest["retry"] = fast_retry(initial_s=0.05, max_backoff_s=0.2)
    root = TEST_INTEGRATIONS if kind == "batches" else None
    p = start_pipeline(pipeline_config([dest]), integrations_root=root)
    events = [track(f"u{u}", s, revenue=1) for s in range(1, 13) for u in range(6)]
    for i in range(0, len(events), 12):  # in several requests, so reads interleave with deliveries
        send(p, events[i : i + 12])
    wait_until(lambda: len(message_id_counts(sink.delivered_events("/s"))) == len(events), timeout=90)
    delivered = sink.delivered_events("/s")
    assert [m for m, n in message_id_counts(delivered).items() if n > 1] == []
    for u in range(6):
        firsts = []
        for e in delivered:
            if e["userId"] == f"u{u}" and e["messageId"] not in firsts:
                firsts.append(e["messageId"])
        assert firsts == [f"u{u}-{s}" for s in range(1, 13)], f"u{u} out of order: {firsts}"
