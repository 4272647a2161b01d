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
DEFAULT_CASSETTE_MAX_AGE_DAYS = 180


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
    # Drift (see the functions at the end): the pinned vendor description and the cassettes' age.
    vendor_description: dict[str, Any] | None = None
    cassettes_recorded_at: dt.datetime | None = None
    cassette_max_age_days: int | None = None


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
    cassette_max_age_days: int = DEFAULT_CASSETTE_MAX_AGE_DAYS,
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
        **drift_record(folder, cassette_max_age_days),
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
    stale = cassettes_expired(cert, folder, now)
    if stale:
        return {"certified": False, "reason": stale}
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


# -- drift: pinned vendor description, cassette age, breaking drift against a newer description ------
def pinned_description(folder: Path) -> dict[str, Any] | None:
    """The vendor description the connector is pinned to: source, version and content hash of the copy."""
    from sdk.drift.build import connector_footprint
    from sdk.drift.document import load_description

    fp = connector_footprint(folder)
    path = fp.document_path()
    if fp.description is None or path is None or not path.exists():
        return None
    doc = load_description(str(path))
    return {
        "source": fp.description.source,
        "version": fp.description.version or doc.version,
        "document": path.resolve().relative_to(folder.resolve()).as_posix(),
        "sha256": doc.sha256,
    }


def oldest_cassette(folder: Path) -> dt.datetime | None:
    """When the oldest of the connector's cassettes was recorded (None without dated cassettes)."""
    from sdk.drift.cassettes import cassettes_folder, recorded_dates

    dates = recorded_dates(cassettes_folder(folder))
    return min(dates) if dates else None


def drift_record(folder: Path, cassette_max_age_days: int = DEFAULT_CASSETTE_MAX_AGE_DAYS) -> dict[str, Any]:
    """The drift fields of a new certificate."""
    return {
        "vendor_description": pinned_description(folder),
        "cassettes_recorded_at": oldest_cassette(folder),
        "cassette_max_age_days": cassette_max_age_days,
    }


def cassettes_expired(cert: Certification, folder: Path, now: dt.datetime) -> str | None:
    """Why the certificate's cassettes are too old to vouch for the vendor any more, if they are.

    Certificates written before this was recorded fall back to the cassettes on disk, which the content
    hash guarantees are the certified ones.
    """
    recorded = cert.cassettes_recorded_at or oldest_cassette(folder)
    if recorded is None:
        return None
    max_age = cert.cassette_max_age_days or DEFAULT_CASSETTE_MAX_AGE_DAYS
    if recorded.tzinfo is None:
        recorded = recorded.replace(tzinfo=dt.UTC)
    if now - recorded <= dt.timedelta(days=max_age):
        return None
    return (
        f"its oldest cassette was recorded on {recorded.date()}, more than {max_age} days ago: confirm the "
        f"vendor's answers with `sluice drift live {cert.integration} --stamp`, then re-certify"
    )


def newer_description(folder: Path) -> Path | None:
    """A newer vendor description present for the connector: ``.sluice/drift/<name>/latest.*``."""
    cache = repo_root_for(folder) / ".sluice" / "drift" / folder.name
    found = sorted(cache.glob("latest.*")) if cache.is_dir() else []
    return found[0] if found else None


def drift_check(folder: Path, against: str | None = None) -> tuple[CheckResult | None, list[str]]:
    """Spec drift of the pinned description against a newer one (``against``, or one found present).

    Returns the check for the certificate (None when there is nothing to compare) and the breaking
    changes, each as a line.
    """
    from sdk.drift.build import connector_footprint
    from sdk.drift.spec_check import check_spec

    location = against or (str(p) if (p := newer_description(folder)) else None)
    fp = connector_footprint(folder)
    if location is None or fp.document_path() is None:
        return None, []
    report = check_spec(fp, None, location, connector_folder=folder).report
    lines = [
        f"{c.kind} {c.operation} {c.where}: {c.detail}" for c in report.changes if c.severity == "breaking"
    ]
    return CheckResult(name="vendor_drift", passed=0 if lines else 1, failed=1 if lines else 0), lines
