"""Certification records the pinned vendor description and the cassettes' age; old cassettes expire it;
`sluice certify` fails on breaking drift against a newer description that is present."""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from sdk.certification import CheckResult, drift_check, read_certification, status, write_certification

from .fakevendor import DESCRIPTION, make_tree


def _recorded(tree: Path) -> dt.datetime:
    data = yaml.safe_load((tree.parent / "cassettes" / "fakevendor" / "track_basic.yaml").read_text())
    return dt.datetime.fromisoformat(data["metadata"]["provenance"]["recorded_at"].replace("Z", "+00:00"))


def test_certificate_records_pin_and_cassette_age_and_expires_with_old_cassettes(tmp_path: Path) -> None:
    tree = make_tree(tmp_path, pinned=True)
    folder = tree / "fakevendor"
    recorded = _recorded(tree)
    cert = write_certification(
        folder,
        [CheckResult(name="spec_lint", passed=1)],
        validity_days=1000,
        now=recorded,
        cassette_max_age_days=30,
    )
    doc_bytes = (folder / "openapi" / "fakevendor.json").read_bytes()
    assert cert.vendor_description == {
        "source": "https://fakevendor.test/openapi.json",
        "version": "1",
        "document": "openapi/fakevendor.json",
        "sha256": hashlib.sha256(doc_bytes).hexdigest(),
    }
    assert read_certification(folder).cassettes_recorded_at == recorded
    assert status(folder, now=recorded + dt.timedelta(days=29))["certified"] is True
    late = status(folder, now=recorded + dt.timedelta(days=31))
    assert late["certified"] is False and "more than 30 days ago" in late["reason"]
    assert "sluice drift live fakevendor --stamp" in late["reason"]


def test_default_cassette_age_is_180_days(tmp_path: Path) -> None:
    tree = make_tree(tmp_path)
    folder = tree / "fakevendor"
    recorded = _recorded(tree)
    write_certification(folder, [CheckResult(name="spec_lint", passed=1)], validity_days=1000, now=recorded)
    assert status(folder, now=recorded + dt.timedelta(days=179))["certified"] is True
    assert status(folder, now=recorded + dt.timedelta(days=181))["certified"] is False


def _newer(tmp_path: Path, breaking: bool) -> Path:
    doc = copy.deepcopy(DESCRIPTION)
    schema = doc["paths"]["/v1/events"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    if breaking:
        schema["properties"]["user"] = {"type": "integer"}  # the connector sends a string
    else:
        schema["properties"]["plan"] = {"type": "string"}  # an optional addition
    doc["info"]["version"] = "2"
    path = tmp_path / ("breaking.json" if breaking else "compatible.json")
    path.write_text(json.dumps(doc))
    return path


def test_drift_check_against_newer_descriptions(tmp_path: Path) -> None:
    folder = make_tree(tmp_path, pinned=True) / "fakevendor"
    assert drift_check(folder) == (None, [])  # nothing newer present
    check, lines = drift_check(folder, str(_newer(tmp_path, breaking=False)))
    assert check == CheckResult(name="vendor_drift", passed=1, failed=0) and lines == []
    check, lines = drift_check(folder, str(_newer(tmp_path, breaking=True)))
    assert check is not None and check.failed == 1
    assert any("type_changed" in line and "/user" in line for line in lines)


def test_certify_fails_on_breaking_drift_against_a_present_newer_description(tmp_path: Path) -> None:
    tree = make_tree(tmp_path, pinned=True)
    cache = tmp_path / ".sluice" / "drift" / "fakevendor"
    cache.mkdir(parents=True)
    (cache / "latest.json").write_text(_newer(tmp_path, breaking=True).read_text())
    env = dict(os.environ, SLUICE_INTEGRATIONS_DIR=str(tree))
    r = subprocess.run(
        [sys.executable, "-m", "sdk.cli", "certify", "fakevendor"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        cwd=tmp_path,
    )
    assert r.returncode == 1, r.stdout + r.stderr
    assert "NOT certified" in r.stdout and "type_changed" in r.stdout, r.stdout
    cert = read_certification(tree / "fakevendor")
    assert [c for c in cert.checks if c.name == "vendor_drift"][0].failed == 1
    # every contract check itself passed: the drift alone refused the certificate
    assert all(c.failed == 0 for c in cert.checks if c.name != "vendor_drift")
    assert status(tree / "fakevendor")["certified"] is False
