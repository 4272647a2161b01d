"""The contract suite's oracle is independent of the code under test.

* expectations are person-written and never regenerated from the connector's output: a wrong mapping
  whose cassettes were rebuilt is still caught; drafts are refused until accepted;
* classification expectations are data (fixture / documented responses), with per-job outcomes;
* certification binds the engine: an SDK change makes `sluice certify --check` fail and loading refuse;
* live recording takes credentials from the environment and never writes them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from io import StringIO
from pathlib import Path

import pytest

from sdk.classify import Outcome, ResponseRule, classify_response
from sdk.cli.classify import run_jsonl
from sdk.connector import Connector
from sdk.registry import clear_caches
from sdk.request import VendorRequest
from sdk.testing.cases import build_cassettes, load_cases, read_cassette, secret_values
from sdk.testing.expect import json_diff, parse_expectation, request_diff
from sdk.testing.record import RecordError, record_integration
from sdk.testing.replay import replay_case

from .conftest import REPO, run_cli


def _suite(integrations: Path, *k: str, sdk_path: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, SLUICE_INTEGRATIONS_DIR=str(integrations))
    if sdk_path is not None:
        env["PYTHONPATH"] = str(sdk_path)
    args = [sys.executable, "-m", "pytest", str(REPO / "contract_tests"), "-q", "-p", "no:cacheprovider"]
    args += ["-o", "addopts=", "--import-mode=importlib"] + (["-k", " or ".join(k)] if k else [])
    return subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


# --------------------------------------------------------------------------------------------------
# Expectations
# --------------------------------------------------------------------------------------------------
def test_wrong_mapping_with_rebuilt_cassettes_is_still_caught(tree: Path) -> None:
    folder = tree / "demo"
    fixture = folder / "fixtures" / "track_basic.json"
    before = json.loads(fixture.read_text())["expect"]
    spec = folder / "spec.yaml"
    # a plausible bug: the user id taken from the anonymous id first
    spec.write_text(spec.read_text().replace("userId ?? anonymousId", "anonymousId ?? userId"))
    event = json.loads(fixture.read_text())
    event["event"]["anonymousId"] = "anon-9"
    fixture.write_text(json.dumps(event, indent=2))
    clear_caches()
    drafted: list[str] = []
    build_cassettes(Connector.from_folder(folder), folder, drafted=drafted)
    assert drafted == []
    assert json.loads(fixture.read_text())["expect"] == before  # an accepted expectation is never rewritten
    r = _suite(tree, "expected_request", "cassette_replay")
    assert r.returncode == 1, r.stdout[-2000:]
    assert "FAILED" in r.stdout and "test_expected_request[demo-track_basic]" in r.stdout
    assert "test_cassette_replay[demo-track_basic] PASSED" not in r.stdout
    assert 'json $.user_id: expected "user-1", got "anon-9"' in r.stdout


def test_draft_is_refused_until_accepted_and_accept_shows_the_diff(tree: Path) -> None:
    fixture = tree / "demo" / "fixtures" / "track_basic.json"
    data = json.loads(fixture.read_text())
    data.pop("expect")
    fixture.write_text(json.dumps(data, indent=2))
    build = run_cli("cassettes", "build", "demo", env_dir=tree)
    assert build.returncode == 0, build.stderr
    assert "drafted expectation in fixtures/track_basic.json" in build.stdout
    draft = json.loads(fixture.read_text())["expect"]
    assert draft["status"] == "draft" and draft["requests"][0]["json"]["user_id"] == "user-1"
    r = _suite(tree, "expected_request")
    assert r.returncode == 1 and "is a draft drafted from the connector's own output" in r.stdout
    # accepting needs the person to say which docs it follows
    refused = run_cli("cassettes", "build", "demo", "--accept", env_dir=tree)
    assert refused.returncode == 1 and "doc.url and doc.section" in refused.stderr
    draft["doc"] = {"url": "https://example.com/demo/api-docs", "section": "POST /v1/events"}
    draft["requests"][0]["json"]["time"] = 1  # corrected by hand from the docs: now differs from the output
    data["expect"] = draft
    fixture.write_text(json.dumps(data, indent=2))
    ok = run_cli("cassettes", "build", "demo", "--accept", env_dir=tree)
    assert ok.returncode == 0, ok.stderr
    assert "accepted the expectation of track_basic" in ok.stdout
    assert "json $.time: expected 1, got 1714564800000" in ok.stdout
    accepted = json.loads(fixture.read_text())["expect"]
    assert accepted["status"] == "accepted" and accepted["requests"][0]["json"]["time"] == 1
    run_cli("cassettes", "build", "demo", env_dir=tree)
    assert json.loads(fixture.read_text())["expect"] == accepted


def test_expectation_comparison_is_semantic() -> None:
    assert json_diff({"a": 1, "b": [1, 2]}, {"b": [1, 2], "a": 1.0}) == []
    assert json_diff({"a": True}, {"a": 1}) == ["$.a: expected true, got 1"]
    assert json_diff({"a": 1}, {"a": 1, "x": 2}) == ["$.x: not expected (got 2)"]
    assert json_diff({"id": {"$type": "string"}}, {"id": "abc"}) == []
    assert json_diff({"id": {"$regex": "m-[0-9]+"}}, {"id": "m-x"}) != []
    req = VendorRequest(
        method="POST",
        url="https://api.test/v1/x?b=2",
        params={"a": "1"},
        headers={"Authorization": "Basic dTpw"},
        form={"api_key": "k", "payload": {"z": 1, "y": [True]}},
    )
    exp = {
        "method": "post",
        "url": "https://api.test/v1/x",
        "query": {"a": "1", "b": "2"},
        "headers": {"authorization": {"basic": ["u", "p"]}, "X-Absent": None},
        "form": {"payload": {"y": [True], "z": 1}, "api_key": "k"},
    }
    assert request_diff(exp, req) == []
    assert request_diff(dict(exp, query={"a": "2"}), req) == [
        'query .a: expected "2", got "1"',
        'query .b: not expected (got "2")',
    ]
    bad = parse_expectation(
        {"status": "accepted", "requests": [{"method": "POST", "url": "https://x"}]}, "f.json"
    )
    assert bad is not None and any("doc.url and doc.section" in p for p in bad.problems)


# --------------------------------------------------------------------------------------------------
# Classification
# --------------------------------------------------------------------------------------------------
PARTIAL = ResponseRule.model_validate(
    {
        "when": {"status": [207]},
        "outcome": "success",
        "per_job": {"items": "batch", "failed": ["errors"], "index": "batch_index", "message": ["message"]},
    }
)


def test_per_job_outcomes_from_the_job_count_and_from_job_bodies() -> None:
    body = {"errors": [{"batch_index": 1, "message": "too long"}]}
    request = {"batch": [{"id": 1}, {"id": 2}, {"id": 3}]}
    c = classify_response(207, {}, json.dumps(body), [PARTIAL], request=request, jobs=3)
    assert c.outcome is Outcome.SUCCESS
    assert [j.outcome for j in c.jobs or []] == [Outcome.SUCCESS, Outcome.ABORT, Outcome.SUCCESS]
    assert "too long" in (c.jobs or [])[1].reason
    # jobs of unequal size: the second job owns items 1 and 2
    c = classify_response(
        207,
        {},
        body,
        [PARTIAL],
        request=request,
        jobs=[{"batch": [{"id": 1}]}, {"batch": [{"id": 2}, {"id": 3}]}],
    )
    assert [j.outcome for j in c.jobs or []] == [Outcome.SUCCESS, Outcome.ABORT]
    # the router's own job requests (unwrapped operations, enveloped only when sent)
    wrapped = PARTIAL.model_copy(update={"per_job": PARTIAL.per_job.model_copy(update={"wrapped": True})})
    jobs = [VendorRequest(url="https://x/api/v2/batch", json={"id": i}) for i in (1, 2, 3)]
    c3 = classify_response(
        207, {}, body, [wrapped], request=VendorRequest(url="https://x", json=request), jobs=jobs
    )
    assert [j.outcome for j in c3.jobs or []] == [Outcome.SUCCESS, Outcome.ABORT, Outcome.SUCCESS]
    # ambiguous (3 items, 2 jobs, no bodies): no per-job split rather than a wrong one
    assert classify_response(207, {}, body, [PARTIAL], request=request, jobs=2).jobs is None
    assert c.job_outcomes(2)[1].outcome is Outcome.ABORT
    assert classify_response(500, {}, "").job_outcomes(2)[0].outcome is Outcome.RETRY


def test_classify_jsonl_answers_every_line_and_survives_unknown_destinations() -> None:
    lines = [
        {"destination": "nope", "events": 1, "request": {}, "response": {"status": 200, "body": {}}},
        "not json",
        {
            "destination": "CUSTOMERIO",
            "events": 2,
            "request": {
                "method": "POST",
                "url": "https://track.customer.io/api/v2/batch",
                "body": {"batch": [{}, {}]},
            },
            "response": {
                "status": 207,
                "headers": {},
                "body": {"errors": [{"batch_index": 0, "reason": "invalid"}]},
            },
        },
        {
            "destination": "am",
            "events": 1,
            "request": {},
            "response": {"status": 429, "body": {"throttled_users": {}}},
        },
    ]
    out = StringIO()
    run_jsonl(StringIO("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n"), out)
    got = [json.loads(x) for x in out.getvalue().splitlines()]
    assert len(got) == 4
    assert got[0]["error"]["type"] == "unknown_destination"
    assert got[1]["error"]["type"] == "invalid_json"
    assert got[2]["events"] == ["abort", "success"] and got[2]["outcome"] == "success"
    assert got[3]["outcome"] == "throttle"


# --------------------------------------------------------------------------------------------------
# Certification binds the engine
# --------------------------------------------------------------------------------------------------
def test_engine_change_fails_certify_check_and_loading(tree: Path, tmp_path: Path) -> None:
    engine = tmp_path / "engine"
    shutil.copytree(REPO / "sdk", engine / "sdk", ignore=shutil.ignore_patterns("__pycache__"))
    (engine / "contract_tests").symlink_to(REPO / "contract_tests")  # the suite `certify` runs
    env = dict(os.environ, SLUICE_INTEGRATIONS_DIR=str(tree), PYTHONPATH=str(engine))

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "sdk.cli", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )

    assert cli("cassettes", "build", "demo").returncode == 0
    first = cli("certify", "demo")
    assert first.returncode == 0, first.stdout[-3000:]
    same = cli("certify", "demo", "--check")
    assert same.returncode == 0 and "certificate up to date" in same.stdout, same.stdout[-3000:]
    # an engine change that alters no fixture output still voids the certificate
    cls = engine / "sdk" / "classify.py"
    cls.write_text(cls.read_text() + "\n# a reviewer must see this change\n")
    changed = cli("certify", "demo", "--check")
    assert changed.returncode == 1
    assert "engine_hash: an SDK module that affects output or classification changed" in changed.stdout
    listing = json.loads(cli("list", "--json").stdout)
    assert listing[0]["certified"] is False and "different engine" in listing[0]["reason"]


# --------------------------------------------------------------------------------------------------
# Live recording against a loopback fake vendor
# --------------------------------------------------------------------------------------------------
class _FakeVendor(BaseHTTPRequestHandler):
    seen: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        _FakeVendor.seen.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
        payload = json.dumps({"accepted": 1, "echo_key": self.headers.get("Authorization")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Set-Cookie", "session=live-cookie-123")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


def test_record_live_against_a_loopback_vendor(tree: Path) -> None:
    folder = tree / "demo"
    with pytest.raises(RecordError, match="SLUICE_RECORD_DEMO_APIKEY"):
        record_integration(folder, base_url="http://127.0.0.1:9", environ={})
    server = HTTPServer(("127.0.0.1", 0), _FakeVendor)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _FakeVendor.seen = []
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        results = record_integration(
            folder, base_url=base, environ={"SLUICE_RECORD_DEMO_APIKEY": "live-key-777"}
        )
    finally:
        server.shutdown()
        thread.join(timeout=5)
    assert [r.ok for r in results] == [True], [r.summary for r in results]
    assert (
        _FakeVendor.seen[0]["path"] == "/v1/events" and _FakeVendor.seen[0]["auth"] == "Bearer live-key-777"
    )
    path = tree.parent / "cassettes" / "demo" / "track_basic.yaml"
    text = path.read_text()
    assert "live-key-777" not in text and "live-cookie-123" not in text and "test-api-key-demo" not in text
    prov = read_cassette(path)["metadata"]["provenance"]
    assert prov["source"] == "live" and prov["endpoint"] == [f"{base}/v1/events"]
    assert prov["vendor_api_version"] and prov["recorded_at"]
    # the recording replays against the connector run with the fixture's fake credentials
    conn = Connector.from_folder(folder)
    case = next(c for c in load_cases(folder) if c.name == "track_basic")
    _, answers = replay_case(conn, case, path, secret_values(conn, [case.config]))
    assert answers[0].status == 200 and b"<REDACTED>" in answers[0].body
    # and `cassettes build` keeps the live recording
    kept: list[str] = []
    build_cassettes(conn, folder, kept_live=kept)
    assert kept == ["track_basic"] and path.read_text() == text
