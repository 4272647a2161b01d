"""Fixture cases and their cassettes: loading, running, redacting, building.

A *case* is one hand-written ``integrations/<name>/fixtures/<case>.json``: a
config, an event, a pinned clock, and either the vendor's documented answer
(``response``) or the error the connector must raise (``expect_error``).
A *cassette* (``cassettes/<name>/<case>.yaml``, vcrpy format) freezes what
the connector sent for that case together with the documented answer, so a
later change in mapping shows up as a replay mismatch instead of passing
silently. Secrets are redacted on write, and the same redaction is applied
to live requests before matching, so a cassette never needs a real key.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import yaml

from sdk import __version__
from sdk.connector import Connector
from sdk.context import TransformContext
from sdk.delivery import USER_AGENT, build_kwargs
from sdk.registry import integrations_dir
from sdk.request import VendorRequest
from sdk.steps import resolve_offline
from sdk.testing.expect import Expectation, parse_expectation

PLACEHOLDER = "<REDACTED>"
CASSETTE_SOURCE = "vendor documentation examples; built offline, no live endpoint"
TODO_MARK = "TODO"
OUTCOMES = ("success", "retry", "throttle", "abort")

# Header and query names whose values are credentials whatever the spec says.
SENSITIVE_NAME = re.compile(
    r"(?i)(authori[sz]ation|api[-_]?key|api[-_]?secret|secret|token|password|passwd|credential|signature"
    r"|(^|[-_])key$)"
)
# Settings names that look like credentials; the linter insists these are marked `secret: true`.
SECRET_LIKE_SETTING = re.compile(r"(?i)(api_?key|secret|token|password|passwd|credential|private_?key)")
# Transport headers httpx adds on its own; they say nothing about the connector.
TRANSPORT_HEADERS = {"host", "accept", "accept-encoding", "connection", "content-length", "user-agent"}


def cassettes_dir(root: Path | None = None) -> Path:
    """``cassettes/`` next to the integrations folder (honours ``SLUICE_INTEGRATIONS_DIR``)."""
    return (root or integrations_dir()).resolve().parent / "cassettes"


@dataclass
class Case:
    """One fixture file, parsed; ``problems`` says what to fix."""

    integration: str
    name: str
    path: Path
    description: str = ""
    # repr=False: configs hold (fake) credentials, which must not show up in test output
    config: dict[str, Any] = field(default_factory=dict, repr=False)
    event: dict[str, Any] = field(default_factory=dict)
    now: str | None = None
    response: dict[str, Any] | None = None
    expect_error: str | None = None
    response_source: str | None = None
    # The vendor request(s) this event must cause, written from the vendor docs (sdk.testing.expect).
    expect: Expectation | None = None
    # What the router must make of ``response``, as the vendor documents it: outcome, reason, doc.
    classification: dict[str, Any] | None = None
    problems: list[str] = field(default_factory=list)
    # Documented vendor answers for a connector's declared steps ({"token": {status, body}, "lookup":
    # {...}}, see sdk/steps.py); ``answers`` pairs each request of the last ``run`` with its step answer.
    steps: dict[str, Any] | None = None
    answers: list[dict[str, Any] | None] = field(default_factory=list, repr=False)

    @property
    def expected_outcome(self) -> str | None:
        c = self.classification or {}
        return c.get("outcome") if isinstance(c.get("outcome"), str) else None

    @property
    def event_type(self) -> str:
        t = self.event.get("type") if isinstance(self.event, dict) else None
        return str(t).strip().lower() if isinstance(t, str) else ""

    @property
    def id(self) -> str:
        return f"{self.integration}-{self.name}"

    def context(self) -> TransformContext:
        seed = str(self.event.get("messageId") or "") if isinstance(self.event, dict) else ""
        return TransformContext.at(self.now or "2024-01-01T00:00:00Z", seed=seed)

    def run(self, connector: Connector) -> list[VendorRequest]:
        """Transform the case's event the way production would, with the case's pinned clock; a request
        with declared steps becomes its step requests and itself, resolved against ``steps``."""
        requests = connector.transform(self.event, self.config, self.context())
        self.answers = [None] * len(requests)
        if not connector.has_steps:
            return requests
        pairs = [p for r in requests for p in resolve_offline(connector, self.config, r, self.steps)]
        self.answers = [a for _, a in pairs]
        return [r for r, _ in pairs]


def _has_todo(value: Any) -> bool:
    if isinstance(value, str):
        return TODO_MARK in value
    if isinstance(value, dict):
        return any(_has_todo(k) or _has_todo(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_todo(v) for v in value)
    return False


def load_case(path: Path, integration: str) -> Case:
    case = Case(integration=integration, name=path.stem, path=path)
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        case.problems.append(f"{path}: not valid JSON ({e}); fix the file")
        return case
    if not isinstance(raw, dict):
        case.problems.append(f"{path}: a fixture is a JSON object with config, event, now and response")
        return case
    case.description = str(raw.get("description") or "")
    case.config = raw.get("config") if isinstance(raw.get("config"), dict) else {}
    case.event = raw.get("event") if isinstance(raw.get("event"), dict) else {}
    case.now = raw.get("now")
    case.response = raw.get("response") if isinstance(raw.get("response"), dict) else None
    case.expect_error = raw.get("expect_error")
    case.response_source = raw.get("response_source")
    case.steps = raw.get("steps") if isinstance(raw.get("steps"), dict) else None
    case.expect = parse_expectation(raw.get("expect"), path.name)
    if case.expect is not None:
        case.problems += case.expect.problems
    if case.response is not None:
        cls = case.response.get("classification")
        case.classification = cls if isinstance(cls, dict) else None
        if (
            case.classification is None
            or case.classification.get("outcome") not in OUTCOMES
            or not str(case.classification.get("reason") or "").strip()
        ):
            case.problems.append(
                f"{path}: response.classification must state what the router should make of this answer as "
                'the vendor documents it: {"outcome": "success"|"retry"|"throttle"|"abort", "reason": "...", '
                '"doc": "<vendor docs URL>"}'
            )
    if not case.description:
        case.problems.append(f'{path}: add a "description" saying what this case shows')
    if not isinstance(raw.get("config"), dict):
        case.problems.append(f'{path}: "config" must be an object of destination settings (fake credentials)')
    if not isinstance(raw.get("event"), dict) or not case.event_type:
        case.problems.append(f'{path}: "event" must be an object with a "type" (track, identify, ...)')
    if case.response is None and not case.expect_error:
        case.problems.append(
            f'{path}: give either "response" (the vendor\'s documented success answer: status, '
            "headers, body) "
            f'or "expect_error" (e.g. "instrumentation_error")'
        )
    if case.response is not None and not isinstance(case.response.get("status"), int):
        case.problems.append(
            f"{path}: response.status must be the HTTP status the vendor documents, e.g. 200"
        )
    # a draft expectation carries TODO doc placeholders on purpose; acceptance checks those
    if _has_todo({k: v for k, v in raw.items() if k != "expect"}):
        case.problems.append(
            f"{path}: still contains {TODO_MARK} placeholders; replace them with a real example event, fake "
            f"credentials and the vendor's documented response"
        )
    return case


def load_cases(folder: Path) -> list[Case]:
    fx = folder / "fixtures"
    if not fx.is_dir():
        return []
    return [load_case(p, folder.name) for p in sorted(fx.glob("*.json"))]


# --------------------------------------------------------------------------------------------------
# Redaction
# --------------------------------------------------------------------------------------------------
def secret_values(connector: Connector, configs: list[dict[str, Any]]) -> list[str]:
    """Every value of a ``secret: true`` setting across ``configs``, longest first (so substrings go last)."""
    out: set[str] = set()
    for cfg in configs:
        out.update(connector.spec.secret_values(cfg))
    return sorted(out, key=len, reverse=True)


class Redactor:
    """Replaces credentials: secret setting values anywhere, sensitive headers and params whole."""

    def __init__(self, secrets: list[str]):
        self.secrets = [s for s in secrets if len(s) >= 3]

    def text(self, s: str) -> str:
        for v in self.secrets:
            if v in s:
                s = s.replace(v, PLACEHOLDER)
        return s

    def url(self, url: str) -> str:
        whole = self.text(url)
        if whole != url and "://" not in whole:
            return whole  # the URL itself is the credential (an incoming-webhook URL): nothing of it is kept
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        query = [(k, PLACEHOLDER if SENSITIVE_NAME.search(k) else self.text(v)) for k, v in query]
        netloc = parts.netloc
        if "@" in netloc:
            netloc = PLACEHOLDER + "@" + netloc.split("@", 1)[1]
        rebuilt = urlunsplit(
            (parts.scheme, netloc, self.text(parts.path), urlencode(query, safe="<>"), parts.fragment)
        )
        return rebuilt

    def header(self, name: str, value: str) -> str:
        if SENSITIVE_NAME.search(name):
            return PLACEHOLDER
        return self.text(value)

    def vcr_request(self, request: Any) -> Any:
        """vcrpy ``before_record_request`` hook: used on write AND on replay, so both sides match."""
        request.uri = self.url(request.uri)
        for k in list(request.headers):
            request.headers[k] = self.header(k, str(request.headers[k]))
        body = request.body
        if body:
            text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
            request.body = self.text(text).encode()
        return request

    def vcr_response(self, response: dict[str, Any]) -> dict[str, Any]:
        body = response.get("body", {}).get("string")
        if isinstance(body, bytes):
            body = body.decode("utf-8", "replace")
        if isinstance(body, str):
            response["body"]["string"] = self.text(body)
        headers = response.get("headers", {})
        for k, vals in list(headers.items()):
            headers[k] = [self.header(k, str(v)) for v in vals]
        return response


def safe_url(url: str) -> str:
    """``url`` fit for an error message: credential-like query parameters and userinfo replaced."""
    return Redactor([]).url(url)


def redacted_wire(req: VendorRequest, secrets: list[str]) -> dict[str, Any]:
    """``req.to_wire()`` with secrets and credential headers/params replaced, for messages and diffs."""
    red = Redactor(secrets)
    if req.transport != "http":
        return transport_request(req, red)
    w = req.to_wire()
    w["url"] = red.url(w["url"])
    w["headers"] = {k: red.header(k, str(v)) for k, v in w["headers"].items()}
    w["params"] = {k: (PLACEHOLDER if SENSITIVE_NAME.search(k) else v) for k, v in w["params"].items()}
    for key in ("json", "form", "text"):
        if key in w:
            w[key] = json.loads(red.text(json.dumps(w[key], ensure_ascii=False)))
    return w


# --------------------------------------------------------------------------------------------------
# Cassettes
# --------------------------------------------------------------------------------------------------
def cassette_path(case: Case, root: Path | None = None) -> Path:
    return cassettes_dir(root) / case.integration / f"{case.name}.yaml"


def wire_request(req: VendorRequest) -> dict[str, Any]:
    """The request as it goes on the wire (URL with query, headers, body text): what a cassette stores."""
    import httpx

    kw = build_kwargs(req, None)
    built = httpx.Request(
        kw["method"], kw["url"], params=kw.get("params"), headers=kw["headers"], content=kw.get("content")
    )
    headers = {k: v for k, v in kw["headers"].items() if k.lower() not in TRANSPORT_HEADERS}
    return {
        "method": built.method,
        "uri": str(built.url),
        "headers": headers,
        "body": (kw.get("content") or b"").decode("utf-8"),
    }


def transport_request(req: VendorRequest, red: Redactor) -> dict[str, Any]:
    """A non-HTTP request as a cassette stores it (vcrpy cannot hold a Redis exchange): the transport and
    its operation, ``to_wire()`` form, secrets redacted. Its answer is stored like an HTTP answer (status,
    headers, body), which is the form every transport answers in (sdk/transports)."""
    return {"transport": req.transport, "raw": json.loads(red.text(json.dumps(req.raw, ensure_ascii=False)))}


def _response_body_text(body: Any) -> str:
    if body is None:
        return ""
    if isinstance(body, str):
        return body
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def build_cassette(
    connector: Connector, case: Case, expected_outcome: str, secrets: list[str]
) -> dict[str, Any]:
    """The cassette dict for ``case``: one interaction per produced request, all answered by the fixture."""
    requests = case.run(connector)
    # A declared token step's answer holds an access token: a credential too, never kept in a cassette.
    ex = connector.spec.auth.exchange
    token = ((case.steps or {}).get("token") or {}).get("body")
    has = ex is not None and isinstance(token, dict) and bool(token.get(ex.token_path))
    issued = [str(token[ex.token_path])] if has else []
    red = Redactor([*secrets, *issued])
    interactions = []
    for req, step_answer in zip(requests, case.answers or [None] * len(requests), strict=True):
        resp = step_answer or case.response or {}  # a declared step's own documented answer
        status = int(resp.get("status", 200))
        try:
            message = HTTPStatus(status).phrase
        except ValueError:
            message = ""
        response = red.vcr_response(
            {
                "status": {"code": status, "message": message},
                "headers": {k: [str(v)] for k, v in (resp.get("headers") or {}).items()},
                "body": {"string": _response_body_text(resp.get("body"))},
            }
        )
        if req.transport != "http":
            interactions.append({"request": transport_request(req, red), "response": response})
            continue
        w = wire_request(req)
        headers = {k: [red.header(k, str(v))] for k, v in sorted(w["headers"].items())}
        interactions.append(
            {
                "request": {
                    "method": w["method"],
                    "uri": red.url(w["uri"]),
                    "headers": headers,
                    # "" not None: a body-less request (DELETE) replays as b"", which None never matches
                    "body": red.text(w["body"]),
                },
                "response": response,
            }
        )
    provenance = cassette_provenance(
        connector,
        case,
        source=CASSETTE_SOURCE,
        response_source=case.response_source or "the vendor's documented response example",
        expected_outcome=expected_outcome,
    )
    return {"interactions": interactions, "version": 1, "metadata": {"provenance": provenance}}


def now_stamp() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def cassette_provenance(
    connector: Connector,
    case: Case,
    *,
    source: str,
    response_source: str,
    expected_outcome: str,
    recorded_at: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A cassette's ``metadata.provenance``: where its answers come from and what they must mean."""
    prov: dict[str, Any] = {"recorded_at": recorded_at or now_stamp(), "source": source, **extra}
    prov.update(
        {
            "response_source": response_source,
            "fixture": f"integrations/{case.integration}/fixtures/{case.name}.json",
            "integration": case.integration,
            "vendor_api_version": connector.spec.vendor.api_version,
            "vendor_docs": list(connector.spec.vendor.docs),
            "sdk_version": __version__,
            "user_agent": USER_AGENT,
            "redacted": PLACEHOLDER,
            "expected_classification": expected_outcome,
            "expected_reason": str((case.classification or {}).get("reason") or ""),
        }
    )
    return prov


def dump_cassette(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


def read_cassette(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict) or "interactions" not in data:
        raise ValueError(f"{path} is not a vcrpy cassette; rebuild it with `sluice cassettes build`")
    return data


def provenance(data: dict[str, Any]) -> dict[str, Any]:
    return ((data.get("metadata") or {}).get("provenance")) or {}


LIVE_SOURCE = "live"


def is_live(data: dict[str, Any]) -> bool:
    """A cassette recorded against the real vendor (``sluice cassettes record``), not built offline."""
    return provenance(data).get("source") == LIVE_SOURCE


def build_cassettes(
    connector: Connector,
    folder: Path,
    root: Path | None = None,
    errors: list[str] | None = None,
    drafted: list[str] | None = None,
    kept_live: list[str] | None = None,
) -> list[Path]:
    """(Re)write every cassette of one integration from its fixtures. Error cases get none.

    A success fixture the connector rejects is reported in ``errors`` (and gets no cassette) rather than
    stopping the build, so one broken case does not hide the others. A success fixture without an
    accepted expectation gets a *draft* one from the connector's output (named in ``drafted``), which
    the contract suite refuses until a person accepts it; accepted expectations are never rewritten.
    Cassettes recorded live are kept as they are (named in ``kept_live``): only a new recording
    replaces them.
    """
    from sdk.errors import SluiceError
    from sdk.testing.expect import delivered, set_draft

    cases = load_cases(folder)
    secrets = secret_values(connector, [c.config for c in cases])
    out_dir = cassettes_dir(root) / folder.name
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    wanted = set()
    for case in cases:
        if case.problems and errors is not None:
            errors.extend(case.problems)  # a fixture the suite refuses gets no cassette, and says why
        if case.expect_error or case.response is None or case.problems:
            continue
        path = out_dir / f"{case.name}.yaml"
        outcome = case.expected_outcome or "success"
        try:
            if case.expect is None or not case.expect.accepted:
                wire = delivered(connector, case.run(connector), case.config)
                if set_draft(case.path, wire) and drafted is not None:
                    drafted.append(case.name)
            data = build_cassette(connector, case, outcome, secrets)
        except SluiceError as e:
            if errors is not None:
                errors.append(f"{case.path.name}: {e.type}: {e.message}")
            continue
        wanted.add(path.name)
        if path.exists():
            try:
                old = read_cassette(path)
            except (ValueError, yaml.YAMLError):
                old = None
            if old is not None and is_live(old):
                if kept_live is not None:
                    kept_live.append(case.name)
                continue
            if old is not None:
                # Keep recorded_at stable when nothing else changed, so rebuilding is idempotent for git.
                stamp = data["metadata"]["provenance"]["recorded_at"]
                data["metadata"]["provenance"]["recorded_at"] = provenance(old).get("recorded_at")
                if dump_cassette(old) != dump_cassette(data):
                    data["metadata"]["provenance"]["recorded_at"] = stamp
        path.write_text(dump_cassette(data))
        written.append(path)
    for stale in out_dir.glob("*.yaml"):
        if stale.name not in wanted:
            stale.unlink()
    return written
