"""Certification: a record that a connector passed its contract suite, bound to its exact content.

``integrations/<name>/certification.json`` holds a SHA-256 over every file
that decides the connector's behaviour (spec, mapper, fixtures, OpenAPI
extract, contract schemas, cassettes), a SHA-256 over the SDK modules that
turn a spec into requests and answers into outcomes (the *engine*), the SDK
version, the checks with their counts, and an expiry. Loading for production
recomputes both hashes: an edit to the connector or to the engine after
certification, another SDK version, or an expired record is refused until
``sluice certify`` runs again; ``sluice certify --check`` shows such drift in CI.
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
    xfailed: int = 0  # strict xfails: known mismatches with the vendor docs, listed in the fixtures


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
    engine_hash: str = ""
    engine_files: list[str] = Field(default_factory=list)


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


# --------------------------------------------------------------------------------------------------
# The engine: SDK modules whose behaviour decides a connector's requests or the router's outcomes.
# --------------------------------------------------------------------------------------------------
SDK_ROOT = Path(__file__).resolve().parent
# Packages hashed whole (every .py in them, new files included) and single modules. A new SDK module
# that affects output or classification must be added here, or certification would not see it change.
ENGINE_PACKAGES = ("mapping", "spec")
ENGINE_MODULES = (
    "batching.py",  # merging requests
    "classify.py",  # outcomes of vendor answers
    "connector.py",  # transform, request building, auth
    "context.py",  # clock and ids
    "delivery.py",  # wire encoding of requests
    "errors.py",  # error types that fixtures expect
    "request.py",  # the request model and body encoding
    "settings.py",  # settings validation and defaults
    "steps.py",  # declared steps: token exchange and lookups before a request
)


def engine_files(sdk_root: Path | None = None) -> list[Path]:
    root = sdk_root or SDK_ROOT
    files = [root / m for m in ENGINE_MODULES if (root / m).exists()]
    for pkg in ENGINE_PACKAGES:
        files += sorted(p for p in (root / pkg).rglob("*.py") if "__pycache__" not in p.parts)
    return sorted(files)


def engine_hash(sdk_root: Path | None = None) -> tuple[str, list[str]]:
    """SHA-256 over the engine modules (path and content), with the list of what it covers."""
    root = sdk_root or SDK_ROOT
    h = hashlib.sha256()
    names = []
    for p in engine_files(root):
        rel = "sdk/" + p.relative_to(root).as_posix()
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
    cert = build_certification(folder, checks, validity_days, now, cassette_max_age_days)
    (folder / CERT_FILE).write_text(json.dumps(cert.model_dump(mode="json"), indent=2) + "\n")
    return cert


def build_certification(
    folder: Path,
    checks: list[CheckResult],
    validity_days: int = DEFAULT_VALIDITY_DAYS,
    now: dt.datetime | None = None,
    cassette_max_age_days: int = DEFAULT_CASSETTE_MAX_AGE_DAYS,
) -> Certification:
    """The certificate a run with ``checks`` earns now (not written)."""
    now = now or dt.datetime.now(dt.UTC)
    digest, names = content_hash(folder)
    engine, engine_names = engine_hash()
    return Certification(
        integration=folder.name,
        content_hash=digest,
        sdk_version=__version__,
        certified_at=now,
        expires_at=now + dt.timedelta(days=validity_days),
        checks=checks,
        files=names,
        **drift_record(folder, cassette_max_age_days),
        engine_hash=engine,
        engine_files=engine_names,
    )


# Fields that say *what* was certified; dates are left out, since re-running later always moves them.
SUBSTANCE = ("integration", "content_hash", "sdk_version", "engine_hash", "engine_files", "files", "checks")


def certificate_drift(old: Certification | None, new: Certification) -> list[str]:
    """How the certificate ``new`` differs from the committed ``old`` (empty: it would not change)."""
    if old is None:
        return ["no certificate yet"]
    a, b = old.model_dump(mode="json"), new.model_dump(mode="json")
    out = []
    for key in SUBSTANCE:
        if a.get(key) == b.get(key):
            continue
        if key == "checks":
            was = {c["name"]: c for c in a.get("checks") or []}
            now = {c["name"]: c for c in b.get("checks") or []}
            for name in sorted(set(was) | set(now)):
                if _check_key(name, was.get(name)) != _check_key(name, now.get(name)):
                    out.append(f"check {name}: {_counts(was.get(name))} -> {_counts(now.get(name))}")
        elif key in ("files", "engine_files"):
            old_set, new_set = set(a.get(key) or []), set(b.get(key) or [])
            gone, added = old_set - new_set, new_set - old_set
            change = f"+{sorted(added)} -{sorted(gone)}" if gone or added else "order changed"
            out.append(f"{key}: {change}")
        elif key == "engine_hash":
            out.append("engine_hash: an SDK module that affects output or classification changed")
        elif key == "content_hash":
            out.append("content_hash: the connector's files or cassettes changed")
        else:
            out.append(f"{key}: {a.get(key)!r} -> {b.get(key)!r}")
    return out


# Counters that describe the fuzzing rather than decide it (how many fuzzed events mapped to requests
# vs. typed errors); they are recorded, but a change in them alone is not certificate drift.
INFORMATIVE_CHECKS = ("fuzz_requests", "fuzz_typed_errors")


def _check_key(name: str, c: dict[str, Any] | None) -> tuple[int, int] | None:
    """What must stay equal for a check: how many tests it ran, and how many failed. (Whether a
    non-strict xfail happened to fail this time is not a change in what was certified.)"""
    if c is None or name in INFORMATIVE_CHECKS:
        return None
    ran = sum(int(c.get(k, 0)) for k in ("passed", "failed", "skipped", "xfailed"))
    return ran, int(c.get("failed", 0))


def _counts(c: dict[str, Any] | None) -> str:
    if c is None:
        return "(none)"
    return "/".join(f"{k}={c.get(k, 0)}" for k in ("passed", "failed", "skipped", "xfailed") if c.get(k))


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
    engine_problem = engine_mismatch(cert)
    if engine_problem:
        return {"certified": False, "reason": engine_problem}
    if any(c.failed for c in cert.checks):
        return {"certified": False, "reason": "the recorded run had failing checks"}
    return {"certified": True, "reason": f"certified until {cert.expires_at.date()}"}


def engine_mismatch(cert: Certification) -> str | None:
    """Why ``cert`` does not hold for the SDK running now (another version or other engine code)."""
    if cert.sdk_version != __version__:
        return f"certified with SDK {cert.sdk_version}, running {__version__}"
    if not cert.engine_hash:
        return "certified before the engine was hashed"
    if cert.engine_hash != engine_hash()[0]:
        return "certified against a different engine (SDK mapping/classification/request code changed)"
    return None


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
