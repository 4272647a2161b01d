"""End-to-end benchmark: events in through the gateway, out through Amplitude (batching) and the webhook.

What it measures, in one run on one machine:
* ``delivered_events_per_s``: events the fake vendor acknowledged per second, per connector, during the
  timed window (an Amplitude batch of 2,000 events counts 2,000);
* ``ack_to_delivery_p50_ms`` / ``p99_ms``, per connector: from the gateway's 200 for the batch holding
  an event to the fake vendor receiving that event (same clock: CLOCK_MONOTONIC is system-wide);
* ``events_per_s``: events the gateway acknowledged per second in the same window.

How:
1. a fake vendor (its own process, a bare HTTP/1.1 server on loopback) answers 200 to everything and
   records when each event arrived (Amplitude's ``insert_id`` / the webhook body's ``messageId``);
2. ``sluice up`` (a subprocess, certified connectors only unless ``--allow-uncertified``) runs with two
   destinations, Amplitude and the webhook, both sent to the fake vendor through their ``base_url``
   override (the SSRF allow-list admits 127.0.0.0/8 for it);
3. a load generator (its own process) posts Segment-style ``/v1/batch`` requests (1..100 events, 10,000
   users with a hot-user skew, every messageId unique) on keep-alive connections, as fast as the
   gateway answers (default) or at ``--rate`` events/s; a warm-up, then ``--duration`` timed seconds;
4. after the load stops it waits (up to ``--drain``) for the events acknowledged in the window to reach
   the vendor, then computes the latencies.

Usage:  .venv/bin/python bench/pipeline.py [--duration 20] [--rate 0] [--allow-uncertified]
        (uses $DATABASE_URL / $SLUICE_TEST_DATABASE_URL if set, else the embedded local Postgres)
The last output line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import re
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.gateway import (  # noqa: E402
    _free_port,
    _pct,
    add_database_args,
    fresh_database,
    make_batches,
    start_sluice,
    stop_sluice,
)

WRITE_KEY = "bench-write-key"
AMPLITUDE_KEY = "bench-amplitude-key"
_MID_SLOT = b"@@@@@@@@"  # replaced per request by its sequence number, so every messageId is unique
_INSERT_ID = re.compile(rb'"insert_id":"([^"]+)"')
_MESSAGE_ID = re.compile(rb'"messageId":"([^"]+)"')


# -- fake vendor ----------------------------------------------------------------------------------
def vendor_main(port: int, stop: mp.Event, out: mp.Queue) -> None:
    """Answer 200 to every request; record each event's arrival (monotonic) by connector."""
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    arrivals: dict[str, dict[bytes, float]] = {"amplitude": {}, "webhook": {}}
    counts = {"requests": 0, "amplitude_requests": 0, "webhook_requests": 0}
    reply = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{"code": 200}'

    class Vendor(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport
            self.buf = b""

        def data_received(self, data: bytes) -> None:
            self.buf += data
            while True:
                head_end = self.buf.find(b"\r\n\r\n")
                if head_end < 0:
                    return
                head = self.buf[:head_end].lower()
                m = re.search(rb"\r\ncontent-length:\s*(\d+)", head)
                length = int(m.group(1)) if m else 0
                end = head_end + 4 + length
                if len(self.buf) < end:
                    return
                path = head.split(b" ", 2)[1]
                body = self.buf[head_end + 4 : end]
                self.buf = self.buf[end:]
                now = time.monotonic()
                counts["requests"] += 1
                if path.startswith(b"/amplitude"):
                    counts["amplitude_requests"] += 1
                    seen = arrivals["amplitude"]
                    for mid in _INSERT_ID.findall(body):
                        seen.setdefault(mid, now)
                elif path.startswith(b"/webhook"):
                    counts["webhook_requests"] += 1
                    m2 = _MESSAGE_ID.search(body)
                    if m2:
                        arrivals["webhook"].setdefault(m2.group(1), now)
                self.transport.write(reply)  # type: ignore[attr-defined]

    async def run() -> None:
        server = await asyncio.get_running_loop().create_server(Vendor, "127.0.0.1", port, backlog=1024)
        while not stop.is_set():
            await asyncio.sleep(0.1)
        server.close()

    asyncio.run(run())
    out.put({"counts": counts, "arrivals": arrivals})


# -- load generator -------------------------------------------------------------------------------
def loadgen_main(
    url: str, concurrency: int, rate: float, warmup_s: float, duration_s: float, users: int, out: mp.Queue
) -> None:
    """Posts pre-serialised batches; records (sequence, ack time, events) of every acknowledged request."""
    import base64
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    auth = base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
    templates = []
    for b in make_batches(2000, users, seed=7):
        for k, e in enumerate(b):
            e["messageId"] = f"{_MID_SLOT.decode()}-{k}"
        body = json.dumps({"batch": b}, separators=(",", ":")).encode()
        head = (
            f"POST /v1/batch HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Basic {auth}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        templates.append((head + body, len(b)))

    async def run() -> dict:
        t_start = time.monotonic()
        t_measure = t_start + warmup_s
        t_end = t_measure + duration_s
        acked: list[tuple[int, float, int]] = []  # (seq, ack time, events) of every 200, warm-up included
        stats = {"window_events": 0, "non200": 0, "errors": 0}
        seq = [0]
        # Open loop at `rate`: a shared schedule of request start times (mean batch ~50 events).
        interval = 50.0 / rate if rate > 0 else 0.0
        next_at = [t_start]

        async def worker(i: int) -> None:
            conn = None
            while time.monotonic() < t_end:
                if interval:
                    start = next_at[0]
                    next_at[0] += interval
                    delay = start - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                seq[0] += 1
                n_seq = seq[0]
                template, n = templates[n_seq % len(templates)]
                req = template.replace(_MID_SLOT, b"%08d" % n_seq)
                try:
                    if conn is None:
                        conn = await asyncio.open_connection(host, port)
                    conn[1].write(req)
                    status = int((await conn[0].readline()).split()[1])
                    length = 0
                    while True:
                        line = await conn[0].readline()
                        if line in (b"\r\n", b""):
                            break
                        if line.lower().startswith(b"content-length:"):
                            length = int(line.split(b":")[1])
                    if length:
                        await conn[0].readexactly(length)
                except (OSError, ValueError, IndexError, asyncio.IncompleteReadError):
                    stats["errors"] += 1
                    if conn is not None:
                        conn[1].close()
                    conn = None
                    await asyncio.sleep(0.05)
                    continue
                t_ack = time.monotonic()
                if status == 200:
                    acked.append((n_seq, t_ack, n))
                    if t_measure <= t_ack < t_end:
                        stats["window_events"] += n
                else:
                    stats["non200"] += 1
                    await asyncio.sleep(0.05)
            if conn is not None:
                conn[1].close()

        await asyncio.gather(*(worker(i) for i in range(concurrency)))
        return {**stats, "acked": acked, "t_measure": t_measure, "t_end": t_end}

    out.put(asyncio.run(run()))


# -- where the CPU goes ---------------------------------------------------------------------------
def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _children(pid: int) -> list[int]:
    try:
        return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


class CpuSampler(threading.Thread):
    """Every 0.5 s, the CPU seconds used so far by each part of the run (Postgres: the backends serving
    this run's database, found in pg_stat_activity), so a window's share of each can be computed."""

    def __init__(self, dsn: str, pids: dict[str, int]):
        super().__init__(daemon=True)
        self.dsn = dsn
        self.pids = pids
        self.samples: list[tuple[float, dict[str, float]]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while not self.stop.is_set():
                backends = [
                    r[0]
                    for r in conn.execute(
                        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                        "AND pid <> pg_backend_pid()"
                    ).fetchall()
                ]
                now = time.monotonic()
                sample = {name: _cpu_seconds(pid) for name, pid in self.pids.items() if name != "gateway"}
                sample["gateway"] = _cpu_seconds(self.pids["gateway"])
                sample["workers"] = sum(_cpu_seconds(c) for c in _children(self.pids["gateway"]))
                # Backends are long-lived (connection pools): a backend that comes and goes is missed.
                for b in backends:
                    sample[f"pg:{b}"] = _cpu_seconds(b)
                self.samples.append((now, sample))
                self.stop.wait(0.5)

    def window(self, t0: float, t1: float) -> dict[str, float]:
        """CPU seconds each part used between the samples nearest to ``t0`` and ``t1``."""
        a = min(self.samples, key=lambda s: abs(s[0] - t0))[1]
        b = min(self.samples, key=lambda s: abs(s[0] - t1))[1]
        out = {k: b[k] - a.get(k, b[k]) for k in b if not k.startswith("pg:")}
        out["postgres"] = sum(b[k] - a[k] for k in b if k.startswith("pg:") and k in a)
        return {k: round(v, 2) for k, v in out.items()}


# -- the run --------------------------------------------------------------------------------------
def pipeline_config(vendor: str) -> dict:
    return {
        "sources": [{"name": "web", "write_key": WRITE_KEY}],
        "destinations": [
            {
                "name": "amplitude",
                "integration": "amplitude",
                "config": {"apiKey": AMPLITUDE_KEY},
                "base_url": f"{vendor}/amplitude",
            },
            {
                "name": "webhook",
                "integration": "webhook",
                "config": {"webhookUrl": "https://hooks.example.com/sluice"},
                "base_url": f"{vendor}/webhook",
            },
        ],
        "connections": [{"source": "web", "destinations": ["amplitude", "webhook"]}],
        "network": {"allow_private": ["127.0.0.0/8"]},
        # Back-pressure: past this many unprocessed events the gateway answers 503, so a run at full
        # speed measures what the whole pipeline sustains, not how fast an unbounded queue grows.
        "gateway": {"max_unprocessed": 20_000},
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=20.0, help="timed seconds (after warm-up)")
    ap.add_argument("--warmup", type=float, default=5.0)
    ap.add_argument("--drain", type=float, default=60.0, help="most seconds to wait for the window's events")
    ap.add_argument("--rate", type=float, default=0.0, help="events/s offered (0: as fast as acknowledged)")
    ap.add_argument("--concurrency", type=int, default=16, help="client connections")
    ap.add_argument("--users", type=int, default=10_000)
    ap.add_argument("--allow-uncertified", action="store_true", help="pass --allow-uncertified to sluice up")
    add_database_args(ap)
    args = ap.parse_args()

    import psycopg
    import yaml

    from tests.support.pg import drop_database

    server, dsn = fresh_database(args.database_url)
    work = Path(tempfile.mkdtemp(prefix="sluice-bench-"))
    ctx = mp.get_context("spawn")
    vport = _free_port()
    vstop = ctx.Event()
    vout: mp.Queue = ctx.Queue()
    vendor = ctx.Process(target=vendor_main, args=(vport, vstop, vout))
    vendor.start()
    (work / "sluice.yaml").write_text(yaml.safe_dump(pipeline_config(f"http://127.0.0.1:{vport}")))
    proc, url = start_sluice(work, dsn, ("--allow-uncertified",) if args.allow_uncertified else ())
    try:
        lq: mp.Queue = ctx.Queue()
        lg = ctx.Process(
            target=loadgen_main,
            args=(url, args.concurrency, args.rate, args.warmup, args.duration, args.users, lq),
        )
        lg.start()
        sampler = CpuSampler(dsn, {"gateway": proc.pid, "vendor": vendor.pid, "loadgen": lg.pid})
        sampler.start()
        load = lq.get(timeout=args.warmup + args.duration + 120)
        lg.join(30)
        sampler.stop.set()
        sampler.join(10)
        cpu = sampler.window(load["t_measure"], load["t_end"])
        # Wait for the window's events to reach the vendor (or for the drain time to run out).
        window = [(s, t, n) for s, t, n in load["acked"] if load["t_measure"] <= t < load["t_end"]]
        expected = sum(n for _, _, n in window)
        with psycopg.connect(dsn, autocommit=True) as conn:
            drain_end = time.monotonic() + args.drain
            while time.monotonic() < drain_end:
                pending = conn.execute(
                    "SELECT count(*) FROM delivery_jobs WHERE state IN ('pending', 'failed')"
                ).fetchone()[0]
                behind = conn.execute(
                    "SELECT (SELECT last_value FROM gateway_jobs_id_seq) - last_id FROM processor_cursor"
                ).fetchone()[0]
                if pending == 0 and behind <= 0:
                    break
                time.sleep(0.5)
            states = dict(
                conn.execute(
                    "SELECT destination || ':' || state, count(*) FROM delivery_jobs GROUP BY 1"
                ).fetchall()
            )
            dead = conn.execute("SELECT count(*) FROM dead_letters").fetchone()[0]
    finally:
        stop_sluice(proc)
        vstop.set()
    vres = vout.get(timeout=120)
    vendor.join(30)
    if not args.keep_db:
        drop_database(server, dsn)

    t0, t1 = load["t_measure"], load["t_end"]
    result: dict = {
        "delivered_events_per_s": {},
        "ack_to_delivery_p50_ms": {},
        "ack_to_delivery_p99_ms": {},
        "undelivered_after_drain": {},
    }
    for name, seen in vres["arrivals"].items():
        in_window = sum(1 for t in seen.values() if t0 <= t < t1)
        lat = []
        missing = 0
        for s, t_ack, n in window:
            for k in range(n):
                arrived = seen.get(b"%08d-%d" % (s, k))
                if arrived is None:
                    missing += 1
                else:
                    lat.append((arrived - t_ack) * 1000)
        result["delivered_events_per_s"][name] = round(in_window / args.duration, 1)
        result["ack_to_delivery_p50_ms"][name] = round(_pct(lat, 0.50), 1)
        result["ack_to_delivery_p99_ms"][name] = round(_pct(lat, 0.99), 1)
        result["undelivered_after_drain"][name] = missing
    result.update(
        {
            "events_per_s": round(load["window_events"] / args.duration, 1),
            "window_events": expected,
            "gateway_non200": load["non200"],
            "gateway_errors": load["errors"],
            "vendor_requests": vres["counts"],
            "cpu_s_in_window": cpu,
            "cpu_cores_busy": round(sum(cpu.values()) / args.duration, 2),
            "job_states": states,
            "dead_letters": dead,
            "duration_s": args.duration,
            "rate": args.rate or "max",
            "users": args.users,
            "cpus": os.cpu_count(),
        }
    )
    for name in ("amplitude", "webhook"):
        r = {k: v[name] for k, v in result.items() if isinstance(v, dict) and name in v}
        print(
            f"{name}: {r['delivered_events_per_s']:,.0f} events/s delivered, ack->delivery "
            f"p50 {r['ack_to_delivery_p50_ms']} ms, p99 {r['ack_to_delivery_p99_ms']} ms, "
            f"{r['undelivered_after_drain']} of the window's events not delivered after the drain"
        )
    print(f"gateway: {result['events_per_s']:,.0f} events/s acknowledged in the same window")
    print(f"CPU seconds in the {args.duration:.0f} s window: {cpu} ({result['cpu_cores_busy']} cores busy)")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
