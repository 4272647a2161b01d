"""The Redis destination through `sluice up` as users run it (a subprocess, certified connectors only, no
--allow-uncertified), writing to a real redis-server: identify calls become hashes, and a Redis restart
in the middle loses nothing."""

from __future__ import annotations

import time

import httpx
import pytest
from support.pipeline_proc import SluiceProcess


def _wait(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


@pytest.mark.timeout(180)
def test_sluice_up_writes_identify_traits_to_redis_across_a_restart(pg_dsn, tmp_path, redis_server_factory):
    server = redis_server_factory(password="e2e-redis-pw")
    cfg = {
        "sources": [{"name": "web", "write_key": "redis-key"}],
        "destinations": [
            {
                "name": "profiles",
                "integration": "redis",
                "config": {"address": server.address, "password": "e2e-redis-pw", "clusterMode": False},
                "retry": {"initial_s": 0.2, "max_backoff_s": 0.5},
            }
        ],
        "connections": [{"source": "web", "destinations": ["profiles"]}],
        "network": {"allow_private": ["127.0.0.0/8"]},
    }
    r = server.client()
    with SluiceProcess(cfg, tmp_path / "sluice", database_url=pg_dsn, extra_args=[]) as sluice:

        def post(events):
            resp = httpx.post(
                f"{sluice.url}/v1/batch", json={"batch": events}, auth=("redis-key", ""), timeout=30
            )
            assert resp.status_code == 200, resp.text

        post(
            [{"type": "identify", "userId": "e1", "messageId": "e1-1", "traits": {"plan": "pro", "seats": 3}}]
        )
        _wait(lambda: r.hgetall("user:e1") == {"plan": "pro", "seats": "3"})
        server.stop()  # a throw-away server without persistence: what it held is gone, as in a crash
        post(
            [
                {"type": "identify", "userId": f"e{i}", "messageId": f"e{i}-2", "traits": {"round": 2}}
                for i in range(5)
            ]
        )
        time.sleep(1.0)  # deliveries are attempted and retried while Redis is down
        server.start()
        _wait(lambda: all(r.hget(f"user:e{i}", "round") == "2" for i in range(5)))
        assert "e2e-redis-pw" not in sluice.log_tail(100_000)
