"""Recorded exchanges of a connector, read straight from ``cassettes/<name>/*.yaml``.

Drift tooling and the router's telemetry need the requests and documented answers a connector was
certified against, without the test harness (production code never imports ``sdk.testing``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import yaml

from sdk.drift.shapes import parse_json


@dataclass
class Exchange:
    """One recorded request and the answer recorded with it."""

    case: str
    method: str
    uri: str
    headers: dict[str, str]
    body: str
    status: int
    response_headers: dict[str, str] = field(default_factory=dict)
    response_body: str = ""
    recorded_at: dt.datetime | None = None
    expected_classification: str | None = None
    # A non-HTTP transport's exchange (sdk/transports): its name; the request is then ``{transport, raw}``.
    transport: str = "http"

    def request_value(self) -> Any:
        """The request body as data: JSON, a form as a dict, else ``None``."""
        ok, value = parse_json(self.body)
        if ok:
            return value
        ctype = next((v for k, v in self.headers.items() if k.lower() == "content-type"), "")
        if "form" in ctype and self.body:
            return dict(parse_qsl(self.body, keep_blank_values=True))
        return None


def cassettes_folder(integration_folder: Path) -> Path:
    """``cassettes/<name>`` beside the ``integrations`` folder that holds ``integration_folder``."""
    folder = integration_folder.resolve()
    return folder.parent.parent / "cassettes" / folder.name


def _first(v: Any) -> str:
    if isinstance(v, list):
        return str(v[0]) if v else ""
    return "" if v is None else str(v)


def _text(v: Any) -> str:
    if isinstance(v, dict):
        v = v.get("string", "")
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    return "" if v is None else str(v)


def _when(v: Any) -> dt.datetime | None:
    if isinstance(v, dt.datetime):
        return v if v.tzinfo else v.replace(tzinfo=dt.UTC)
    if isinstance(v, str):
        try:
            t = dt.datetime.fromisoformat(v.replace("Z", "+00:00"))
        except ValueError:
            return None
        return t if t.tzinfo else t.replace(tzinfo=dt.UTC)
    return None


def read_cassette(path: Path) -> list[Exchange]:
    data = yaml.safe_load(path.read_text()) or {}
    prov = ((data.get("metadata") or {}).get("provenance")) or {}
    when = _when(prov.get("recorded_at"))
    out = []
    for i in data.get("interactions") or []:
        req, resp = i.get("request") or {}, i.get("response") or {}
        out.append(
            Exchange(
                case=path.stem,
                method=str(req.get("method", "GET")).upper(),
                uri=str(req.get("uri", "")),
                headers={k: _first(v) for k, v in (req.get("headers") or {}).items()},
                body=_text(req.get("body")),
                status=int(((resp.get("status") or {}).get("code")) or 0),
                response_headers={k: _first(v) for k, v in (resp.get("headers") or {}).items()},
                response_body=_text(resp.get("body")),
                recorded_at=when,
                expected_classification=prov.get("expected_classification"),
                transport=str(req.get("transport") or "http"),
            )
        )
    return out


def read_cassettes(folder: Path) -> list[Exchange]:
    """Every exchange under ``folder`` (a ``cassettes/<name>`` directory), in file order."""
    if not folder.is_dir():
        return []
    out: list[Exchange] = []
    for path in sorted(folder.glob("*.yaml")):
        out.extend(read_cassette(path))
    return out


def recorded_dates(folder: Path) -> list[dt.datetime]:
    """When each cassette under ``folder`` was recorded (files without a date are skipped)."""
    out = []
    for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
        data = yaml.safe_load(path.read_text()) or {}
        when = _when((((data.get("metadata") or {}).get("provenance")) or {}).get("recorded_at"))
        if when is not None:
            out.append(when)
    return out
