"""Transform throughput per connector: events/second on one core, on events drawn from its fixtures.

Spec parsing and mapping compilation happen once per connector (``Connector.from_folder``), outside the
timed loop, as in production. Each connector is looped for ~``--seconds`` in this single process; the
figure is events per second per core. The last line printed is one JSON object with all figures.

    .venv/bin/python bench/transform.py [--seconds 2] [--only amplitude,mixpanel]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sdk.connector import Connector  # noqa: E402
from sdk.errors import SluiceError  # noqa: E402
from sdk.registry import integration_folders  # noqa: E402
from sdk.testing.cases import load_cases  # noqa: E402


def bench_one(folder: Path, seconds: float) -> dict:
    t0 = time.perf_counter()
    conn = Connector.from_folder(folder)
    load_ms = (time.perf_counter() - t0) * 1000
    cases = [c for c in load_cases(folder) if c.response is not None and not (c.expect_error or c.problems)]
    usable = []
    for c in cases:
        try:
            c.run(conn)
            usable.append(c)
        except SluiceError:
            pass
    if not usable:
        return {"events_per_sec": None, "reason": "no success fixture transforms cleanly", "load_ms": load_ms}
    n = 0
    reqs = 0
    cpu0 = time.process_time()
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for c in usable:
            reqs += len(conn.transform(c.event, c.config, c.context()))
        n += len(usable)
        if time.perf_counter() >= deadline:
            break
    wall = time.perf_counter() - start
    cpu = time.process_time() - cpu0
    return {
        "events_per_sec": round(n / wall, 1),
        "events_per_cpu_sec": round(n / cpu, 1) if cpu > 0 else None,
        "events": n,
        "requests": reqs,
        "fixtures": len(usable),
        "load_ms": round(load_ms, 2),
        "seconds": round(wall, 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--only", default="", help="comma-separated integration names")
    args = ap.parse_args()
    only = {x for x in args.only.split(",") if x}
    results = {}
    for folder in integration_folders():
        if only and folder.name not in only:
            continue
        try:
            r = bench_one(folder, args.seconds)
        except SluiceError as e:
            r = {"events_per_sec": None, "reason": e.message}
        results[folder.name] = r
        eps = r["events_per_sec"]
        if eps:
            line = (
                f"{folder.name:<12} {eps:>10,.0f} events/s (wall), "
                f"{r['events_per_cpu_sec']:>10,.0f} per CPU-second"
                f"  ({r['fixtures']} fixtures, {r['requests']} requests, spec load {r['load_ms']:.1f} ms)"
            )
        else:
            line = f"{folder.name:<12} n/a: {r['reason']}"
        print(line, flush=True)
    print(
        json.dumps(
            {
                "bench": "transform",
                "unit": "events/s/core",
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
                "results": results,
            }
        )
    )


if __name__ == "__main__":
    main()
