"""Warehouse benchmark: rows loaded per second into DuckDB and Postgres, and the delay from an
event's acknowledgement to the moment its row is queryable.

Why two parts: throughput is the loader's own work (row model → Arrow → dlt load package → warehouse)
and is measured without HTTP in the way; the delay is what a user sees through ``sluice up`` and is
dominated by ``sync_every`` plus one load.

1. Throughput: ``--events`` events (30 track names, 100 users, every tenth an identify) are loaded in
   batches of ``--max-events`` with the loader's components (BatchBuilder, WarehouseClient) into a
   fresh DuckDB file and a fresh Postgres database. Reported: events/s and rows/s per warehouse, and
   how the time splits between building rows, staging (Arrow + dlt package) and loading.
2. Delay: ``sluice up`` (a subprocess) with both warehouses (``sync_every`` = ``--sync-every``) gets
   ``--rate`` events/s for ``--duration`` s over real HTTP. For every event, delay = the time its load
   was recorded done (``warehouse_loads.finished_at``, written after the warehouse committed) minus
   its ``receivedAt`` (set by the gateway when it acknowledged the event). p50/p99/max per warehouse.

Usage:  .venv/bin/python bench/warehouse.py [--events 20000] [--max-events 10000] [--duration 10]
        (uses $DATABASE_URL / $SLUICE_TEST_DATABASE_URL if set, else the embedded local Postgres)
The last output line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
import psycopg  # noqa: E402
import yaml  # noqa: E402
from psycopg import sql  # noqa: E402
from psycopg.conninfo import conninfo_to_dict, make_conninfo  # noqa: E402

WRITE_KEY = "bench-wh-key"
NAMES = [f"Product Event {i:02d}" for i in range(30)]


def server_dsn() -> str:
    dsn = os.environ.get("DATABASE_URL") or os.environ.get("SLUICE_TEST_DATABASE_URL")
    if dsn:
        return dsn
    from pipeline.postgres import ensure_local_postgres

    return ensure_local_postgres(REPO / ".sluice" / "bench", dbname="postgres")


def new_database(server: str) -> str:
    name = f"sluice_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
    return make_conninfo(server, dbname=name)


def drop_database(server: str, dsn: str) -> None:
    name = conninfo_to_dict(dsn)["dbname"]
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def url_of(dsn: str) -> str:
    d = conninfo_to_dict(dsn)
    auth = quote(d.get("user", ""), safe="") + (
        ":" + quote(d["password"], safe="") if d.get("password") else ""
    )
    host = d.get("host") or "127.0.0.1"
    return f"postgresql://{auth}@{host}:{d.get('port', 5432)}/{d['dbname']}"


def make_event(i: int, rnd: random.Random, now: str) -> dict[str, Any]:
    user = f"user-{rnd.randrange(100):03d}"
    context = {
        "ip": "203.0.113.7",
        "library": {"name": "analytics.js", "version": "2.11.1"},
        "locale": "en-US",
    }
    if i % 10 == 0:
        traits = {"plan": rnd.choice(["free", "pro", "team"]), "email": f"{user}@example.com", "logins": i}
        return {"type": "identify", "userId": user, "messageId": f"b-{i}", "receivedAt": now,
                "context": context, "traits": traits}  # fmt: skip
    props = {"amount": rnd.randrange(1, 1000), "currency": "EUR", "sku": f"SKU-{i % 97}", "coupon": None}
    return {"type": "track", "userId": user, "event": rnd.choice(NAMES), "messageId": f"b-{i}",
            "receivedAt": now, "context": context, "properties": props}  # fmt: skip


# -- part 1: loader throughput ----------------------------------------------------------------------
def throughput(kind: str, events: int, max_events: int, workdir: Path, warehouse_url: str | None) -> dict:
    from pipeline.warehouse.batch import BatchBuilder, Job
    from pipeline.warehouse.config import WarehouseSettings
    from pipeline.warehouse.dlt_client import WarehouseClient

    if kind == "duckdb":
        settings = WarehouseSettings(
            provider="duckdb",
            path=str(workdir / "bench.duckdb"),
            work_dir=str(workdir / "w"),
            dataset="events",
        )
    else:
        settings = WarehouseSettings(
            provider="postgres", credentials=warehouse_url, work_dir=str(workdir / "w"), dataset="events"
        )
    client = WarehouseClient(f"bench-{kind}", settings)
    builder = BatchBuilder(settings.row_provider(), settings.row_config())
    rnd = random.Random(1)
    now = dt.datetime.now(dt.UTC).isoformat()
    evs = [make_event(i, rnd, now) for i in range(events)]
    build_s = stage_s = load_s = 0.0
    rows = 0
    for k in range(0, events, max_events):
        jobs = [Job(k + j, e, dt.datetime.now(dt.UTC)) for j, e in enumerate(evs[k : k + max_events])]
        t0 = time.perf_counter()
        batch = builder.build(jobs, client.known_columns())
        t1 = time.perf_counter()
        client.stage(batch)
        t2 = time.perf_counter()
        client.load()
        t3 = time.perf_counter()
        build_s, stage_s, load_s = build_s + t1 - t0, stage_s + t2 - t1, load_s + t3 - t2
        rows += batch.rows
    total = build_s + stage_s + load_s
    return {
        "warehouse": kind,
        "events": events,
        "rows": rows,
        "events_per_s": round(events / total),
        "rows_per_s": round(rows / total),
        "build_s": round(build_s, 2),
        "stage_s": round(stage_s, 2),
        "load_s": round(load_s, 2),
    }


# -- part 2: acknowledgement to queryable -----------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def delay(
    queue_dsn: str, warehouse_url: str, workdir: Path, rate: int, duration: float, sync_every: float
) -> dict:
    cfg = {
        "sources": [{"name": "web", "write_key": WRITE_KEY}],
        "destinations": [
            {"name": "pg-wh", "integration": "warehouse",
             "config": {"provider": "postgres", "credentials": warehouse_url, "sync_every": sync_every}},
            {"name": "duck-wh", "integration": "warehouse",
             "config": {"provider": "duckdb", "path": str(workdir / "delay.duckdb"),
                        "sync_every": sync_every}},
        ],
        "connections": [{"source": "web", "destinations": ["pg-wh", "duck-wh"]}],
    }  # fmt: skip
    (workdir / "sluice.yaml").write_text(yaml.safe_dump(cfg))
    port = free_port()
    env = dict(os.environ, DATABASE_URL=queue_dsn)
    log = open(workdir / "sluice.log", "wb")
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "sluice"), "up", "--config", str(workdir / "sluice.yaml"),
         "--port", str(port)],
        cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("sluice up did not become healthy; see " + str(workdir / "sluice.log"))
            time.sleep(0.2)
        # Warm-up: one event through each warehouse, so start-up (child processes, dlt, first DDL)
        # is not counted as delay.
        warm = make_event(1, random.Random(0), "")
        warm.pop("receivedAt")
        warm["messageId"] = "warm-up"
        httpx.post(
            f"{url}/v1/batch", json={"batch": [warm]}, auth=(WRITE_KEY, ""), timeout=30
        ).raise_for_status()
        with psycopg.connect(queue_dsn, autocommit=True) as conn:
            deadline = time.monotonic() + 120
            while (
                conn.execute(
                    "SELECT count(DISTINCT destination) FROM warehouse_loads WHERE state = 'done'"
                ).fetchone()[0]
                < 2
            ):
                if time.monotonic() > deadline:
                    raise RuntimeError("warm-up event not loaded within 120 s")
                time.sleep(0.2)
        rnd = random.Random(2)
        sent = 0
        per_tick = max(1, rate // 10)
        t_end = time.monotonic() + duration
        with httpx.Client(timeout=30) as client:
            while time.monotonic() < t_end:
                tick = time.monotonic()
                batch = [make_event(sent + j, rnd, "") for j in range(per_tick)]
                for e in batch:
                    e.pop("receivedAt")  # the gateway stamps it when it acknowledges
                r = client.post(f"{url}/v1/batch", json={"batch": batch}, auth=(WRITE_KEY, ""))
                r.raise_for_status()
                sent += len(batch)
                time.sleep(max(0.0, 0.1 - (time.monotonic() - tick)))
        with psycopg.connect(queue_dsn, autocommit=True) as conn:
            deadline = time.monotonic() + 180
            while (
                conn.execute("SELECT count(*) FROM delivery_jobs WHERE state <> 'succeeded'").fetchone()[0]
                or conn.execute("SELECT count(*) FROM delivery_jobs").fetchone()[0] < 2 * sent
            ):
                if time.monotonic() > deadline:
                    raise RuntimeError("events not loaded within 180 s")
                time.sleep(0.2)
            rows = conn.execute(
                """SELECT l.destination,
                          extract(epoch FROM l.finished_at - (j.event->>'receivedAt')::timestamptz)
                     FROM warehouse_loads l JOIN delivery_jobs j ON j.id = ANY(l.job_ids)
                    WHERE l.state = 'done' AND j.message_id <> 'warm-up'"""
            ).fetchall()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
    out: dict[str, Any] = {"sent": sent, "rate_per_s": rate, "sync_every_s": sync_every}
    for dest in ("pg-wh", "duck-wh"):
        d = sorted(float(r[1]) for r in rows if r[0] == dest)
        out[dest] = {
            "events": len(d),
            "p50_s": round(statistics.median(d), 2),
            "p99_s": round(d[int(0.99 * (len(d) - 1))], 2),
            "max_s": round(d[-1], 2),
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=20000)
    ap.add_argument("--max-events", type=int, default=10000)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--rate", type=int, default=300)
    ap.add_argument("--sync-every", type=float, default=1.0)
    args = ap.parse_args()
    server = server_dsn()
    tmp = Path(tempfile.mkdtemp(prefix="sluice-bench-wh-"))
    created: list[str] = []
    try:
        wh = new_database(server)
        created.append(wh)
        results: dict[str, Any] = {"throughput": []}
        for kind in ("duckdb", "postgres"):
            r = throughput(kind, args.events, args.max_events, tmp / kind, url_of(wh))
            results["throughput"].append(r)
            print(
                f"{kind:9s} {r['events']} events -> {r['rows']} rows: {r['rows_per_s']} rows/s "
                f"({r['events_per_s']} events/s; build {r['build_s']}s, stage {r['stage_s']}s, "
                f"load {r['load_s']}s)"
            )
        queue = new_database(server)
        created.append(queue)
        wh2 = new_database(server)
        created.append(wh2)
        (tmp / "delay").mkdir()
        d = delay(queue, url_of(wh2), tmp / "delay", args.rate, args.duration, args.sync_every)
        results["delay"] = d
        for dest in ("pg-wh", "duck-wh"):
            x = d[dest]
            print(
                f"ack -> queryable {dest}: p50 {x['p50_s']}s p99 {x['p99_s']}s max {x['max_s']}s "
                f"({x['events']} events at {args.rate}/s, sync_every {args.sync_every}s)"
            )
        print(json.dumps(results))
    finally:
        for dsn in created:
            try:
                drop_database(server, dsn)
            except psycopg.Error:
                pass
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
