"""Certification: a record that a connector passed its contract suite, bound to its exact content.

``integrations/<name>/certification.json`` holds a SHA-256 over every file
that decides the connector's behaviour (spec, mapper, fixtures, OpenAPI
extract, cassettes), the SDK version, the checks with their counts, and an
expiry. Loading for production recomputes the hash: any edit after
certification, or an expired record, is refused until ``sluice certify`` runs again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from sdk import __version__
from sdk.errors import CertificationError

CERT_FILE = "certification.json"
DEFAULT_VALIDITY_DAYS = 90


class CheckResult(BaseModel):
    name: str
    passed: int
    failed: int = 0
    skipped: int = 0


class Certification(BaseModel):
    integration: str
    content_hash: str
    sdk_version: str
    certified_at: dt.datetime
    expires_at: dt.datetime
    checks: list[CheckResult] = Field(default_factory=list)
    files: list[str] = Field(default_factory=list)


def repo_root_for(folder: Path) -> Path:
    return folder.resolve().parent.parent


def certified_files(folder: Path) -> list[Path]:
    """Every file whose change must void the certification, in a stable order."""
    folder = folder.resolve()
    files = [
        p for p in folder.rglob("*") if p.is_file() and p.name != CERT_FILE and "__pycache__" not in p.parts
    ]
    cassettes = repo_root_for(folder) / "cassettes" / folder.name
    if cassettes.is_dir():
        files += [p for p in cassettes.rglob("*") if p.is_file()]
    return sorted(files)


def content_hash(folder: Path) -> tuple[str, list[str]]:
    folder = folder.resolve()
    root = repo_root_for(folder)
    h = hashlib.sha256()
    names = []
    for p in certified_files(folder):
        rel = p.relative_to(root).as_posix()
        names.append(rel)
        h.update(rel.encode() + b"\0")
        h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest(), names


def write_certification(
    folder: Path,
    checks: list[CheckResult],
    validity_days: int = DEFAULT_VALIDITY_DAYS,
    now: dt.datetime | None = None,
) -> Certification:
    now = now or dt.datetime.now(dt.UTC)
    digest, names = content_hash(folder)
    cert = Certification(
        integration=folder.name,
        content_hash=digest,
        sdk_version=__version__,
        certified_at=now,
        expires_at=now + dt.timedelta(days=validity_days),
        checks=checks,
        files=names,
    )
    (folder / CERT_FILE).write_text(json.dumps(cert.model_dump(mode="json"), indent=2) + "\n")
    return cert


def read_certification(folder: Path) -> Certification | None:
    path = folder / CERT_FILE
    if not path.exists():
        return None
    try:
        return Certification.model_validate_json(path.read_text())
    except ValueError as e:
        raise CertificationError(f"{path} is unreadable ({e}); run `sluice certify {folder.name}`") from e


def status(folder: Path, now: dt.datetime | None = None) -> dict[str, Any]:
    """Why a connector is or is not certified, for `sluice list` and load checks."""
    cert = read_certification(folder)
    if cert is None:
        return {"certified": False, "reason": "never certified"}
    now = now or dt.datetime.now(dt.UTC)
    if cert.expires_at < now:
        return {"certified": False, "reason": f"certification expired on {cert.expires_at.date()}"}
    digest, _ = content_hash(folder)
    if digest != cert.content_hash:
        return {"certified": False, "reason": "files changed since certification"}
    if any(c.failed for c in cert.checks):
        return {"certified": False, "reason": "the recorded run had failing checks"}
    return {"certified": True, "reason": f"certified until {cert.expires_at.date()}"}


def verify(connector: Any, now: dt.datetime | None = None) -> None:
    folder: Path | None = getattr(connector, "folder", None)
    name = getattr(connector, "name", "?")
    if folder is None:
        raise CertificationError(f"connector {name!r} was not loaded from disk and cannot be certified")
    st = status(folder, now)
    if not st["certified"]:
        raise CertificationError(
            f"connector {name!r} is not certified for production: {st['reason']}. "
            f"Run `sluice certify {name}` (or start with --allow-uncertified for development)"
        )
