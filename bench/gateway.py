"""Gateway benchmark: durable events/s and acknowledgement latency, next to a raw COPY of the same events.

Why these numbers: the gateway acknowledges an event only after it is committed in Postgres, so its
ceiling is what Postgres can ingest. We measure both in the same run, on the same database, and report
the ratio, so the figure says how much of the database's raw ingest rate the HTTP + group-commit path
keeps, independent of how fast this particular machine is.

How:
1. start ``sluice up`` (a subprocess, real HTTP, real Postgres; one source, no destinations) on a fresh
   database;
2. a load generator in a separate process posts ``/v1/batch`` requests with batch sizes 1..100 from many
   concurrent connections, users drawn with a hot-user skew (a few users send most events); after a
   warm-up it counts acknowledged (200) events and each request's latency for ``--duration`` seconds;
3. the number of rows durably in ``gateway_jobs`` is checked against the acknowledged count;
4. the rows the gateway stored (the same events, byte for byte, as COPY text read back before timing)
   are COPY'd raw into a table shaped like the gateway table, committed every 10,000 rows, in the same
   database, with ``sluice up`` stopped, and timed.

Usage:  .venv/bin/python bench/gateway.py [--duration 15] [--concurrency 32]
        (uses $DATABASE_URL / $SLUICE_TEST_DATABASE_URL if set, else the embedded local Postgres)
The last output line is one JSON object: events_per_s, copy_events_per_s, ratio, p50_ms, p99_ms, ...
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

WRITE_KEY = "bench-write-key"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_batches(n_requests: int, users: int, seed: int) -> list[list[dict]]:
    """Pre-built batches (so generating events costs nothing during the timed run)."""
    rnd = random.Random(seed)
    batches = []
    for _ in range(n_requests):
        size = rnd.randint(1, 100)
        batch = []
        for _ in range(size):
            # hot users: u = users * r^3 puts ~46% of events on the hottest 10% of users
            u = int(users * rnd.random() ** 3)
            batch.append(
                {
                    "type": "track",
                    "event": rnd.choice(["Product Viewed", "Order Completed", "Signed Up", "Page Scrolled"]),
                    "userId": f"user-{u:05d}",
                    "messageId": str(uuid.UUID(int=rnd.getrandbits(128))),
                    "originalTimestamp": "2024-05-01T12:00:00.000Z",
                    "sentAt": "2024-05-01T12:00:00.100Z",
                    "properties": {
                        "price": round(rnd.random() * 100, 2),
                        "sku": f"sku-{rnd.randint(1, 500)}",
                        "currency": "EUR",
                        "quantity": rnd.randint(1, 5),
                    },
                    "context": {
                        "library": {"name": "bench", "version": "1.0"},
                        "ip": "203.0.113.7",
                        "locale": "en-US",
                        "page": {"path": "/products", "title": "Products"},
                    },
                }
            )
        batches.append(batch)
    return batches


def loadgen_main(
    url: str, concurrency: int, warmup_s: float, duration_s: float, users: int, seed: int, out: mp.Queue
) -> None:
    """Runs in its own process: posts pre-serialised batches and reports latencies of the timed window.

    Why a hand-rolled HTTP/1.1 client over asyncio streams: on a 2-core machine the load generator
    competes with the server for CPU. Pre-built request bytes on keep-alive connections cost a few
    microseconds per request, so the measured rate is the gateway's and not the client library's.
    """
    import base64
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    auth = base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
    batches = make_batches(4000, users, seed)
    requests = []
    for b in batches:
        body = json.dumps({"batch": b}).encode()
        head = (
            f"POST /v1/batch HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Basic {auth}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        requests.append((head + body, len(b), len(body)))

    async def one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, req: bytes) -> int:
        writer.write(req)
        status_line = await reader.readline()
        if not status_line:
            raise ConnectionError("server closed the connection")
        status = int(status_line.split()[1])
        length = 0
        chunked = False
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value.strip())
            elif name == "transfer-encoding" and "chunked" in value.lower():
                chunked = True
        if chunked:
            while True:
                size = int((await reader.readline()).strip() or b"0", 16)
                await reader.readexactly(size + 2)
                if size == 0:
                    break
        elif length:
            await reader.readexactly(length)
        return status

    async def run() -> dict:
        t_start = time.monotonic()
        t_measure = t_start + warmup_s
        t_end = t_measure + duration_s
        lat_ms: list[float] = []
        stats = {"events": 0, "requests": 0, "non200": 0, "errors": 0, "warmup_events": 0, "bytes": 0}

        async def worker(i: int) -> None:
            k = i
            conn = None
            while True:
                if time.monotonic() >= t_end:
                    break
                req, n, nbytes = requests[k % len(requests)]
                k += concurrency
                t0 = time.monotonic()
                try:
                    if conn is None:
                        conn = await asyncio.open_connection(host, port)
                    status = await one(conn[0], conn[1], req)
                    ok: bool | None = status == 200
                except (OSError, ConnectionError, asyncio.IncompleteReadError, ValueError, IndexError):
                    ok = None
                    if conn is not None:
                        conn[1].close()
                    conn = None
                t1 = time.monotonic()
                if t0 >= t_measure and t1 <= t_end:
                    stats["requests"] += 1
                    if ok:
                        stats["events"] += n
                        stats["bytes"] += nbytes
                        lat_ms.append((t1 - t0) * 1000)
                    elif ok is None:
                        stats["errors"] += 1
                    else:
                        stats["non200"] += 1
                elif ok:
                    stats["warmup_events"] += n
                if ok is not True:
                    await asyncio.sleep(0.05)
            if conn is not None:
                conn[1].close()

        await asyncio.gather(*(worker(i) for i in range(concurrency)))
        stats["latencies_ms"] = lat_ms
        return stats

    out.put(asyncio.run(run()))


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


def _copy_escape(s: str) -> str:
    return s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _persisted_lines(dsn: str, n_events: int) -> list[bytes]:
    """The events exactly as the gateway stored them (COPY text lines), so the raw COPY ingests the same
    bytes: same fields, same sizes, including what the gateway added (messageId, receivedAt, ...)."""
    import psycopg
    from psycopg import sql

    query = sql.SQL("COPY (SELECT source, event FROM gateway_jobs ORDER BY id LIMIT {}) TO STDOUT").format(
        sql.Literal(n_events)
    )
    buf = bytearray()
    with psycopg.connect(dsn) as conn, conn.cursor() as cur, cur.copy(query) as cp:
        for data in cp:
            buf += data
    return [line + b"\n" for line in bytes(buf).split(b"\n") if line]


def raw_copy_rate(dsn: str, n_events: int, users: int, seed: int, chunk: int = 10_000) -> tuple[float, str]:
    """COPY ``n_events`` into a table shaped like gateway_jobs, committed every ``chunk`` rows.

    Uses the rows the gateway persisted in this run when there are enough (the same events, byte for
    byte); otherwise freshly generated events of the same shape. Returns (events/s, which source).
    """
    import psycopg

    lines = _persisted_lines(dsn, n_events)
    source = "gateway_jobs rows of this run"
    if len(lines) < n_events:
        events = [e for b in make_batches(max(1, n_events // 40 + 10), users, seed + 1) for e in b][:n_events]
        while len(events) < n_events:
            events += events[: n_events - len(events)]
        lines = [f"web\t{_copy_escape(json.dumps(e))}\n".encode() for e in events]
        source = "generated events of the same shape"
    # the COPY payload is built before timing: we measure Postgres ingest, not Python string handling
    chunks = [b"".join(lines[i : i + chunk]) for i in range(0, len(lines), chunk)]
    with psycopg.connect(dsn) as conn:
        conn.execute(
            "CREATE TABLE bench_raw_copy (id bigserial PRIMARY KEY, source text NOT NULL,"
            " received_at timestamptz NOT NULL DEFAULT now(), event jsonb NOT NULL)"
        )
        conn.commit()
        t0 = time.perf_counter()
        for data in chunks:
            with conn.cursor() as cur, cur.copy("COPY bench_raw_copy (source, event) FROM STDIN") as cp:
                cp.write(data)
            conn.commit()
        elapsed = time.perf_counter() - t0
        count = conn.execute("SELECT count(*) FROM bench_raw_copy").fetchone()[0]
        conn.execute("DROP TABLE bench_raw_copy")
        conn.commit()
    assert count == n_events, (count, n_events)
    return n_events / elapsed, source


def per_request_copy_rate(dsn: str, seconds: float, users: int, seed: int) -> float:
    """Context figure: one COPY + commit per client batch (1..100 events), i.e. persisting without group
    commit. Shows what grouping buys; not used for the ratio."""
    import psycopg

    batches = make_batches(2000, users, seed + 2)
    payloads = ["".join(f"web\t{_copy_escape(json.dumps(e))}\n" for e in b).encode() for b in batches]
    sizes = [len(b) for b in batches]
    with psycopg.connect(dsn) as conn:
        conn.execute(
            "CREATE TABLE bench_copy_per_request (id bigserial PRIMARY KEY, source text NOT NULL,"
            " received_at timestamptz NOT NULL DEFAULT now(), event jsonb NOT NULL)"
        )
        conn.commit()
        n = 0
        i = 0
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            sql = "COPY bench_copy_per_request (source, event) FROM STDIN"
            with conn.cursor() as cur, cur.copy(sql) as cp:
                cp.write(payloads[i % len(payloads)])
            conn.commit()
            n += sizes[i % len(sizes)]
            i += 1
        elapsed = time.perf_counter() - t0
        conn.execute("DROP TABLE bench_copy_per_request")
        conn.commit()
    return n / elapsed


def add_database_args(ap: argparse.ArgumentParser) -> None:
    ap.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL") or os.environ.get("SLUICE_TEST_DATABASE_URL"),
        help="a Postgres server (default: the embedded one in .sluice/bench)",
    )
    ap.add_argument("--keep-db", action="store_true", help="keep the run's database afterwards")


def fresh_database(server_url: str | None) -> tuple[str, str]:
    """(server, dsn of a new empty database on it) for one run."""
    from pipeline.postgres import ensure_local_postgres
    from tests.support.pg import create_database

    server = server_url or ensure_local_postgres(REPO / ".sluice" / "bench", dbname="postgres")
    return server, create_database(server, prefix="sluice_bench")


def start_sluice(work: Path, dsn: str, extra_args: tuple[str, ...] = ()) -> tuple[subprocess.Popen, str]:
    """``sluice up`` on ``work/sluice.yaml`` and ``dsn``, on a free port, once ``/health`` answers 200;
    its output goes to ``work/sluice.log``."""
    import httpx

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, DATABASE_URL=dsn, PYTHONUNBUFFERED="1")
    sluice_bin = Path(sys.executable).parent / "sluice"
    cmd = [str(sluice_bin), "up", "--config", str(work / "sluice.yaml"), "--port", str(port), *extra_args]
    with open(work / "sluice.log", "wb") as log:
        proc = subprocess.Popen(
            cmd, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"sluice up exited early; log:\n{(work / 'sluice.log').read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            stop_sluice(proc)
            raise SystemExit("sluice up did not become healthy in 60 s")
        time.sleep(0.2)


def stop_sluice(proc: subprocess.Popen) -> None:
    """SIGTERM (sluice up drains), then SIGKILL to the process group after a minute."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=15.0, help="timed seconds (after warm-up)")
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--concurrency", type=int, default=32, help="concurrent HTTP connections")
    ap.add_argument("--users", type=int, default=10_000)
    ap.add_argument("--copy-events", type=int, default=0, help="events for the raw COPY (default: as acked)")
    add_database_args(ap)
    args = ap.parse_args()

    import psycopg
    import yaml

    from tests.support.pg import drop_database

    server, dsn = fresh_database(args.database_url)
    work = Path(tempfile.mkdtemp(prefix="sluice-bench-"))
    cfg = {"sources": [{"name": "web", "write_key": WRITE_KEY}], "destinations": [], "connections": []}
    (work / "sluice.yaml").write_text(yaml.safe_dump(cfg))
    proc, url = start_sluice(work, dsn)
    try:
        ctx = mp.get_context("spawn")
        q: mp.Queue = ctx.Queue()
        p = ctx.Process(
            target=loadgen_main, args=(url, args.concurrency, args.warmup, args.duration, args.users, 42, q)
        )
        p.start()
        stats = q.get(timeout=args.warmup + args.duration + 120)
        p.join(30)

        with psycopg.connect(dsn) as conn:
            durable = conn.execute("SELECT count(*) FROM gateway_jobs").fetchone()[0]
        acked_total = stats["events"] + stats["warmup_events"]
    finally:
        stop_sluice(proc)

    events_per_s = stats["events"] / args.duration
    lat = stats["latencies_ms"]
    n_copy = args.copy_events or max(50_000, min(stats["events"], 300_000))
    copy_rate, copy_source = raw_copy_rate(dsn, n_copy, args.users, 42)
    per_request_rate = per_request_copy_rate(dsn, 5.0, args.users, 42)
    if not args.keep_db:
        drop_database(server, dsn)
    result = {
        "events_per_s": round(events_per_s, 1),
        "copy_events_per_s": round(copy_rate, 1),
        "ratio": round(events_per_s / copy_rate, 3),
        "p50_ms": round(_pct(lat, 0.50), 2),
        "p99_ms": round(_pct(lat, 0.99), 2),
        "requests": stats["requests"],
        "events": stats["events"],
        "copy_per_request_events_per_s": round(per_request_rate, 1),
        "mean_batch": round(stats["events"] / max(1, len(lat)), 1),
        "mb_per_s": round(stats["bytes"] / args.duration / 1e6, 2),
        "non200": stats["non200"],
        "errors": stats["errors"],
        "acked_total": acked_total,
        "durable_rows": durable,
        "copy_events": n_copy,
        "copy_source": copy_source,
        "duration_s": args.duration,
        "concurrency": args.concurrency,
        "users": args.users,
        "cpus": os.cpu_count(),
    }
    print(
        f"gateway: {events_per_s:,.0f} durable events/s over {args.duration:.0f}s "
        f"({stats['requests']} requests, batch 1..100, mean {result['mean_batch']}), "
        f"ack latency p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms, "
        f"non-200 {stats['non200']}, errors {stats['errors']}"
    )
    print(f"durability check: {durable} rows in gateway_jobs for {acked_total} acknowledged events")
    print(f"raw COPY of {n_copy} events ({copy_source}) into the same Postgres: {copy_rate:,.0f} events/s")
    print(f"for context, one COPY+commit per client batch (no group commit): {per_request_rate:,.0f} ev/s")
    print(f"ratio gateway/raw COPY: {result['ratio']}")
    if durable < acked_total:
        print("ERROR: fewer durable rows than acknowledged events", file=sys.stderr)
    print(json.dumps(result))
    return 0 if durable >= acked_total else 1


if __name__ == "__main__":
    raise SystemExit(main())
