"""Before/after transform speed of two checkouts, interleaved: the ratio per connector, and its spread.

Absolute events per CPU-second move by ±5–10 % between processes on the same machine (CPU frequency, hash
seeds, the neighbours), so one run of each side says little. This runs ``bench/transform.py`` of each
checkout in turn, round after round (alternating which side goes first), on the same peer events, and
prints the median of each side, their ratio and the range of the per-round ratios.

    git worktree add /tmp/sluice-before <commit>
    .venv/bin/python bench/transform_compare.py --before /tmp/sluice-before \\
        --only amplitude,mixpanel,ga4,braze,customerio,webhook --rounds 7 \\
        --peer-cases ../shared/peer_cases/rudder

Both sides run with this checkout's interpreter (the same packages), each from its own folder.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent


def one_run(checkout: Path, name: str, seconds: float, peer_cases: Path) -> float | None:
    out = subprocess.run(
        [sys.executable, "bench/transform.py", "--seconds", str(seconds), "--only", name,
         "--peer-cases", str(peer_cases)],
        cwd=checkout, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    result = json.loads(out.strip().splitlines()[-1])["results"].get(name) or {}
    return result.get("events_per_cpu_sec")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", type=Path, required=True, help="the other checkout (e.g. a git worktree)")
    ap.add_argument("--after", type=Path, default=HERE)
    ap.add_argument("--only", required=True, help="comma-separated connector names")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=1.5)
    ap.add_argument("--peer-cases", type=Path, required=True)
    args = ap.parse_args()
    peer = args.peer_cases.resolve()
    names = [n for n in args.only.split(",") if n]
    runs: dict[str, dict[str, list[float]]] = {n: {"before": [], "after": []} for n in names}
    for r in range(args.rounds):
        for name in names:
            sides = [("before", args.before), ("after", args.after)]
            for label, checkout in sides if r % 2 == 0 else reversed(sides):
                v = one_run(checkout.resolve(), name, args.seconds, peer)
                if v:
                    runs[name][label].append(v)
    ratios = {}
    for name in names:
        b, a = runs[name]["before"], runs[name]["after"]
        if not b or not a:
            print(f"{name:<12} n/a (no events map on one side)")
            continue
        per_round = [x / y for x, y in zip(a, b, strict=False)]
        ratios[name] = statistics.median(a) / statistics.median(b)
        print(
            f"{name:<12} before {statistics.median(b):>9,.0f}  after {statistics.median(a):>9,.0f}"
            f" events/CPU-s  ratio {ratios[name]:.2f}  (rounds {min(per_round):.2f}-{max(per_round):.2f})",
            flush=True,
        )
    if ratios:
        geo = math.exp(sum(math.log(x) for x in ratios.values()) / len(ratios))
        print(f"geometric mean of the ratios: {geo:.2f} over {len(ratios)} connectors")
    print(json.dumps({"bench": "transform_compare", "rounds": args.rounds, "runs": runs, "ratios": ratios}))


if __name__ == "__main__":
    main()
