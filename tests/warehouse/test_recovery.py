"""Crash windows of a warehouse load, made deterministic: the loader is stopped ("crashes") at each
step boundary, a fresh loader (new process state, same work dir) takes over, and every event must
end up in the warehouse exactly once. Plus: retries with backoff, and dead letters when a load can
never succeed. Real queue database, real DuckDB/Postgres warehouses; only the crash is simulated
(raising out of the step, like a process dying there)."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest
from psycopg_pool import AsyncConnectionPool
from warehouse_helpers import FAST_RETRY, duckdb_dest, postgres_dest, query

from pipeline.config import Destination
from pipeline.queue.db import migrate
from pipeline.warehouse.config import warehouse_settings
from pipeline.warehouse.dlt_client import WarehouseClient
from pipeline.warehouse.loader import WarehouseLoader


class Crash(BaseException):
    """Stands for the process dying at this point (nothing in the loader catches it)."""


def enqueue(dsn: str, dest: str, n: int, start: int = 0) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT sluice_ensure_id_partitions('delivery_jobs', 'delivery_jobs_id_seq', "
                     "'delivery_partition_size', 0)")  # fmt: skip
        for i in range(start, start + n):
            ev = {
                "type": "track",
                "event": "Signed Up",
                "userId": f"u{i % 7}",
                "messageId": f"m{i}",
                "receivedAt": "2024-05-01T12:00:00.000Z",
                "properties": {"n": i},
            }
            conn.execute(
                "INSERT INTO delivery_jobs (destination, user_key, message_id, event) "
                "VALUES (%s, %s, %s, %s)",
                (dest, ev["userId"], ev["messageId"], json.dumps(ev)),
            )


def states(dsn: str) -> dict[str, int]:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        return dict(conn.execute("SELECT state, count(*) FROM delivery_jobs GROUP BY 1").fetchall())


async def run_until(dsn: str, dest: dict[str, Any], done: Callable[[], bool]) -> None:
    """A fresh loader (as after a restart) stepping until ``done()``."""
    d = Destination.model_validate(dest)
    async with AsyncConnectionPool(dsn, min_size=1, max_size=4, kwargs={"autocommit": True}) as pool:
        w = WarehouseLoader(dsn, pool, d, warehouse_settings(d), isolate=False)  # crashes injectable
        try:
            for _ in range(200):
                if done():
                    return
                await w.step()
                await asyncio.sleep(0.05)
            raise AssertionError(f"not done; jobs {states(dsn)}")
        finally:
            w.runner.close(wait=True)


@pytest.fixture
def queue(pg_dsn: str) -> str:
    migrate(pg_dsn)
    return pg_dsn


def _dests(tmp_path: Path, request: pytest.FixtureRequest) -> dict[str, dict[str, Any]]:
    lake = {
        "name": "wh",
        "integration": "warehouse",
        "config": {
            "provider": "filesystem",
            "bucket_url": str(tmp_path / "lake"),
            "work_dir": str(tmp_path / "wh-work"),
            "sync_every": 0.3,
            "max_events": 40,
        },
        "retry": FAST_RETRY,
    }
    if "postgres" not in request.node.name:
        return {"duckdb": duckdb_dest("wh", tmp_path, max_events=40), "lake": lake}
    return {"postgres": postgres_dest("wh", request.getfixturevalue("warehouse_pg"), tmp_path, max_events=40)}


def arm_crash(m: pytest.MonkeyPatch, cls: type, method: str, *, before: bool = False) -> None:
    """Make ``cls.method`` crash the run: right before it does its work, or right after."""
    orig = getattr(cls, method)
    if asyncio.iscoroutinefunction(orig):

        async def awrapped(self: Any, *a: Any, **k: Any) -> Any:
            if before:
                raise Crash(method)
            await orig(self, *a, **k)
            raise Crash(method)

        m.setattr(cls, method, awrapped)
        return

    def wrapped(self: Any, *a: Any, **k: Any) -> Any:
        if before:
            raise Crash(method)
        orig(self, *a, **k)
        raise Crash(method)

    m.setattr(cls, method, wrapped)


CRASHES = {
    "staged-not-recorded": (WarehouseClient, "stage", False),
    "recorded-not-loaded": (WarehouseLoader, "_load", True),
    "loaded-not-marked": (WarehouseClient, "load", False),
}


def crash_once(dsn: str, dest: dict[str, Any], where: str, monkeypatch: pytest.MonkeyPatch) -> None:
    cls, method, before = CRASHES[where]
    with monkeypatch.context() as m:
        arm_crash(m, cls, method, before=before)
        with pytest.raises(Crash):
            asyncio.run(run_until(dsn, dest, lambda: False))


@pytest.mark.parametrize("kind", ["duckdb", "postgres", "lake"])
@pytest.mark.parametrize("where", list(CRASHES))
def test_every_crash_window_ends_exactly_once(kind, where, queue, tmp_path, request, monkeypatch):
    dest = _dests(tmp_path, request)[kind]
    enqueue(queue, "wh", 100)
    crash_once(queue, dest, where, monkeypatch)
    asyncio.run(run_until(queue, dest, lambda: states(queue) == {"succeeded": 100}))
    if kind == "lake":
        con = duckdb.connect()
        read = f"read_parquet('{dest['config']['bucket_url']}/wh/{{t}}/*.parquet')"
        assert con.execute(
            f"SELECT count(*), count(DISTINCT id) FROM {read.format(t='signed_up')}"
        ).fetchall() == [(100, 100)]
        assert con.execute(f"SELECT count(*) FROM {read.format(t='tracks')}").fetchall() == [(100,)]
        return
    assert query(dest, "SELECT count(*), count(DISTINCT id) FROM {s}.signed_up") == [(100, 100)]
    assert query(dest, "SELECT count(*) FROM {s}.tracks") == [(100,)]


def test_lost_package_is_loaded_again_without_duplicates(queue, tmp_path, monkeypatch):
    dest = duckdb_dest("wh", tmp_path, max_events=40)
    enqueue(queue, "wh", 50)
    crash_once(queue, dest, "loaded-not-marked", monkeypatch)
    shutil.rmtree(dest["config"]["work_dir"])  # a new machine: the recorded package is gone
    asyncio.run(run_until(queue, dest, lambda: states(queue) == {"succeeded": 50}))
    assert query(dest, "SELECT count(*), count(DISTINCT id) FROM {s}.signed_up") == [(50, 50)]
    import psycopg

    with psycopg.connect(queue, autocommit=True) as conn:
        assert "lost" in {r[0] for r in conn.execute("SELECT state FROM warehouse_loads").fetchall()}


def test_unreachable_warehouse_retries_then_dead_letters_with_reason(queue, tmp_path):
    dest = postgres_dest("wh", "postgresql://loader:hunter2secret@127.0.0.1:9/warehouse", tmp_path)
    dest["retry"] = {**FAST_RETRY, "max_age_s": 0, "min_attempts": 3}
    enqueue(queue, "wh", 10)
    asyncio.run(run_until(queue, dest, lambda: states(queue) == {"aborted": 10}))
    import psycopg

    with psycopg.connect(queue, autocommit=True) as conn:
        letters = conn.execute(
            "SELECT reason, attempts FROM dead_letters WHERE destination = 'wh'"
        ).fetchall()
        load = conn.execute("SELECT state, attempts, last_error FROM warehouse_loads").fetchall()
    assert len(letters) == 10 and all("gave up after 3 attempts" in r[0] for r in letters)
    assert load[0][0] == "aborted" and load[0][1] == 2  # two retried failures, the third gave up
    assert all("hunter2secret" not in r[0] for r in letters) and "hunter2secret" not in (load[0][2] or "")


def test_load_the_warehouse_rejects_is_dead_lettered_at_once(queue, warehouse_pg, tmp_path):
    import psycopg

    with psycopg.connect(warehouse_pg, autocommit=True) as conn:
        # Someone created the event table by hand with a column the events cannot fill.
        conn.execute("CREATE SCHEMA wh; CREATE TABLE wh.signed_up (id text, n boolean NOT NULL)")
    dest = postgres_dest("wh", warehouse_pg, tmp_path)
    enqueue(queue, "wh", 5)
    asyncio.run(run_until(queue, dest, lambda: states(queue) == {"aborted": 5}))
    with psycopg.connect(queue, autocommit=True) as conn:
        reasons = [r[0] for r in conn.execute("SELECT reason FROM dead_letters").fetchall()]
        attempts = conn.execute("SELECT attempts FROM warehouse_loads").fetchone()[0]
    assert len(reasons) == 5 and all("the warehouse rejected the load" in r for r in reasons)
    assert "boolean" in reasons[0] and len(reasons[0]) < 500  # the warehouse's own message, one line
    assert attempts == 0  # no retries: retrying cannot help
