"""The weekly drift job, run locally: reports, live drift where credentials exist, and one GitHub issue
per drifting connector through a stub `gh` on PATH that logs what it was asked."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from support.sink import Sink

from sdk.drift.ci import live_env_names
from sdk.drift.live import env_name
from sdk.registry import integration_folders

from .fakevendor import ANSWER, DESCRIPTION, make_tree

REPO = Path(__file__).resolve().parents[2]
STUB_GH = """\
#!{python}
import json, os, sys
args = sys.argv[1:]
entry = {{"args": args}}
if "--body-file" in args:
    entry["body"] = open(args[args.index("--body-file") + 1]).read()
with open(os.environ["STUB_GH_LOG"], "a") as f:
    f.write(json.dumps(entry) + "\\n")
if args[:2] == ["issue", "list"]:
    print(os.environ.get("STUB_GH_ISSUES", "[]"))
elif args[:2] == ["issue", "create"]:
    print("https://github.com/acme/sluice/issues/7")
"""


@pytest.fixture
def stub_gh(tmp_path: Path) -> tuple[Path, Path]:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    gh = bindir / "gh"
    gh.write_text(STUB_GH.format(python=sys.executable))
    gh.chmod(0o755)
    return bindir, tmp_path / "gh.log"


def _descriptions(tmp_path: Path, breaking: bool) -> Path:
    doc = copy.deepcopy(DESCRIPTION)
    if breaking:
        schema = doc["paths"]["/v1/events"]["post"]["requestBody"]["content"]["application/json"]["schema"]
        schema["required"].append("source")  # a new required field the connector does not send
        schema["properties"]["source"] = {"type": "string"}
    d = tmp_path / "published"
    d.mkdir(exist_ok=True)
    (d / "fakevendor.json").write_text(json.dumps(doc))
    return d


def _ci(tmp_path: Path, tree: Path, stub: tuple[Path, Path], descriptions: Path, **env: str):
    bindir, log = stub
    full = dict(
        os.environ,
        SLUICE_INTEGRATIONS_DIR=str(tree),
        PATH=f"{bindir}{os.pathsep}{os.environ['PATH']}",
        STUB_GH_LOG=str(log),
        **env,
    )
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "sdk.cli",
            "drift",
            "ci",
            "--out",
            str(tmp_path / "reports"),
            "--descriptions",
            str(descriptions),
            "--issues",
        ],
        capture_output=True,
        text=True,
        env=full,
        timeout=300,
        cwd=tmp_path,
    )
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return r, calls


def test_drifting_connector_gets_an_issue_with_the_reports(
    tmp_path: Path, stub_gh: tuple[Path, Path]
) -> None:
    with Sink() as vendor:
        vendor.respond(200, headers={"Sunset": "Wed, 01 Jul 2026 00:00:00 GMT"}, body=json.dumps(ANSWER))
        tree = make_tree(tmp_path, base_url=f"http://127.0.0.1:{vendor.port}", pinned=True)
        r, calls = _ci(
            tmp_path,
            tree,
            stub_gh,
            _descriptions(tmp_path, breaking=True),
            **{env_name("fakevendor", "apiKey"): "ci-secret-value-9"},
        )
        assert len(vendor.attempts) == 1  # live drift ran: the credential was in the environment
    assert r.returncode == 1, r.stdout + r.stderr  # breaking drift
    reports = tmp_path / "reports"
    spec = json.loads((reports / "fakevendor.spec.json").read_text())
    # the footprint says so, and the fixture's real payload no longer validates either
    assert sorted((c["kind"], c["where"]) for c in spec["changes"] if c["severity"] == "breaking") == [
        ("payload_invalid", "fixture track_basic"),
        ("required_added", "body /"),
    ]
    live = json.loads((reports / "fakevendor.live.json").read_text())
    assert [c["kind"] for c in live["changes"]] == ["sunset_header"]
    summary = json.loads((reports / "summary.json").read_text())
    assert summary["subjects"][0] | {"checks": None} == {
        "name": "fakevendor",
        "checks": None,
        "status": "breaking",
        "issue": "https://github.com/acme/sluice/issues/7",
    }
    assert [c["args"][:2] for c in calls] == [["issue", "list"], ["label", "create"], ["issue", "create"]]
    create = calls[-1]
    assert create["args"][create["args"].index("--title") + 1] == "[drift] fakevendor"
    assert "required_added" in create["body"] and "sunset_header" in create["body"]
    assert "ci-secret-value-9" not in create["body"] + (reports / "fakevendor.live.json").read_text()
    # the newest description is kept where `sluice certify` looks for it
    assert (tmp_path / ".sluice" / "drift" / "fakevendor" / "latest.json").exists()


def test_open_issue_is_updated_not_duplicated(tmp_path: Path, stub_gh: tuple[Path, Path]) -> None:
    tree = make_tree(tmp_path, pinned=True)
    r, calls = _ci(
        tmp_path,
        tree,
        stub_gh,
        _descriptions(tmp_path, breaking=True),
        STUB_GH_ISSUES=json.dumps(
            [{"number": 12, "title": "[drift] fakevendor"}, {"number": 3, "title": "[drift] fakevendor-old"}]
        ),
    )
    assert r.returncode == 1, r.stdout + r.stderr
    assert [c["args"][:3] for c in calls] == [["issue", "list", "--state"], ["issue", "edit", "12"]]
    assert "required_added" in calls[-1]["body"]


def test_no_drift_no_issue(tmp_path: Path, stub_gh: tuple[Path, Path]) -> None:
    tree = make_tree(tmp_path, pinned=True)
    r, calls = _ci(tmp_path, tree, stub_gh, _descriptions(tmp_path, breaking=False))
    assert r.returncode == 0, r.stdout + r.stderr
    assert calls == []
    assert "fakevendor" in r.stdout and "ok" in r.stdout


def test_workflow_runs_weekly_and_on_demand_with_every_live_credential() -> None:
    wf = yaml.safe_load((REPO / ".github" / "workflows" / "drift.yml").read_text())
    triggers = wf[True] if True in wf else wf["on"]  # YAML 1.1 reads the key `on` as a boolean
    assert "schedule" in triggers and "workflow_dispatch" in triggers
    steps = wf["jobs"]["drift"]["steps"]
    [run] = [s for s in steps if "sluice drift ci" in s.get("run", "")]
    assert "--issues" in run["run"] and run["env"]["GH_TOKEN"]
    needed = {n for f in integration_folders(REPO / "integrations") for n in live_env_names(f)}
    assert needed and needed <= set(run["env"]), needed - set(run["env"])
    assert any("upload-artifact" in s.get("uses", "") for s in steps)
