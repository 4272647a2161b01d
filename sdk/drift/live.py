"""Live drift: replay a connector's certified requests against the vendor and diff the answers.

Each fixture is mapped again (same event, same pinned clock) and must still produce the requests its
cassette recorded; those requests are sent to the vendor (or ``--base-url``: a sandbox, a local fake)
and each answer is compared with the recorded one by meaning, not bytes: status and what the
connector's rules make of it, JSON fields added, removed or retyped, and ``Deprecation``, ``Sunset``
and ``Warning`` headers. Credentials come from the environment (``SLUICE_LIVE_<NAME>_<SETTING>``) and
are never written: the report holds statuses, header values and field names only.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from sdk.drift.cassettes import Exchange, cassettes_folder, read_cassette
from sdk.drift.fixtures import fixture_requests, success_fixtures
from sdk.drift.footprint_from_spec import response_read_pointers, secret_settings, setting_names
from sdk.drift.report import DriftReport
from sdk.drift.shapes import body_shape, shape_diff
from sdk.errors import SluiceError

SIGNAL_HEADERS = ("deprecation", "sunset", "warning")


def env_name(connector: str, setting: str) -> str:
    """``SLUICE_LIVE_<CONNECTOR>_<SETTING>``, upper case, other characters as ``_``."""
    return re.sub(r"[^A-Z0-9]", "_", f"SLUICE_LIVE_{connector}_{setting}".upper())


def live_config(
    spec: Any, fixture_config: dict[str, Any], env: Mapping[str, str]
) -> tuple[dict[str, Any], list[str]]:
    """The fixture's config with every setting the environment provides; returns (config, secrets missing)."""
    config = dict(fixture_config)
    for name in setting_names(spec):
        value = env.get(env_name(spec.name, name))
        if value:
            config[name] = value
    missing = [s for s in secret_settings(spec) if not env.get(env_name(spec.name, s))]
    return config, missing


def rebase(url: str, base_url: str | None) -> str:
    """``url`` sent to ``base_url`` instead of its own scheme and host (a path prefix is kept)."""
    if not base_url:
        return url
    u, b = urlsplit(url), urlsplit(base_url)
    return urlunsplit((b.scheme, b.netloc, b.path.rstrip("/") + u.path, u.query, u.fragment))


def _header(headers: Mapping[str, str], name: str) -> str | None:
    return next((v for k, v in headers.items() if k.lower() == name), None)


def live_drift(
    folder: Path,
    base_url: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout_s: float = 15.0,
    only: list[str] | None = None,
) -> DriftReport:
    """Replay ``folder``'s cassette requests live and report what the vendor now answers differently."""
    from sdk.connector import Connector
    from sdk.delivery import send

    env = os.environ if env is None else env
    connector = Connector.from_folder(folder)
    spec = connector.spec
    cassettes = cassettes_folder(folder)
    report = DriftReport(
        "live", spec.name, {"source": f"cassettes/{spec.name}"}, {"source": base_url or "vendor"}
    )
    reads = response_read_pointers(spec)
    secrets: list[str] = []
    with httpx.Client(follow_redirects=False) as client:
        for case, fx in success_fixtures(folder):
            if only and case not in only:
                continue
            path = cassettes / f"{case}.yaml"
            if not path.exists():
                report.notes.append(f"{case}: no cassette; run `sluice cassettes build {spec.name}`")
                continue
            config, missing = live_config(spec, fx.get("config") or {}, env)
            if missing and not base_url:
                report.notes.append(
                    f"{case}: skipped, no credentials in the environment: set "
                    + ", ".join(env_name(spec.name, m) for m in missing)
                )
                continue
            secrets += [str(config[s]) for s in secret_settings(spec) if config.get(s)]
            recorded = read_cassette(path)
            try:
                requests = fixture_requests(connector, fx, config)
            except SluiceError as e:
                report.notes.append(
                    f"{case}: the connector no longer maps this fixture ({e.type}); fix it first"
                )
                continue
            if [(r.method.upper(), urlsplit(r.url).path) for r in requests] != [
                (x.method, urlsplit(x.uri).path) for x in recorded
            ]:
                report.notes.append(
                    f"{case}: the connector's requests differ from the cassette; "
                    "rebuild cassettes before a live check"
                )
                continue
            for i, (req, rec) in enumerate(zip(requests, recorded, strict=True)):
                req = req.model_copy(update={"url": rebase(req.url, base_url)})
                op = f"{case}#{i + 1} {rec.method} {urlsplit(rec.uri).path}"
                try:
                    answer = send(client, req, timeout_s)
                except httpx.HTTPError as e:
                    report.add("breaking", "unreachable", op, "request", f"no answer: {type(e).__name__}")
                    continue
                _compare_answer(report, connector, op, rec, answer.status, answer.headers, answer.body, reads)
                report.operations[f"{case}#{i + 1}"] = (
                    f"{rec.method} {urlsplit(rec.uri).path}: answered {answer.status}"
                )
    report.changes = [_redacted(c, secrets) for c in report.changes]
    return report


def _compare_answer(
    report: DriftReport,
    connector: Any,
    op: str,
    rec: Exchange,
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    reads: set[str],
) -> None:
    before = connector.classify(rec.status, rec.response_headers, rec.response_body.encode()).outcome.value
    after = connector.classify(status, dict(headers), body).outcome.value
    if before != after:
        report.add(
            "breaking",
            "classification_changed",
            op,
            "status",
            f"answered {status} ({after}); the cassette recorded {rec.status} ({before})",
            rec.status,
            status,
        )
    elif status != rec.status:
        report.add(
            "warning",
            "status_changed",
            op,
            "status",
            f"answered {status}; the cassette recorded {rec.status}",
            rec.status,
            status,
        )
    for name in SIGNAL_HEADERS:
        now, then = _header(headers, name), _header(rec.response_headers, name)
        if now is not None and now != then:
            report.add(
                "warning",
                f"{name}_header",
                op,
                f"header {name.title()}",
                f"the vendor now sends {name.title()}: {now[:200]}",
                then,
                now[:200],
            )
    old_shape, new_shape = body_shape(rec.response_body), body_shape(body)
    if old_shape is None or new_shape is None:
        if (old_shape is None) != (new_shape is None) and rec.response_body.strip() and body.strip():
            report.add(
                "warning",
                "body_format_changed",
                op,
                "body",
                "the answer is " + ("no longer JSON" if new_shape is None else "now JSON"),
            )
        return
    diff = shape_diff(old_shape, new_shape)
    lost = [(p, "removed", "no longer in the answer", None, None) for p in diff["removed"]]
    lost += [(p, "retyped", f"type {was} -> {now}", was, now) for p, was, now in diff["retyped"]]
    for p, how, detail, was, now in lost:
        read = any(p == r or r.startswith(p + "/") for r in reads)  # the connector's rules read it
        report.add(
            "breaking" if read else "warning",
            f"response_field_{how}",
            op,
            f"body {p or '/'}",
            ("read by the connector's response rules; " if read else "") + detail,
            was,
            now,
        )
    for p in diff["added"]:
        report.add(
            "info", "response_field_added", op, f"body {p}", f"new field ({'/'.join(sorted(new_shape[p]))})"
        )


def _redacted(change: Any, secrets: list[str]) -> Any:
    for s in sorted(set(secrets), key=len, reverse=True):
        if len(s) >= 4:
            change.detail = change.detail.replace(s, "<REDACTED>")
            if isinstance(change.new, str):
                change.new = change.new.replace(s, "<REDACTED>")
    return change


def stamp_cassettes(folder: Path, report: DriftReport, now: str, confirmed_by: str) -> list[Path]:
    """Record that the vendor still answers as each replayed cassette says (only for a clean report).

    Sets ``recorded_at`` (the cassette's age, which certification limits) and ``live_confirmed_by``;
    the files change, so the connector must be re-certified afterwards.
    """
    import yaml

    if report.drifting:
        raise SluiceError(
            "the live answers differ from the cassettes; fix the connector or rebuild them first"
        )
    replayed = {c.split("#", 1)[0] for c in report.operations}
    out = []
    for case in sorted(replayed):
        path = cassettes_folder(folder) / f"{case}.yaml"
        data = yaml.safe_load(path.read_text())
        prov = data.setdefault("metadata", {}).setdefault("provenance", {})
        prov["recorded_at"] = now
        prov["live_confirmed_by"] = confirmed_by
        path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100))
        out.append(path)
    return out
