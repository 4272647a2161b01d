"""Cost of the router's runtime-drift hook (``pipeline/router/telemetry.observe``) per vendor answer.

Runs ``Recorder.observe`` in a loop with a real connector (its cassettes as the baseline) on three kinds
of answer: the certified one (the common case: the body is recognised from a small cache), a body with
a shape never recorded (parsed and diffed each time, counted as a signal), and the certified body with a
``Sunset`` header (a header signal). No database: signals only accumulate in memory here.

    .venv/bin/python bench/telemetry.py [--connector mixpanel] [--n 20000]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.router.telemetry import Recorder  # noqa: E402
from sdk.delivery import DeliveryResult  # noqa: E402
from sdk.drift.cassettes import cassettes_folder, read_cassettes  # noqa: E402
from sdk.registry import load_connector  # noqa: E402
from sdk.request import VendorRequest  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--connector", default="mixpanel")
    ap.add_argument("--n", type=int, default=20000)
    args = ap.parse_args()
    connector = load_connector(args.connector)
    ex = read_cassettes(cassettes_folder(connector.folder))[0]
    req = VendorRequest(method=ex.method, url=ex.uri)
    certified = DeliveryResult(
        status=ex.status, headers=dict(ex.response_headers), body=ex.response_body.encode()
    )
    body = json.loads(ex.response_body or "{}")
    novel = [
        DeliveryResult(
            status=ex.status,
            headers=dict(ex.response_headers),
            body=json.dumps({**body, f"new_{i % 50}": i}).encode(),
        )
        for i in range(args.n)
    ]
    sunset = DeliveryResult(
        status=ex.status,
        headers={**ex.response_headers, "Sunset": "Wed, 01 Jul 2026 00:00:00 GMT"},
        body=ex.response_body.encode(),
    )
    recorded = len(read_cassettes(cassettes_folder(connector.folder)))
    print(
        f"connector {args.connector}: {recorded} recorded exchanges as baseline; body {len(certified.body)} B"
    )
    for label, answers in (
        ("certified answer", [certified] * args.n),
        ("never-recorded shape", novel),
        ("Sunset header", [sunset] * args.n),
    ):
        rec = Recorder(pool=None)
        rec.observe("bench", connector, [], req, certified)  # baseline loaded outside the timing
        started = time.perf_counter()
        for a in answers:
            rec.observe("bench", connector, [], req, a)
        per = (time.perf_counter() - started) / len(answers) * 1e6
        print(f"  {label:22} {per:7.1f} µs per answer ({len(answers)} answers, {len(rec.pending)} signals)")


if __name__ == "__main__":
    main()
