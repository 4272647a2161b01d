"""Live recording: send fixtures' requests to the real vendor and keep its real answers as cassettes.

``sluice cassettes record <name> [--base-url URL]`` runs each success fixture through the connector
with the fixture's settings, except that every ``secret: true`` setting is taken from the
environment (``SLUICE_RECORD_<INTEGRATION>_<SETTING>``, upper-cased, non-alphanumerics as ``_``):
credentials never come from, or go into, a file. Each request is sent (to ``--base-url`` instead of
the vendor's host when given, e.g. a local test double), and the cassette records the request as the
connector addressed it, the vendor's real answer, and provenance ``source: live`` with the endpoint
used, the date and the vendor API version. Every secret value (live and fixture), every credential
header or parameter, and cookies are redacted before anything is written; a final scan refuses to
write a cassette that still contains a live secret.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from sdk.connector import Connector
from sdk.delivery import send
from sdk.errors import SluiceError
from sdk.testing.cases import (
    LIVE_SOURCE,
    PLACEHOLDER,
    Case,
    Redactor,
    cassette_provenance,
    cassettes_dir,
    dump_cassette,
    load_cases,
    now_stamp,
    secret_values,
    wire_request,
)

ENV_PREFIX = "SLUICE_RECORD_"
# Response headers that can carry session credentials; recorded as <REDACTED>.
COOKIE_HEADERS = re.compile(r"(?i)^(set-cookie|cookie|x-amz-security-token)$")


class RecordError(Exception):
    """A recording that cannot start (missing credentials, nothing to record); says what to set."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass
class Recorded:
    case: str
    ok: bool
    summary: str
    path: Path | None = None


def env_name(integration: str, setting: str) -> str:
    return ENV_PREFIX + re.sub(r"[^A-Z0-9]", "_", f"{integration}_{setting}".upper())


def live_config(connector: Connector, config: dict[str, Any], environ: dict[str, str]) -> dict[str, Any]:
    """``config`` with every secret setting it uses replaced by its value from the environment."""
    out = dict(config)
    missing = []
    for name in connector.spec.secret_settings():
        if name not in config:
            continue
        var = env_name(connector.name, name)
        if environ.get(var):
            out[name] = environ[var]
        else:
            missing.append(var)
    if missing:
        raise RecordError(
            f"{connector.name}: live recording takes credentials from the environment; set "
            + ", ".join(sorted(set(missing)))
        )
    return out


def _retarget(url: str, base_url: str | None) -> str:
    """``url`` sent to ``base_url`` instead (scheme, host and any base path replaced), query kept."""
    if not base_url:
        return url
    b, u = urlsplit(base_url), urlsplit(url)
    return urlunsplit((b.scheme, b.netloc, b.path.rstrip("/") + u.path, u.query, u.fragment))


def _redacted_response(red: Redactor, resp: Any) -> dict[str, Any]:
    headers: dict[str, list[str]] = {}
    for k, v in resp.headers.items():
        value = PLACEHOLDER if COOKIE_HEADERS.match(k) else red.header(k, str(v))
        headers.setdefault(k, []).append(value)
    try:
        message = HTTPStatus(resp.status).phrase
    except ValueError:
        message = ""
    return {
        "status": {"code": resp.status, "message": message},
        "headers": headers,
        "body": {"string": red.text(resp.body.decode("utf-8", "replace"))},
    }


def record_case(
    connector: Connector,
    case: Case,
    secrets: list[str],
    environ: dict[str, str],
    base_url: str | None,
    client: httpx.Client,
    timeout: float,
) -> tuple[dict[str, Any], list[int]]:
    """The live cassette for ``case`` and the statuses the vendor answered."""
    config = live_config(connector, case.config, environ)
    live = Case(
        integration=case.integration,
        name=case.name,
        path=case.path,
        config=config,
        event=case.event,
        now=case.now,
        response=case.response,
    )
    requests = live.run(connector)
    if any(r.transport != "http" for r in requests):
        raise RecordError(
            f"{case.name}: live recording sends HTTP only; a {requests[0].transport} destination is tested "
            "against a real server in tests/ instead (its cassettes hold the documented answers)"
        )
    live_secrets = sorted(set(secrets) | set(secret_values(connector, [config])), key=len, reverse=True)
    red = Redactor(live_secrets)
    interactions, statuses, endpoints = [], [], []
    for req in requests:
        target = req.model_copy(update={"url": _retarget(req.url, base_url)})
        endpoints.append(red.url(target.url.split("?", 1)[0]))
        try:
            answer = send(client, target, timeout=timeout)
        except httpx.HTTPError as e:
            # the exception text may quote the URL (with credentials in the query): redact it
            raise RecordError(f"{case.name}: {type(e).__name__}: {red.text(red.url(str(e)))}") from None
        statuses.append(answer.status)
        w = wire_request(req)
        interactions.append(
            {
                "request": {
                    "method": w["method"],
                    "uri": red.url(w["uri"]),
                    "headers": {k: [red.header(k, str(v))] for k, v in sorted(w["headers"].items())},
                    "body": red.text(w["body"]),
                },
                "response": _redacted_response(red, answer),
            }
        )
    now = now_stamp()
    provenance = cassette_provenance(
        connector,
        case,
        source=LIVE_SOURCE,
        response_source=f"recorded live from {', '.join(sorted(set(endpoints)))} on {now[:10]}",
        expected_outcome=case.expected_outcome or "success",
        recorded_at=now,
        endpoint=sorted(set(endpoints)),
    )
    data = {"interactions": interactions, "version": 1, "metadata": {"provenance": provenance}}
    text = dump_cassette(data)
    leaked = [s for s in live_secrets if len(s) >= 3 and s in text]
    if leaked:
        raise RecordError(f"{case.name}: a secret survived redaction; nothing was written")
    return data, statuses


def record_integration(
    folder: Path,
    base_url: str | None = None,
    only: set[str] | None = None,
    timeout: float = 30.0,
    environ: dict[str, str] | None = None,
) -> list[Recorded]:
    """Record every success fixture of ``folder`` (or those in ``only``); writes cassettes/<name>/."""
    environ = dict(os.environ if environ is None else environ)
    connector = Connector.from_folder(folder)
    cases = [
        c
        for c in load_cases(folder)
        if not c.expect_error and c.response is not None and not c.problems and (not only or c.name in only)
    ]
    if not cases:
        raise RecordError(f"{folder.name}: no usable success fixture to record (check `sluice validate`)")
    secrets = secret_values(connector, [c.config for c in load_cases(folder)])
    out_dir = cassettes_dir(folder.parent) / folder.name
    out_dir.mkdir(parents=True, exist_ok=True)
    from sdk.classify import classify_response

    results = []
    with httpx.Client() as client:
        for case in cases:
            try:
                data, statuses = record_case(connector, case, secrets, environ, base_url, client, timeout)
            except SluiceError as e:
                results.append(Recorded(case.name, False, f"{e.type}: {e.message}"))
                continue
            path = out_dir / f"{case.name}.yaml"
            path.write_text(dump_cassette(data))
            want = case.expected_outcome or "success"
            got = []
            for inter in data["interactions"]:
                resp = inter["response"]
                c = classify_response(
                    resp["status"]["code"],
                    {k: v[0] for k, v in resp["headers"].items()},
                    resp["body"]["string"],
                    connector.spec.responses,
                )
                got.append(c.outcome.value)
            ok = all(g == want for g in got)
            summary = f"answered {statuses}, classified {got}" + (
                "" if ok else f" (fixture documents {want})"
            )
            results.append(Recorded(case.name, ok, summary, path))
    return results
