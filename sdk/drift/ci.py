"""The scheduled drift job: check every pinned connector, write reports, keep one issue per drifting one.

Subjects are connectors whose spec pins a vendor description (``openapi.document`` plus ``source``) or
whose ``footprint.yaml`` does (``description.document`` plus ``source``). For each: spec drift of the
pinned copy against the newest published description, live drift when every credential its fixtures
use is in the environment, reports as JSON and Markdown, and — with ``issues`` — one GitHub issue per
drifting connector, titled ``[drift] <name>``, created or updated through the GitHub CLI (``gh``).

Vendors occasionally publish a wrong file and fix it minutes later; ``confirm_after_s`` fetches again
after a pause and only believes breaking drift that is still there.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sdk.drift.build import connector_footprint
from sdk.drift.document import read_location
from sdk.drift.footprint import Footprint
from sdk.drift.footprint_from_spec import secret_settings
from sdk.drift.live import env_name, live_drift
from sdk.drift.report import DriftReport
from sdk.drift.spec_check import check_spec, pinned_new
from sdk.errors import SluiceError

LABEL = "drift"


@dataclass
class Subject:
    name: str
    folder: Path
    footprint: Footprint


def pinned_subjects() -> list[Subject]:
    """Connectors pinning a description that can be checked (a local copy and a source)."""
    from sdk.registry import integration_folders

    out = []
    for folder in integration_folders():
        try:
            fp = connector_footprint(folder)
        except SluiceError:
            continue
        if fp.description and fp.description.source and fp.document_path() is not None:
            out.append(Subject(folder.name, folder, fp))
    return out


def live_env_names(folder: Path) -> list[str]:
    """The environment variables holding the credentials live drift needs: the secret settings the
    connector's fixtures use, as ``SLUICE_LIVE_<NAME>_<SETTING>``."""
    from sdk.connector import load_spec

    spec = load_spec(folder / "spec.yaml")
    if all(ep.transport != "http" for ep in spec.endpoints.values()):
        return []  # live drift replays HTTP exchanges; a non-HTTP destination is tested against a real server
    used: set[str] = set()
    for path in (folder / "fixtures").glob("*.json"):
        try:
            used |= set((json.loads(path.read_text()).get("config") or {}).keys())
        except (ValueError, AttributeError):
            continue
    return [env_name(spec.name, s) for s in secret_settings(spec) if s in used]


def live_ready(folder: Path, env: Mapping[str, str]) -> bool:
    """Every credential live drift needs is in the environment (a connector without any is never ready)."""
    names = live_env_names(folder)
    return bool(names) and all(env.get(n) for n in names)


def _new_location(subject: Subject, descriptions: Path | None) -> str:
    if descriptions is not None:
        for ext in ("json", "yaml", "yml"):
            p = descriptions / f"{subject.name}.{ext}"
            if p.exists():
                return str(p)
        raise SluiceError(f"no {subject.name}.json or .yaml in {descriptions}")
    return pinned_new(subject.footprint)


def keep_latest(subject: Subject, location: str) -> str:
    """Copy the newest description to ``.sluice/drift/<name>/latest.<ext>``, where ``sluice certify`` finds
    it (a breaking drift against it fails certification); returns the copy's path."""
    raw = read_location(location)
    cache = subject.folder.resolve().parent.parent / ".sluice" / "drift" / subject.name
    cache.mkdir(parents=True, exist_ok=True)
    for old in cache.glob("latest.*"):
        old.unlink()
    path = cache / ("latest.json" if raw.lstrip()[:1] in (b"{", b"[") else "latest.yaml")
    path.write_bytes(raw)
    return str(path)


def _write(out_dir: Path, stem: str, report: DriftReport) -> None:
    (out_dir / f"{stem}.json").write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    (out_dir / f"{stem}.md").write_text(report.markdown())


def run_ci(
    out_dir: Path,
    descriptions: Path | None = None,
    live: bool = True,
    issues: bool = False,
    confirm_after_s: float = 0.0,
    env: Mapping[str, str] | None = None,
    gh: str = "gh",
) -> dict[str, Any]:
    env = os.environ if env is None else env
    out_dir.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    for subject in pinned_subjects():
        row: dict[str, Any] = {"name": subject.name, "checks": []}
        reports: list[DriftReport] = []
        try:
            source = _new_location(subject, descriptions)
            new = keep_latest(subject, source)
            result = check_spec(subject.footprint, None, new, connector_folder=subject.folder)
            if result.report.breaking and confirm_after_s > 0 and descriptions is None:
                time.sleep(confirm_after_s)
                new = keep_latest(subject, source)
                again = check_spec(subject.footprint, None, new, connector_folder=subject.folder)
                if not again.report.breaking:
                    again.report.notes.append(
                        f"breaking drift seen in sha256 {result.new.sha256[:12]} was gone "
                        f"{confirm_after_s:.0f} s later (sha256 {again.new.sha256[:12]}): "
                        "treated as a publishing glitch"
                    )
                result = again
            _write(out_dir, f"{subject.name}.spec", result.report)
            reports.append(result.report)
            row["checks"].append("spec")
        except SluiceError as e:
            row["error"] = e.message
        if live and live_ready(subject.folder, env):
            report = live_drift(subject.folder, env=env)
            _write(out_dir, f"{subject.name}.live", report)
            reports.append(report)
            row["checks"].append("live")
        row["status"] = (
            "error"
            if "error" in row and not reports
            else "breaking"
            if any(r.breaking for r in reports)
            else "warning"
            if any(r.drifting for r in reports)
            else "ok"
        )
        if issues and row["status"] in ("breaking", "warning"):
            body = _issue_body(subject.name, reports)
            row["issue"] = upsert_issue(gh, subject.name, body, out_dir, env)
        rows.append(row)
    summary = {"generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "subjects": rows}
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _issue_body(name: str, reports: list[DriftReport]) -> str:
    head = (
        f"Upstream drift found for `{name}` by the scheduled drift job "
        f"({dt.datetime.now(dt.UTC).date()}). This issue is updated on every run while it drifts.\n\n"
    )
    return head + "\n".join(r.markdown() for r in reports if r.drifting)


def _gh(gh: str, args: list[str], env: Mapping[str, str]) -> str:
    p = subprocess.run([gh, *args], capture_output=True, text=True, env=dict(env), timeout=120)
    if p.returncode != 0:
        raise SluiceError(f"`gh {' '.join(args[:2])}` failed ({p.returncode}): {p.stderr.strip()[:300]}")
    return p.stdout


def upsert_issue(gh: str, name: str, body: str, out_dir: Path, env: Mapping[str, str]) -> str:
    """Create the connector's drift issue, or replace the body of the open one; returns its number/URL."""
    title = f"[drift] {name}"
    body_file = out_dir / f"{name}.issue.md"
    body_file.write_text(body)
    listed = _gh(
        gh,
        [
            "issue",
            "list",
            "--state",
            "open",
            "--label",
            LABEL,
            "--search",
            f"{title} in:title",
            "--json",
            "number,title",
        ],
        env,
    )
    try:
        existing = [i for i in json.loads(listed or "[]") if i.get("title") == title]
    except ValueError as e:
        raise SluiceError(f"`gh issue list` printed something that is not JSON: {listed[:200]!r}") from e
    if existing:
        number = str(existing[0]["number"])
        _gh(gh, ["issue", "edit", number, "--body-file", str(body_file)], env)
        return number
    _gh(gh, ["label", "create", LABEL, "--force", "--description", "upstream API drift"], env)
    out = _gh(gh, ["issue", "create", "--title", title, "--label", LABEL, "--body-file", str(body_file)], env)
    return out.strip().splitlines()[-1] if out.strip() else "created"
