"""One event the processor cannot hand off must never stop the others (issue 11, items 1 and 8).

The review stopped all delivery twice with a single event: an id too long for a btree row made the
processor's transaction fail, and the processor retried that batch for ever while the gateway kept
answering 200 and /health said ok. These tests feed such events in and check that everyone else's
events are delivered, the bad one is dead-lettered with its reason, and /health tells.
"""

from __future__ import annotations

import json
import os

import httpx
from pipeline_helpers import (
    WRITE_KEY,
    pipeline_config,
    send,
    sql,
    track,
    wait_until,
    webhook,
)

from pipeline.processor.keys import MAX_KEY_BYTES, bounded, dedupe_key


def test_long_keys_are_hashed_and_dedupe_keys_are_scoped_and_typed():
    assert bounded("user-1") == "user-1"
    long = os.urandom(2000).hex()
    assert bounded(long).startswith("sha256:") and bounded(long) == bounded(long)
    assert len(bounded(long)) < MAX_KEY_BYTES
    assert bounded(long) != bounded(long + "x")
    assert dedupe_key("web", "1") != dedupe_key("mobile", "1")
    assert dedupe_key("web", 1) != dedupe_key("web", "1")
    assert dedupe_key("a:s", "1") != dedupe_key("a", "s:1")


def test_an_event_with_an_id_too_long_for_an_index_row_does_not_block_others(start_pipeline, sink, pg_dsn):
    """A row written before the gateway limit existed (or with a raised one): 3 KB of random userId."""
    p = start_pipeline(pipeline_config([webhook("hook", sink.url())]))
    poison = {
        "type": "track",
        "userId": os.urandom(1500).hex(),
        "event": "E",
        "messageId": os.urandom(1500).hex(),
        "properties": {"seq": 0},
        "timestamp": "2024-01-01T00:00:00.000Z",
    }
    sql(pg_dsn, "INSERT INTO gateway_jobs (source, event) VALUES ('web', %s::jsonb)", (json.dumps(poison),))
    send(p, [track(f"user{i}", 1) for i in range(20)])
    wait_until(lambda: sink.delivered_count() >= 21, timeout=30)
    keys = [r[0] for r in sql(pg_dsn, "SELECT user_key FROM delivery_jobs ORDER BY id")]
    assert keys[0] == bounded(poison["userId"]) and keys[0].startswith("sha256:")
    assert sorted(keys[1:]) == sorted(f"user{i}" for i in range(20))
    delivered = {e["userId"] for e in sink.delivered_events()}
    assert poison["userId"] in delivered, "the event itself keeps its full userId"


def test_events_that_cannot_be_handed_off_are_isolated_and_dead_lettered(start_pipeline, sink, pg_dsn):
    """Numbers jsonb keeps exactly but Python cannot take back: 1e400 written with a fraction (Python
    reads infinity, which no JSON column stores) and an integer of 5000 digits (Python refuses to read
    it). Today's gateway refuses both (400); the rows stand for anything an older gateway, a raised
    limit or another writer let into the queue that the processor cannot hand off.
    """
    p = start_pipeline(
        pipeline_config([webhook("hook", sink.url("/hook")), webhook("other", sink.url("/other"))])
    )
    send(p, [track(f"user{i}", 1) for i in range(20)])
    for mid, number in (("bad-inf", "1" + "0" * 400 + ".5"), ("bad-digits", "1" + "0" * 5000)):
        text = json.dumps(
            {"type": "track", "userId": "mallory", "event": "E", "messageId": mid, "properties": {}}
        )
        sql(
            pg_dsn,
            "INSERT INTO gateway_jobs (source, event) VALUES ('web', %s::jsonb)",
            (text.replace('"properties": {}', f'"properties": {{"v": {number}}}'),),
        )
    send(p, [track(f"user{i}", 2) for i in range(20)])
    # Everyone else reaches both destinations, in order; the poisoned events reach neither.
    wait_until(
        lambda: sink.delivered_count("/hook") >= 40 and sink.delivered_count("/other") >= 40, timeout=30
    )
    query = (
        "SELECT destination, event->>'messageId', user_key, message_id, reason, length(event::text) "
        "FROM dead_letters ORDER BY id"
    )
    rows = wait_until(lambda: (r := sql(pg_dsn, query)) and len(r) == 4 and r)
    assert sorted((r[0], r[1]) for r in rows) == [
        ("hook", "bad-digits"),
        ("hook", "bad-inf"),
        ("other", "bad-digits"),
        ("other", "bad-inf"),
    ]
    for _dest, mid, user, message_id, reason, length in rows:
        assert reason.startswith("unprocessable:")
        if mid == "bad-inf":
            assert (user, message_id) == ("mallory", "bad-inf") and "Infinity" in reason
        else:
            assert user == "(unreadable)" and "cannot be read" in reason and "4300" in reason
            assert length > 5000, "the dead letter keeps the event exactly as it was stored"
    assert "mallory" not in {e["userId"] for e in sink.delivered_events("/hook")}
    assert sql(pg_dsn, "SELECT last_id, isolated, failing_since FROM processor_cursor")[0] == (42, 2, None)

    def health():
        h = httpx.get(f"{p.url}/health", timeout=10).json()
        return h if h.get("processor", {}).get("isolated_events") == 2 else None

    h = wait_until(health, timeout=10)
    assert h["status"] == "ok" and h["processor"]["backlog"] == 0 and h["processor"]["last_error"]
    # Later events flow as before.
    send(p, [track("late", 1)])
    wait_until(lambda: sink.delivered_count("/hook") >= 41, timeout=30)


def test_health_says_degraded_while_the_processor_lags(start_pipeline, sink, pg_dsn):
    p = start_pipeline(
        pipeline_config([webhook("hook", sink.url())], processor={"max_lag_s": 1}), run_workers=False
    )
    send(p, [track("u1", 1)])

    def degraded():
        h = httpx.get(f"{p.url}/health", timeout=10)
        return h if h.json()["status"] == "degraded" else None

    h = wait_until(degraded, timeout=20)
    assert h.status_code == 200, "still accepting: a load balancer must not take the gateway out"
    assert "oldest unprocessed event" in h.json()["problems"][0]
    assert h.json()["processor"]["backlog"] == 1


def test_dedupe_is_scoped_to_the_source_and_the_id_type(start_pipeline, sink, pg_dsn):
    cfg = pipeline_config(
        [webhook("hook", sink.url())],
        sources=[{"name": "web", "write_key": WRITE_KEY}, {"name": "mobile", "write_key": "mobile-key"}],
        connections=[
            {"source": "web", "destinations": ["hook"]},
            {"source": "mobile", "destinations": ["hook"]},
        ],
    )
    p = start_pipeline(cfg)
    # Alice on web and Bob on mobile both number their events from 1 (issue 11 item 8).
    send(p, [{"type": "track", "userId": "alice", "event": "E", "messageId": "1"}])
    r = httpx.post(
        f"{p.url}/v1/batch",
        json={"batch": [{"type": "track", "userId": "bob", "event": "E", "messageId": "1"}]},
        auth=("mobile-key", ""),
        timeout=30,
    )
    assert r.status_code == 200
    # Integer 1 is another id than string "1"; a real duplicate on the same source is still dropped.
    send(
        p,
        [
            {"type": "track", "userId": "carol", "event": "E", "messageId": 1},
            {"type": "track", "userId": "alice", "event": "E", "messageId": "1"},
        ],
    )
    wait_until(lambda: sql(pg_dsn, "SELECT last_id FROM processor_cursor")[0][0] == 4)
    wait_until(lambda: sink.delivered_count() >= 3)
    assert sorted(e["userId"] for e in sink.delivered_events()) == ["alice", "bob", "carol"]
    assert sql(pg_dsn, "SELECT count(*) FROM delivery_jobs")[0][0] == 3
