"""Transform throughput per connector: events/second on one core, on events drawn from its fixtures.

Spec parsing and mapping compilation happen once per connector (``Connector.from_folder``), outside the
timed loop, as in production. Each connector is looped for ~``--seconds`` in this single process; the
figure is events per second per core. The last line printed is one JSON object with all figures.

    .venv/bin/python bench/transform.py [--seconds 2] [--only amplitude,mixpanel]
    .venv/bin/python bench/transform.py --peer-cases ../shared/peer_cases/rudder   # the peer events instead

With ``--peer-cases DIR`` each connector cycles through the processor cases of its RudderStack type in DIR
that map to requests (events kept back from the project: they are read at run time, never stored here).
Compare before/after by running the same command on two checkouts in one sitting: absolute figures move
with the machine, ratios much less.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sdk.connector import Connector  # noqa: E402
from sdk.context import TransformContext  # noqa: E402
from sdk.errors import SluiceError  # noqa: E402
from sdk.registry import integration_folders  # noqa: E402
from sdk.testing.cases import load_cases  # noqa: E402


def _fixture_inputs(folder: Path, conn: Connector) -> list[tuple[dict, dict, Any]]:
    cases = [c for c in load_cases(folder) if c.response is not None and not (c.expect_error or c.problems)]
    out = []
    for c in cases:
        try:
            c.run(conn)
            out.append((c.event, c.config, c.context))
        except SluiceError:
            pass
    return out


def _peer_inputs(cases_dir: Path, conn: Connector) -> list[tuple[dict, dict, Any]]:
    """Processor cases of the connector's RudderStack type whose expected output is one or more requests."""
    names = {n.lower() for n in conn.spec.all_names}
    out = []
    for f in sorted(cases_dir.glob("*.json")):
        if f.stem.lower() not in names:
            continue
        for case in json.loads(f.read_text()):
            if case.get("feature") != "processor" or not (case.get("expected") or {}).get("requests"):
                continue
            event, config = case.get("event"), case.get("destination_config") or {}
            now = _case_now(case)
            seed = str(event.get("messageId") or "") if isinstance(event, dict) else ""

            def ctx(now: str = now, seed: str = seed) -> TransformContext:
                return TransformContext.at(now, seed=seed)

            try:
                conn.transform(copy.deepcopy(event), config, ctx())
            except SluiceError:
                continue
            out.append((event, config, ctx))
    return out


def _case_now(case: dict) -> str:
    """The frozen clock a peer case was written against (as the peer_check tool reads it)."""
    now: Any = None
    for h in case.get("test_hooks") or []:
        kind = h.get("kind")
        if kind == "setSystemTime":
            now = h.get("time")
        elif kind == "DateNowOverride":
            now = h.get("now")
        elif kind == "spyOn" and h.get("target") == "Date" and "returns" in h:
            now = h["returns"]
    if isinstance(now, int | float):
        now = dt.datetime.fromtimestamp(now / 1000, dt.UTC).isoformat()
    return now if isinstance(now, str) else "2024-05-01T12:00:00Z"


def bench_one(folder: Path, seconds: float, peer_cases: Path | None = None) -> dict:
    t0 = time.perf_counter()
    conn = Connector.from_folder(folder)
    load_ms = (time.perf_counter() - t0) * 1000
    usable = _peer_inputs(peer_cases, conn) if peer_cases else _fixture_inputs(folder, conn)
    if not usable:
        return {"events_per_sec": None, "reason": "no input event transforms cleanly", "load_ms": load_ms}
    n = 0
    reqs = 0
    cpu0 = time.process_time()
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for event, config, ctx in usable:
            reqs += len(conn.transform(event, config, ctx()))
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
    ap.add_argument("--peer-cases", type=Path, help="cycle the peer cases of each connector's type in DIR")
    args = ap.parse_args()
    only = {x for x in args.only.split(",") if x}
    results = {}
    for folder in integration_folders():
        if only and folder.name not in only:
            continue
        try:
            r = bench_one(folder, args.seconds, args.peer_cases)
        except SluiceError as e:
            r = {"events_per_sec": None, "reason": e.message}
        results[folder.name] = r
        eps = r["events_per_sec"]
        if eps:
            line = (
                f"{folder.name:<12} {eps:>10,.0f} events/s (wall), "
                f"{r['events_per_cpu_sec']:>10,.0f} per CPU-second"
                f"  ({r['fixtures']} input events, {r['requests']} requests, spec load {r['load_ms']:.1f} ms)"
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
