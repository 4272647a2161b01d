"""CLI surface of the harness: list, validate, cassettes build, openapi extract, certify argument errors."""

from __future__ import annotations

import json
from pathlib import Path

from .conftest import run_cli


def test_list_table_and_json(tree: Path) -> None:
    r = run_cli("list", env_dir=tree)
    assert r.returncode == 0 and "demo" in r.stdout and "never certified" in r.stdout
    rows = json.loads(run_cli("list", "--json", env_dir=tree).stdout)
    assert rows == [
        {
            "name": "demo",
            "display_name": "Demo",
            "rudder_type": "DEMO",
            "event_types": ["track"],
            "certified": False,
            "reason": "never certified",
        }
    ]


def test_list_shows_broken_spec_with_reason(tree: Path) -> None:
    (tree / "demo" / "spec.yaml").write_text("name: demo\nevent_types: [bogus]\n")
    rows = json.loads(run_cli("list", "--json", env_dir=tree).stdout)
    assert rows[0]["certified"] is False and "invalid spec" in rows[0]["spec_error"]


def test_cassettes_build_and_unknown_names(tree: Path) -> None:
    r = run_cli("cassettes", "build", "DEMO", env_dir=tree)  # rudder_type alias, case-insensitive
    assert r.returncode == 0 and "1 cassette(s)" in r.stdout
    assert (tree.parent / "cassettes" / "demo" / "track_basic.yaml").exists()
    r = run_cli("cassettes", "build", "nosuch", env_dir=tree)
    assert (
        r.returncode != 0 and "no integration named 'nosuch'" in r.stderr and "sluice new nosuch" in r.stderr
    )
    r = run_cli("certify", env_dir=tree)
    assert r.returncode == 2 and "name an integration or pass --all" in r.stderr


def test_cassettes_build_reports_rejected_fixture(tree: Path) -> None:
    fx = tree / "demo" / "fixtures" / "track_basic.json"
    data = json.loads(fx.read_text())
    del data["event"]["userId"]
    fx.write_text(json.dumps(data))
    r = run_cli("cassettes", "build", "demo", env_dir=tree)
    assert r.returncode == 1
    assert "track_basic.json: instrumentation_error: Demo needs a userId or anonymousId; send one" in r.stderr


def test_openapi_extract_errors_are_actionable(tmp_path: Path) -> None:
    doc = tmp_path / "v.json"
    doc.write_text(
        json.dumps(
            {
                "openapi": "3.0.0",
                "info": {"title": "t", "version": "1"},
                "paths": {"/a": {"post": {"responses": {}}}},
            }
        )
    )
    r = run_cli("openapi", "extract", str(doc), "--operation", "POST /b", "--out", str(tmp_path / "o.json"))
    assert r.returncode != 0 and "'POST /b' is not in the document" in r.stderr
    r = run_cli("openapi", "extract", str(doc), "--operation", "POST /a", "--out", str(tmp_path / "o.json"))
    assert r.returncode == 0
    out = json.loads((tmp_path / "o.json").read_text())
    assert list(out["paths"]) == ["/a"] and out["x-sluice-source"]["file"] == "v.json"
    notspec = tmp_path / "n.json"
    notspec.write_text("{}")
    r = run_cli(
        "openapi", "extract", str(notspec), "--operation", "POST /a", "--out", str(tmp_path / "o.json")
    )
    assert r.returncode != 0 and "not an OpenAPI/Swagger document" in r.stderr
