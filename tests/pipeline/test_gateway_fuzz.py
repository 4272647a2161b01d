"""Fuzz the gateway with schemathesis, driven by the gateway's own /openapi.json (issue 11 item 12).

The fuzzer generates valid and invalid requests for every operation from the document the gateway
serves, sends them over loopback with a real write key, and checks each answer: never a 5xx, a status
the document lists, the content type and body schema it promises. Afterwards the process must still be
healthy, and some generated events must have got all the way into the queue (otherwise the document
would be too far from what the gateway accepts for the fuzzing to mean much).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from pipeline_helpers import WRITE_KEY, pipeline_config, sql

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


@pytest.mark.timeout(300)
def test_schemathesis_finds_no_5xx_and_the_gateway_stays_healthy(start_pipeline, pg_dsn, tmp_path):
    gw = start_pipeline(pipeline_config([]))
    report = tmp_path / "report.json"
    run = subprocess.run(
        [
            str(SCHEMATHESIS),
            "run",
            f"{gw.url}/openapi.json",
            "--auth",
            f"{WRITE_KEY}:",
            "--checks",
            CHECKS,
            "--max-examples",
            "15",
            "--seed",
            "11",
            "--workers",
            "2",
            "--phases",
            "examples,coverage,fuzzing",
            "--request-timeout",
            "20",
            "--suppress-health-check",
            "all",
            "--report",
            "json",
            "--report-json-path",
            str(report),
            "--warnings",
            "off",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    health = httpx.get(f"{gw.url}/health", timeout=10)
    assert health.status_code == 200 and health.json()["status"] == "ok", health.text
    stored = sql(pg_dsn, "SELECT count(*) FROM gateway_jobs")[0][0]
    assert stored >= 20, (
        f"only {stored} fuzzed events were accepted: the document is not what the gateway takes"
    )
    print(run.stdout[-1500:], json.dumps({"stored": stored}))
