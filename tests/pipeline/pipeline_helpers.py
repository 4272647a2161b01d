"""Helpers shared by the pipeline component tests (fixtures live in conftest.py)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psycopg

from pipeline.app import ThreadedPipeline

WRITE_KEY = "test-write-key"
HERE = Path(__file__).resolve().parent
TEST_INTEGRATIONS = HERE / "integrations"


def fast_retry(**over: Any) -> dict[str, Any]:
    return {"initial_s": 0.2, "max_backoff_s": 0.5, "max_age_s": 600, "min_attempts": 3, "jitter": 0, **over}


def webhook(name: str, url: str, **over: Any) -> dict[str, Any]:
    return {
        "name": name,
        "integration": "webhook",
        "config": {"webhookUrl": url},
        "retry": fast_retry(),
        **over,
    }


def pipeline_config(destinations: list[dict[str, Any]], **over: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "sources": [{"name": "web", "write_key": WRITE_KEY}],
        "destinations": destinations,
        "connections": [{"source": "web", "destinations": [d["name"] for d in destinations]}],
        "network": {"allow_private": ["127.0.0.0/8"]},
        "router": {"poll_interval_s": 0.05},
    }
    cfg.update(over)
    return cfg


def send(p: ThreadedPipeline, events: list[dict[str, Any]], **extra: Any) -> httpx.Response:
    r = httpx.post(f"{p.url}/v1/batch", json={"batch": events, **extra}, auth=(WRITE_KEY, ""), timeout=30)
    assert r.status_code == 200, r.text
    return r


def sql(dsn: str, query: str, params: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description else []


def wait_until(predicate: Callable[[], Any], timeout: float = 30, poll: float = 0.05) -> Any:
    """Poll until ``predicate()`` is truthy; fail the test (with what it last saw) on timeout."""
    deadline = time.monotonic() + timeout
    value = predicate()
    while not value and time.monotonic() < deadline:
        time.sleep(poll)
        value = predicate()
    assert value, f"condition not met within {timeout}s"
    return value


def track(user: str, seq: int, **props: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "userId": user,
        "event": "Step",
        "messageId": f"{user}-{seq}",
        "properties": {"seq": seq, **props},
    }
