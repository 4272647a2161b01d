"""The Redis destination end to end: events posted to the gateway, through Postgres, the processor and
the router's Redis transport, into a real redis-server. What must hold is what holds for HTTP
destinations: every accepted event is written (in order per user), an outage delays writes and loses
none, and a write Redis refuses for good is dead-lettered with a reason that never shows the password."""

from __future__ import annotations

import logging
import time
from typing import Any

from pipeline_helpers import fast_retry, pipeline_config, send, sql, wait_until


def redis_dest(server: Any, **config: Any) -> dict[str, Any]:
    return {
        "name": "cache",
        "integration": "redis",
        "config": {"address": server.address, "clusterMode": False, "prefix": "app", **config},
        "retry": fast_retry(initial_s=0.1, max_backoff_s=0.3),
    }


def identify(user: str, seq: int, **traits: Any) -> dict[str, Any]:
    return {"type": "identify", "userId": user, "messageId": f"{user}-id-{seq}", "traits": traits}


def test_identify_traits_land_as_hashes_in_order(start_pipeline, redis_server, pg_dsn):
    p = start_pipeline(pipeline_config([redis_dest(redis_server)]))
    r = redis_server.client()
    events = [identify("u1", 1, plan="free", address={"city": "Paris"}), identify("u2", 1, plan="team")]
    events += [identify("u1", s, plan=f"plan-{s}", logins=s) for s in range(2, 8)]
    # Track calls are not Redis's: refused at transform time, nothing written for them.
    events.append({"type": "track", "userId": "u3", "event": "Clicked", "messageId": "u3-t-1"})
    send(p, events)
    wait_until(lambda: r.hget("app:user:u1", "plan") == "plan-7" and r.exists("app:user:u2"), timeout=30)
    # Per-user order: the last identify's traits win, the first's untouched fields remain (HSET adds).
    assert r.hgetall("app:user:u1") == {"plan": "plan-7", "logins": "7", "address.city": "Paris"}
    assert r.hgetall("app:user:u2") == {"plan": "team"}
    assert not r.exists("app:user:u3")
    wait_until(lambda: sql(pg_dsn, "SELECT count(*) FROM delivery_jobs WHERE state = 'succeeded'")[0][0] == 8)


def test_an_outage_delays_writes_and_loses_none(start_pipeline, redis_server, pg_dsn):
    p = start_pipeline(pipeline_config([redis_dest(redis_server)]))
    r = redis_server.client()
    redis_server.stop()
    users = [f"o{i}" for i in range(5)]
    send(p, [identify(u, s, step=s) for s in (1, 2, 3) for u in users])
    # Deliveries are attempted and fail as retryable while Redis is down ...
    retrying = "SELECT count(*) FROM delivery_jobs WHERE state = 'failed' AND attempts > 0"
    wait_until(lambda: sql(pg_dsn, retrying)[0][0], timeout=30)
    assert sql(pg_dsn, "SELECT count(*) FROM dead_letters")[0][0] == 0
    failed = sql(pg_dsn, "SELECT last_error FROM delivery_jobs WHERE state = 'failed' LIMIT 1")[0][0]
    assert "network error" in failed and "Redis" in failed
    time.sleep(0.5)
    redis_server.start()  # back on the same port
    wait_until(lambda: all(r.hget(f"app:user:{u}", "step") == "3" for u in users), timeout=60)
    succeeded = "SELECT count(*) FROM delivery_jobs WHERE state = 'succeeded'"
    wait_until(lambda: sql(pg_dsn, succeeded)[0][0] == 15)
    assert sql(pg_dsn, "SELECT count(*) FROM dead_letters")[0][0] == 0


def test_a_wrong_password_dead_letters_with_a_redacted_reason(
    start_pipeline, redis_server_factory, pg_dsn, caplog
):
    caplog.set_level(logging.DEBUG)
    server = redis_server_factory(password="right-redis-pw-4411")
    wrong = "wrong-redis-pw-9923"
    p = start_pipeline(pipeline_config([redis_dest(server, password=wrong)]))
    send(p, [identify("w1", 1, plan="pro")])
    wait_until(lambda: sql(pg_dsn, "SELECT count(*) FROM dead_letters")[0][0] == 1, timeout=30)
    [(reason, stored)] = sql(pg_dsn, "SELECT reason, d::text FROM dead_letters d")
    assert "WRONGPASS" in reason and "password" in reason
    jobs = sql(pg_dsn, "SELECT j::text FROM delivery_jobs j")
    logged = "\n".join(rec.getMessage() for rec in caplog.records)
    for text in (stored, logged, *[j[0] for j in jobs]):
        assert wrong not in text and "right-redis-pw-4411" not in text
    assert not server.client().exists("app:user:w1")
