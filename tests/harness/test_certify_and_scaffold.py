"""Scaffold → lint → contract suite → certify → load_certified, end to end in a throw-away tree.

The contract suite and `sluice certify` run in subprocesses with SLUICE_INTEGRATIONS_DIR pointing at the
tmp tree, exactly as a contributor would run them.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sdk.certification import CheckResult, read_certification, write_certification
from sdk.errors import CertificationError
from sdk.registry import clear_caches, load_certified
from sdk.scaffold import scaffold
from sdk.testing.lint import lint_integration

from .conftest import REPO, run_cli


def _contract_suite(integrations: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, SLUICE_INTEGRATIONS_DIR=str(integrations))
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(REPO / "contract_tests"),
            "-q",
            "-p",
            "no:cacheprovider",
            "-o",
            "addopts=",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_new_integration_fails_validate_and_contract_with_actionable_messages(tmp_path: Path) -> None:
    integrations = tmp_path / "integrations"
    integrations.mkdir()
    r = run_cli("new", "acme_crm", env_dir=integrations)
    assert r.returncode == 0, r.stderr
    folder = integrations / "acme_crm"
    assert (folder / "spec.yaml").exists() and (folder / "README.md").exists()
    assert (tmp_path / "cassettes" / "acme_crm").is_dir()
    problems = "\n".join(lint_integration(folder))
    assert "README.md still has TODO" in problems
    assert "placeholder https://api.example.com" in problems and "placeholder https://example.com" in problems
    assert "fixtures/track_basic.json still has TODO values" in problems
    validate = run_cli("validate", "acme_crm", env_dir=integrations)
    assert validate.returncode == 1 and "README.md still has TODO" in validate.stdout
    # refusing to overwrite
    again = run_cli("new", "acme_crm", env_dir=integrations)
    assert again.returncode != 0 and "already exists" in again.stderr

    out = _contract_suite(integrations)
    assert out.returncode != 0
    text = out.stdout
    assert "still contains TODO placeholders" in text and "track_basic.json" in text
    assert "run `sluice cassettes build acme_crm`" in text
    assert "the vendor's documented response" in text


def test_certify_then_edit_is_refused_at_load(tree: Path) -> None:
    assert run_cli("cassettes", "build", "demo", env_dir=tree).returncode == 0
    r = run_cli("certify", "demo", "--json", env_dir=tree)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    cert = read_certification(tree / "demo")
    assert cert is not None and cert.sdk_version
    checks = {c.name: c for c in cert.checks}
    for name in ("spec_lint", "cassette_replay", "cassette_classified", "error_path", "fuzz", "fixture_case"):
        assert checks[name].passed > 0 and checks[name].failed == 0, name
    assert checks["error_path"].passed == 10
    # 200 fuzzed events for the one event type, some mapped to requests, the rest typed errors
    assert checks["fuzz_examples"].passed == 200
    assert checks["fuzz_requests"].passed > 0
    assert checks["fuzz_requests"].passed + checks["fuzz_typed_errors"].passed == 200
    assert (cert.expires_at - cert.certified_at).days == 90
    assert any(f.startswith("cassettes/demo/") for f in cert.files)

    clear_caches()
    assert load_certified("demo").name == "demo"
    listing = json.loads(run_cli("list", "--json", env_dir=tree).stdout)
    assert listing[0]["certified"] is True

    spec = tree / "demo" / "spec.yaml"
    spec.write_text(spec.read_text().replace("Sends events to Demo.", "Sends events to Demo, edited."))
    clear_caches()
    with pytest.raises(CertificationError, match="files changed since certification"):
        load_certified("demo")
    assert load_certified("demo", allow_uncertified=True).name == "demo"
    listing = json.loads(run_cli("list", "--json", env_dir=tree).stdout)
    assert listing[0]["certified"] is False and "changed" in listing[0]["reason"]


def test_cassette_edit_voids_certification(tree: Path) -> None:
    assert run_cli("cassettes", "build", "demo", env_dir=tree).returncode == 0
    write_certification(tree / "demo", [CheckResult(name="spec_lint", passed=1)])
    clear_caches()
    load_certified("demo")
    cassette = tree.parent / "cassettes" / "demo" / "track_basic.yaml"
    cassette.write_text(cassette.read_text() + "\n# tampered\n")
    clear_caches()
    with pytest.raises(CertificationError):
        load_certified("demo")


def test_expired_or_failed_certification_is_refused(tree: Path) -> None:
    long_ago = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    write_certification(tree / "demo", [CheckResult(name="spec_lint", passed=1)], now=long_ago)
    clear_caches()
    with pytest.raises(CertificationError, match="expired"):
        load_certified("demo")
    write_certification(tree / "demo", [CheckResult(name="fuzz", passed=3, failed=1)])
    with pytest.raises(CertificationError, match="failing checks"):
        load_certified("demo")
    assert load_certified("demo", allow_uncertified=True).name == "demo"


def test_uncertified_is_refused(tree: Path) -> None:
    with pytest.raises(CertificationError, match="never certified"):
        load_certified("demo")


def test_failing_suite_does_not_certify(tree: Path) -> None:
    # no cassettes built: replay fails, so certify must exit non-zero and record the failure
    r = run_cli("certify", "demo", env_dir=tree)
    assert r.returncode != 0
    assert "NOT certified demo" in r.stdout
    cert = read_certification(tree / "demo")
    assert cert is not None and any(c.failed for c in cert.checks)
    clear_caches()
    with pytest.raises(CertificationError):
        load_certified("demo")


def test_validate_reports_problems_with_file_and_key(tmp_path: Path) -> None:
    integrations = tmp_path / "integrations"
    integrations.mkdir()
    scaffold("shop", integrations)
    spec = integrations / "shop" / "spec.yaml"
    spec.write_text(
        spec.read_text()
        .replace("apiKey: {type: string, secret: true,", "apiKey: {type: string,")
        .replace("event_types: [track]", "event_types: [track, identify]")
        .replace("mappings:\n", "mappings:\n  identify: {endpoint: default, body: {user_id: let.user_id}}\n")
    )
    (integrations / "shop" / "mapper.py").write_text(
        "from sdk.mapping.paths import get\n\ndef helper(x):\n    return x\n\n"
        "def used(value, event):\n    return get(event, 'a')\n"
    )
    text = spec.read_text()
    spec.write_text(text.replace("user_id: let.user_id", "user_id: {call: used, with: let.user_id}"))
    r = run_cli("validate", "shop", env_dir=integrations)
    assert r.returncode == 1
    out = r.stdout
    assert "settings.properties.apiKey: looks like a credential; add `secret: true`" in out
    assert "no success case for 'identify' events" in out
    assert "mapper.py helper(): no `refine: helper` or `call: helper` in spec.yaml uses it" in out
    assert "mapper.py used(): takes 2 arguments" in out
    assert "imports sdk.mapping.paths; a mapper imports only" in out
