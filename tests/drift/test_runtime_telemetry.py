"""Runtime drift: the router records vendor signals its connector was not certified against.

A real pipeline (real Postgres, real HTTP) delivers to a loopback fake vendor that first answers as the
cassettes recorded, then starts sending a `Sunset` header and a new response field. The signals show up
as Prometheus counters and in `sluice drift runtime`, with counts and a redacted example.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg
import pytest
from support.sink import Sink

from pipeline.app import ThreadedPipeline
from pipeline.config import parse_config

from .fakevendor import ANSWER, API_KEY, make_tree

SUNSET = "Wed, 01 Jul 2026 00:00:00 GMT"
WRITE_KEY = "drift-write-key"


def _events(n: int, start: int) -> list[dict]:
    return [
        {"type": "track", "event": "Signed Up", "userId": f"u{i}", "messageId": f"m-{start + i}"}
        for i in range(n)
    ]


def _send(p: ThreadedPipeline, events: list[dict]) -> None:
    r = httpx.post(f"{p.url}/v1/batch", json={"batch": events}, auth=(WRITE_KEY, ""), timeout=30)
    assert r.status_code == 200, r.text


def _signals(dsn: str) -> list[tuple]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(
            "SELECT kind, signal, detail, count, first_seen, last_seen, example"
            " FROM vendor_signals ORDER BY kind"
        ).fetchall()


def _wait(predicate, timeout: float = 30.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"condition not met within {timeout}s (last: {predicate()!r})")


def test_router_records_sunset_and_new_field(
    tmp_path: Path, pg_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLUICE_TELEMETRY_FLUSH_S", "0.2")
    tree = make_tree(tmp_path)
    with Sink() as vendor:
        vendor.respond(200, body=json.dumps(ANSWER))
        cfg = parse_config(
            {
                "sources": [{"name": "web", "write_key": WRITE_KEY}],
                "destinations": [
                    {
                        "name": "fv-drift-dest",
                        "integration": "fakevendor",
                        "config": {"apiKey": API_KEY, "baseUrl": f"http://127.0.0.1:{vendor.port}"},
                    }
                ],
                "connections": [{"source": "web", "destinations": ["fv-drift-dest"]}],
                "network": {"allow_private": ["127.0.0.0/8"]},
                "router": {"poll_interval_s": 0.05},
            }
        )
        with ThreadedPipeline(cfg, pg_dsn, allow_uncertified=True, integrations_root=tree) as p:
            _send(p, _events(2, 0))
            _wait(lambda: vendor.delivered_count() >= 2)
            time.sleep(0.6)  # longer than a flush interval: answers as certified leave no trace
            assert _signals(pg_dsn) == []

            vendor.respond(200, headers={"Sunset": SUNSET}, body=json.dumps({**ANSWER, "region": "eu-1"}))
            _send(p, _events(3, 100))
            _wait(lambda: vendor.delivered_count() >= 5)
            rows = _wait(
                lambda: [r for r in _signals(pg_dsn) if r[3] >= 3 and r[0] == "sunset"] and _signals(pg_dsn)
            )
            metrics = httpx.get(f"{p.url}/metrics", timeout=10).text
        assert 'sluice_vendor_signals_total{destination="fv-drift-dest",kind="sunset"} 3.0' in metrics
        assert 'sluice_vendor_signals_total{destination="fv-drift-dest",kind="shape"} 3.0' in metrics

    by_kind = {r[0]: r for r in rows}
    assert set(by_kind) == {"sunset", "shape"}
    kind, signal, detail, count, first, last, example = by_kind["sunset"]
    assert signal == f"Sunset: {SUNSET}" and count == 3 and first <= last
    assert by_kind["shape"][3] == 3 and "+/region" in by_kind["shape"][2]
    assert {k.lower(): v for k, v in example["headers"].items()}["sunset"] == SUNSET

    env = dict(os.environ, DATABASE_URL=pg_dsn)
    out = subprocess.run(
        [sys.executable, "-m", "sdk.cli", "drift", "runtime", "fakevendor", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    listed = [json.loads(line) for line in out.stdout.splitlines()]
    assert {(r["kind"], r["count"]) for r in listed} == {("sunset", 3), ("shape", 3)}
    assert API_KEY not in out.stdout  # the example never carries the credential
    human = subprocess.run(
        [sys.executable, "-m", "sdk.cli", "drift", "runtime", "--database-url", pg_dsn],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert human.returncode == 0 and "fakevendor/fv-drift-dest" in human.stdout and "x3" in human.stdout
