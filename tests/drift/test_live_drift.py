"""`sluice drift live` against a loopback fake vendor whose answers change between runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.sink import Sink

from sdk.drift.live import env_name, live_drift, rebase

from .fakevendor import ANSWER, API_KEY, make_tree

SUNSET = "Wed, 01 Jul 2026 00:00:00 GMT"


@pytest.fixture
def vendor():
    with Sink() as s:
        s.respond(200, body=json.dumps(ANSWER))
        yield s


def _run(tree: Path, base_url: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = dict(os.environ, SLUICE_INTEGRATIONS_DIR=str(tree), **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "sdk.cli", "drift", "live", "fakevendor", "--base-url", base_url, "--json"],
        capture_output=True,
        text=True,
        env=full,
        timeout=120,
    )


def test_same_answers_no_drift_then_sunset_and_new_field(tmp_path: Path, vendor: Sink) -> None:
    tree = make_tree(tmp_path)
    base = f"http://127.0.0.1:{vendor.port}"
    key = "live-secret-from-env-77"
    env = {env_name("fakevendor", "apiKey"): key}

    first = _run(tree, base, env)
    assert first.returncode == 0, first.stdout + first.stderr
    report = json.loads(first.stdout)
    assert report["changes"] == [] and report["summary"]["breaking"] == 0
    [got] = vendor.attempts
    assert got.path == "/v1/events" and got.body == {"name": "Signed Up", "user": "u1"}
    assert got.headers["Authorization"] == f"Bearer {key}"  # the credential came from the environment

    # The vendor starts announcing a sunset and adds a field to its answer.
    vendor.respond(200, headers={"Sunset": SUNSET}, body=json.dumps({**ANSWER, "region": "eu-1"}))
    second = _run(tree, base, env)
    assert second.returncode == 0, second.stdout + second.stderr  # warnings, nothing breaking
    report = json.loads(second.stdout)
    kinds = {(c["severity"], c["kind"], c["where"]) for c in report["changes"]}
    assert ("warning", "sunset_header", "header Sunset") in kinds
    assert ("info", "response_field_added", "body /region") in kinds
    [sunset] = [c for c in report["changes"] if c["kind"] == "sunset_header"]
    assert sunset["new"] == SUNSET
    assert key not in second.stdout and API_KEY not in second.stdout

    # Then the vendor rejects what it used to accept: the classification changes, exit status 1.
    vendor.respond(200, body=json.dumps({"id": "evt_1", "status": "rejected"}))
    third = _run(tree, base, env)
    assert third.returncode == 1, third.stdout + third.stderr
    report = json.loads(third.stdout)
    assert [c["kind"] for c in report["changes"] if c["severity"] == "breaking"] == ["classification_changed"]


def test_removed_field_the_rules_read_is_breaking(tmp_path: Path, vendor: Sink) -> None:
    tree = make_tree(tmp_path)
    vendor.respond(200, body=json.dumps({"id": "evt_1"}))  # `status`, read by the spec's response rule, gone
    report = live_drift(tree / "fakevendor", f"http://127.0.0.1:{vendor.port}", env={})
    assert [(c.severity, c.kind, c.where) for c in report.changes] == [
        ("breaking", "response_field_removed", "body /status")
    ]


def test_without_credentials_and_base_url_nothing_is_sent(tmp_path: Path, vendor: Sink) -> None:
    tree = make_tree(tmp_path)
    report = live_drift(tree / "fakevendor", None, env={})
    assert vendor.attempts == []
    assert any("SLUICE_LIVE_FAKEVENDOR_APIKEY" in n for n in report.notes)


def test_rebase_keeps_path_and_query() -> None:
    assert (
        rebase("https://api.x.test/v1/e?a=1", "http://127.0.0.1:9/sandbox")
        == "http://127.0.0.1:9/sandbox/v1/e?a=1"
    )
    assert rebase("https://api.x.test/v1/e", None) == "https://api.x.test/v1/e"
