"""Spec drift inside a footprint: one small vendor change per case (fixtures/spec_cases.yaml).

The base description, the footprint and every case's expected alarms are hand-written fixtures; each
case patches the base into a "new" description and checks the alarms are exactly the expected ones.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sdk.drift.compare import compare_descriptions
from sdk.drift.document import Library, load_description
from sdk.drift.footprint import load_footprint

from .drift_helpers import FIXTURES, apply_patch

BASE = FIXTURES / "acme-2024-01.yaml"
FOOTPRINT = FIXTURES / "acme-footprint.yaml"
CASES = yaml.safe_load((FIXTURES / "spec_cases.yaml").read_text())


def _new_file(tmp_path: Path, patch: list) -> Path:
    new = apply_patch(yaml.safe_load(BASE.read_text()), patch)
    path = tmp_path / "acme-new.json"  # the new side as JSON, the old as YAML: both loaders in play
    path.write_text(json.dumps(new))
    return path


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_each_kind_of_change(case: dict, tmp_path: Path) -> None:
    lib = Library()
    old = load_description(str(BASE), lib)
    new = load_description(str(_new_file(tmp_path, case["patch"])), lib)
    report = compare_descriptions(load_footprint(FOOTPRINT), old, new, include_ignored=True)
    got = sorted((c.severity, c.kind, c.where) for c in report.alarms())
    want = sorted(tuple(a) for a in case["alarms"])
    assert got == want, f"{case['change']}\n{report.render(show_all=True)}"
    for where in case.get("info", []):
        assert any(c.severity == "info" and c.where == where for c in report.changes), report.render(True)
    for where in case.get("ignored", []):
        assert any(c.severity == "ignored" and c.where == where for c in report.changes), report.render(True)
    assert report.breaking == any(a[0] == "breaking" for a in case["alarms"])


def test_rename_candidates_are_named(tmp_path: Path) -> None:
    case = next(c for c in CASES if c["name"] == "operation_removed")
    lib = Library()
    report = compare_descriptions(
        load_footprint(FOOTPRINT),
        load_description(str(BASE), lib),
        load_description(str(_new_file(tmp_path, case["patch"])), lib),
    )
    [change] = report.alarms()
    assert change.new == ["POST /event"]
    assert "possibly renamed to POST /event" in change.detail


def test_moved_property_is_pointed_at(tmp_path: Path) -> None:
    patch = [
        {
            "op": "move",
            "from": "/components/schemas/Event/properties/time",
            "path": "/components/schemas/User/properties/time",
        }
    ]
    lib = Library()
    report = compare_descriptions(
        load_footprint(FOOTPRINT),
        load_description(str(BASE), lib),
        load_description(str(_new_file(tmp_path, patch)), lib),
    )
    [removed] = [c for c in report.alarms() if c.kind == "property_removed"]
    assert removed.where == "body /time" and removed.new == ["/user/time"]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sdk.cli", *args], capture_output=True, text=True, timeout=120
    )


def test_cli_exit_status_json_and_pinned_old(tmp_path: Path) -> None:
    """`sluice drift spec --footprint F --new X`: the old side is the footprint's pinned copy."""
    same = _cli("drift", "spec", "--footprint", str(FOOTPRINT), "--new", str(BASE))
    assert same.returncode == 0, same.stdout + same.stderr
    assert "0 breaking, 0 warning" in same.stdout
    case = next(c for c in CASES if c["name"] == "type_changed")
    out = tmp_path / "report.json"
    broken = _cli(
        "drift",
        "spec",
        "--footprint",
        str(FOOTPRINT),
        "--new",
        str(_new_file(tmp_path, case["patch"])),
        "--json",
        "--out",
        str(out),
    )
    assert broken.returncode == 1, broken.stdout + broken.stderr
    data = json.loads(out.read_text())
    assert data["breaking"] is True and data["summary"]["breaking"] == 1
    assert [c["where"] for c in data["changes"] if c["severity"] == "breaking"] == ["body /time"]
    assert data["old"]["version"] == "2024-01" and len(data["old"]["sha256"]) == 64


def test_outside_changes_listed_only_with_all(tmp_path: Path) -> None:
    case = next(c for c in CASES if c["name"] == "outside_footprint")
    new = str(_new_file(tmp_path, case["patch"]))
    plain = _cli("drift", "spec", "--footprint", str(FOOTPRINT), "--new", new)
    assert plain.returncode == 0 and "IGNORED" not in plain.stdout, plain.stdout
    full = _cli("drift", "spec", "--footprint", str(FOOTPRINT), "--new", new, "--all")
    assert full.returncode == 0 and "IGNORED" in full.stdout and "/legacy" in full.stdout, full.stdout


def test_unknown_footprint_names_the_fix() -> None:
    r = _cli("drift", "spec", "no_such_thing", "--new", str(BASE))
    assert r.returncode != 0
    assert "drift/footprints/no_such_thing.yaml" in r.stderr
