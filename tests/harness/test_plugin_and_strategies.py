"""The contributor-facing pieces: hypothesis strategies and the `sluice` pytest plugin."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import find
from hypothesis import strategies as st

from sdk.testing.strategies import DEEP_DICT, FUZZ_SETTINGS, HUGE_STRING, WIDE_DICT, events

from .conftest import REPO


@pytest.mark.filterwarnings("ignore:Generating overly large repr")
def test_events_strategy_reaches_the_nasty_cases() -> None:
    s = events("identify")
    assert find(s, lambda e: e["type"] == "identify")["type"] == "identify"
    assert "userId" not in find(s, lambda e: "userId" not in e)
    find(s, lambda e: e.get("userId") is None and "userId" in e)
    find(s, lambda e: not isinstance(e.get("traits"), dict))
    find(
        s,
        lambda e: (
            isinstance(e.get("properties"), dict)
            and any(v in (HUGE_STRING, WIDE_DICT, DEEP_DICT) for v in e["properties"].values())
        ),
    )
    find(
        s,
        lambda e: (
            any(
                isinstance(v, str) and any(ord(c) > 0x2FF for c in v)
                for v in (e.get("traits") or {}).values()
            )
            if isinstance(e.get("traits"), dict)
            else False
        ),
    )


def test_events_strategy_mutates_a_given_base() -> None:
    base = {"type": "track", "event": "Order Completed", "userId": "u", "properties": {"revenue": 3}}
    ev = find(events("track", st.just(base)), lambda e: e.get("event") == "Order Completed")
    assert ev["type"] == "track"
    assert base == {"type": "track", "event": "Order Completed", "userId": "u", "properties": {"revenue": 3}}


def test_fuzz_settings_are_bounded_and_deterministic() -> None:
    assert FUZZ_SETTINGS.max_examples == 200
    assert FUZZ_SETTINGS.derandomize is True and FUZZ_SETTINGS.deadline is None


def test_plugin_fixtures_only_filter_and_report(tree: Path, tmp_path: Path) -> None:
    test_file = tmp_path / "test_mine.py"
    test_file.write_text(
        "import pytest\n"
        "@pytest.mark.parametrize('sluice_integration', ['demo', 'other'])\n"
        "def test_uses_fixtures(sluice_integration, sluice_connector, sluice_cases):\n"
        "    assert sluice_connector.name == 'demo'\n"
        "    assert {c.name for c in sluice_cases} == {'track_basic', 'track_without_name'}\n"
    )
    report = tmp_path / "report.json"
    env = dict(os.environ, SLUICE_INTEGRATIONS_DIR=str(tree))
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(test_file),
            "-q",
            "-p",
            "no:cacheprovider",
            "-o",
            "addopts=",
            "--rootdir",
            str(tmp_path),
            "--sluice-only",
            "demo",
            "--sluice-report",
            str(report),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 passed, 1 deselected" in r.stdout
    data = json.loads(report.read_text())
    assert data["integrations"] == {
        "demo": {"test_uses_fixtures": {"passed": 1, "failed": 0, "skipped": 0, "xfailed": 0}}
    }
    assert REPO.exists()
