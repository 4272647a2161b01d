"""Router shards: a destination's users split over several workers, in one process or several.

Two ``ThreadedPipeline`` instances on the same database are two Postgres sessions, exactly what two
``sluice up`` processes are to the shard locks; stopping one is a process leaving.
"""

from __future__ import annotations

from collections import Counter

import httpx
import pytest
from pipeline_helpers import pipeline_config, send, sql, track, wait_until, webhook

SHARDS = 4
USERS = [f"user-{i}" for i in range(24)]


def shard_of(dsn: str) -> dict[str, int]:
    """Each test user's shard, computed by the database the way the router computes it."""
    rows = sql(dsn, "SELECT u, sluice_user_shard(u, %s) FROM unnest(%s::text[]) AS u", (SHARDS, USERS))
    return dict(rows)


def first_seqs(events: list[dict], user: str) -> list[int]:
    out: list[int] = []
    for e in events:
        if e.get("userId") == user and e["properties"]["seq"] not in out:
            out.append(e["properties"]["seq"])
    return out


def assert_once_and_in_order(sink, events: list[dict]) -> None:
    delivered = sink.delivered_events()
    counts = Counter(e["messageId"] for e in delivered)
    assert set(counts) == {e["messageId"] for e in events}
    assert [m for m, n in counts.items() if n > 1] == [], "no event delivered twice"
    for u in USERS:
        expected = sorted(e["properties"]["seq"] for e in events if e["userId"] == u)
        assert first_seqs(delivered, u) == expected, f"{u}'s events out of order"


def sharded(sink, **over) -> dict:
    return pipeline_config([webhook("hook", sink.url(), shards=SHARDS, batch_size=10, **over)])


def holders(dsn: str) -> dict[int, int]:
    """shard -> Postgres backend pid holding its lock."""
    return dict(
        sql(
            dsn,
            "SELECT objid::bigint, pid FROM pg_locks WHERE locktype = 'advisory' "
            "AND mode = 'ExclusiveLock' AND objsubid = 2 AND objid <> 4294967295 "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
    )


def test_four_shards_in_one_process_deliver_everything_once_in_order(start_pipeline, sink, pg_dsn):
    p = start_pipeline(sharded(sink))
    shards = shard_of(pg_dsn)
    assert set(shards.values()) == set(range(SHARDS)), "the test users cover every shard"
    wait_until(lambda: p.pipeline.workers["hook"].held == set(range(SHARDS)))
    events = [track(u, s) for s in range(1, 7) for u in USERS]
    send(p, events)
    wait_until(lambda: sink.delivered_count() >= len(events))
    assert_once_and_in_order(sink, events)
    # Every shard's worker did its own users' part, and only theirs.
    workers = p.pipeline.workers["hook"].workers
    for k, w in enumerate(workers):
        mine = sum(1 for u in USERS if shards[u] == k) * 6
        wait_until(lambda w=w, mine=mine: w.delivered == mine)
    wait_until(
        lambda: sql(pg_dsn, "SELECT count(*) FROM delivery_jobs WHERE state = 'succeeded'")[0][0] == 144
    )


def test_two_processes_split_the_shards_and_share_the_load(start_pipeline, sink, pg_dsn):
    p1 = start_pipeline(sharded(sink))
    wait_until(lambda: len(p1.pipeline.workers["hook"].held) == SHARDS)
    p2 = start_pipeline(sharded(sink))
    h1 = lambda: p1.pipeline.workers["hook"].held  # noqa: E731
    h2 = lambda: p2.pipeline.workers["hook"].held  # noqa: E731
    # The first process gives back what is over its fair share; the second takes it.
    wait_until(lambda: len(h1()) == 2 and len(h2()) == 2, timeout=15)
    assert h1() | h2() == set(range(SHARDS)) and not h1() & h2()
    locks = holders(pg_dsn)
    assert sorted(locks) == list(range(SHARDS)) and len(set(locks.values())) == 2
    events = [track(u, s) for s in range(1, 6) for u in USERS]
    send(p2, events[: len(events) // 2])
    send(p1, events[len(events) // 2 :])
    wait_until(lambda: sink.delivered_count() >= len(events))
    assert_once_and_in_order(sink, events)
    # (outcomes are counted when recorded, just after the sink answered)
    wait_until(
        lambda: p1.pipeline.workers["hook"].delivered + p2.pipeline.workers["hook"].delivered == len(events)
    )
    d1, d2 = p1.pipeline.workers["hook"].delivered, p2.pipeline.workers["hook"].delivered
    assert d1 > 0 and d2 > 0
    # Each process delivered exactly its own shards' users.
    shards = shard_of(pg_dsn)
    assert d1 == 5 * sum(1 for u in USERS if shards[u] in h1())


def test_when_a_process_stops_the_other_takes_over_its_shards(start_pipeline, sink, pg_dsn):
    # A slow vendor keeps work queued, so the first process leaves in the middle of it.
    sink.respond(200, delay_s=0.05)
    p1 = start_pipeline(sharded(sink, concurrency=2))
    wait_until(lambda: len(p1.pipeline.workers["hook"].held) == SHARDS)
    p2 = start_pipeline(sharded(sink, concurrency=2))
    wait_until(
        lambda: len(p1.pipeline.workers["hook"].held) == 2 and len(p2.pipeline.workers["hook"].held) == 2,
        timeout=15,
    )
    p1_shards = set(p1.pipeline.workers["hook"].held)
    shards = shard_of(pg_dsn)
    p1_users = {u for u in USERS if shards[u] in p1_shards}
    events = [track(u, s) for s in range(1, 9) for u in USERS]
    send(p2, events)
    wait_until(lambda: p1.pipeline.workers["hook"].delivered >= 10)
    p1.stop()  # drains its current rounds, then its session (and its locks) ends
    left = {e["messageId"] for e in events if e["userId"] in p1_users} - {
        e["messageId"] for e in sink.delivered_events()
    }
    assert left, "the first process left work behind for the second"
    wait_until(lambda: p2.pipeline.workers["hook"].held == set(range(SHARDS)), timeout=15)
    assert len(set(holders(pg_dsn).values())) == 1
    wait_until(lambda: sink.delivered_count() >= len(events), timeout=60)
    assert_once_and_in_order(sink, events)
    wait_until(lambda: p2.pipeline.workers["hook"].delivered >= len(left))


def test_a_killed_process_loses_its_shards_to_the_survivor(request, pg_dsn, sink, tmp_path, measurement):
    """Two real ``sluice up`` processes; ``kill -9`` one mid-delivery: its sessions end, so its shard
    locks are free and the survivor delivers the rest (at-least-once: only what was in flight may
    arrive twice), each user's events still in order."""
    from support.pipeline_proc import SluiceProcess, webhook_config
    from support.sink import message_id_counts

    sink.respond(200, delay_s=0.05)
    over = {"hook": {"shards": SHARDS, "batch_size": 10, "concurrency": 2, "retry": {"initial_s": 0.2}}}
    cfg = webhook_config(
        {"hook": sink.url()}, destination_overrides=over, extra={"router": {"poll_interval_s": 0.05}}
    )
    a = SluiceProcess(cfg, tmp_path / "a", database_url=pg_dsn)
    b = SluiceProcess(cfg, tmp_path / "b", database_url=pg_dsn)
    request.addfinalizer(a.close)
    request.addfinalizer(b.close)
    a.start()
    (a_pid,) = set(wait_until(lambda: len(holders(pg_dsn)) == SHARDS and holders(pg_dsn)).values())
    b.start()
    locks = wait_until(
        lambda: (h := holders(pg_dsn)) and sorted(Counter(h.values()).values()) == [2, 2] and h, timeout=20
    )
    a_shards = {k for k, pid in locks.items() if pid == a_pid}
    shards = shard_of(pg_dsn)
    a_users = {u for u in USERS if shards[u] in a_shards}
    events = [track(u, s) for s in range(1, 9) for u in USERS]
    r = httpx.post(f"{b.url}/v1/batch", json={"batch": events}, auth=(b.write_key, ""), timeout=30)
    assert r.status_code == 200, r.text
    a_ids = {e["messageId"] for e in events if e["userId"] in a_users}
    wait_until(lambda: len(a_ids & {e["messageId"] for e in sink.delivered_events()}) >= 10)
    a.kill9()
    left = a_ids - {e["messageId"] for e in sink.delivered_events()}
    assert left, "the killed process left work behind"
    wait_until(lambda: set(holders(pg_dsn)) == set(range(SHARDS)) and a_pid not in holders(pg_dsn).values())
    assert len(set(holders(pg_dsn).values())) == 1
    assert sink.wait_for_message_ids({e["messageId"] for e in events}, timeout=60) == set()
    delivered = sink.delivered_events()
    duplicates = sum(n - 1 for n in message_id_counts(delivered).values())
    measurement(f"[router shards kill -9] left_by_killed={len(left)} duplicates={duplicates}")
    # Only a round in flight in the killed process can be sent again: 2 shards × batch_size 10.
    assert duplicates <= 20
    for u in USERS:
        assert first_seqs(delivered, u) == list(range(1, 9)), f"{u}'s events out of order"


def test_shards_default_to_one_and_must_be_at_least_one():
    from pipeline.config import ConfigError, parse_config

    assert (
        parse_config(pipeline_config([webhook("hook", "http://127.0.0.1:9/h")])).destinations[0].shards == 1
    )
    for bad in (0, -2):
        with pytest.raises(ConfigError) as e:
            parse_config(pipeline_config([webhook("hook", "http://127.0.0.1:9/h", shards=bad)]))
        assert "destinations[0].shards" in str(e.value) and "between 1 and 1024" in str(e.value)
