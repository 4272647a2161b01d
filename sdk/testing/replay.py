"""Send a connector's real requests through httpx against recorded or mocked vendors.

``replay_case`` plays a case's requests inside its vcrpy cassette (record mode
``none``: an unmatched request fails, nothing reaches the network).
``error_scenarios`` / ``run_error_scenario`` put a respx mock where the vendor
would be and check what the classifier makes of each failure mode.

Non-HTTP transports (sdk/transports) get the same checks in transport-neutral form: their cassettes store
each operation (``{"transport", "raw"}``, redacted) with the documented answer, and replay compares the
operations produced now with the recorded ones, in order; an error scenario is the answer (or the
``OSError`` a transport raises for a timeout or a broken connection) put where the transport would answer,
classified as the router classifies it.
"""

from __future__ import annotations

import difflib
import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import respx
import vcr
from vcr.errors import CannotOverwriteExistingCassetteException

from sdk.classify import Classification, Outcome, classify_exception
from sdk.connector import Connector
from sdk.delivery import DeliveryResult, send
from sdk.request import VendorRequest
from sdk.testing.cases import (
    TRANSPORT_HEADERS,
    Case,
    Redactor,
    read_cassette,
    transport_request,
    wire_request,
)
from sdk.testing.responses import scenario_outcome


def _headers_matcher(r1: Any, r2: Any) -> None:
    def norm(r: Any) -> dict[str, str]:
        return {k.lower(): str(v) for k, v in r.headers.items() if k.lower() not in TRANSPORT_HEADERS}

    a, b = norm(r1), norm(r2)
    assert a == b, f"headers differ: live {a} != recorded {b}"


@contextmanager
def network_blocked() -> Iterator[None]:
    """Belt and braces on top of record mode ``none``: any real connection attempt fails loudly."""

    def refuse(self: socket.socket, address: Any) -> None:
        raise RuntimeError(f"network access blocked in contract tests (tried {address!r})")

    original = socket.socket.connect
    socket.socket.connect = refuse  # type: ignore[method-assign]
    try:
        yield
    finally:
        socket.socket.connect = original  # type: ignore[method-assign]


def make_vcr(redactor: Redactor) -> vcr.VCR:
    v = vcr.VCR(
        record_mode="none",
        match_on=["method", "uri", "body", "sluice_headers"],
        before_record_request=redactor.vcr_request,
        decode_compressed_response=True,
    )
    v.register_matcher("sluice_headers", _headers_matcher)
    return v


def _describe_mismatch(requests: list[VendorRequest], cassette: Path, redactor: Redactor) -> str:
    try:
        recorded = read_cassette(cassette)["interactions"]
    except (OSError, ValueError) as e:
        return str(e)
    live = []
    for r in requests:
        w = wire_request(r)
        live.append(
            {
                "method": w["method"],
                "uri": redactor.url(w["uri"]),
                "headers": {k: redactor.header(k, v) for k, v in sorted(w["headers"].items())},
                "body": _pretty(redactor.text(w["body"])),
            }
        )
    rec = [
        {
            "method": i["request"]["method"],
            "uri": i["request"]["uri"],
            "headers": {
                k: (v[0] if isinstance(v, list) else v) for k, v in sorted(i["request"]["headers"].items())
            },
            "body": _pretty(i["request"].get("body") or ""),
        }
        for i in recorded
    ]
    a = json.dumps(rec, indent=1, ensure_ascii=False, sort_keys=True).splitlines()
    b = json.dumps(live, indent=1, ensure_ascii=False, sort_keys=True).splitlines()
    return "\n".join(list(difflib.unified_diff(a, b, "recorded", "produced now", lineterm=""))[:80])


def _pretty(body: str) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return body


def replay_case(
    connector: Connector, case: Case, cassette: Path, secrets: list[str]
) -> tuple[list[VendorRequest], list[DeliveryResult]]:
    """Send ``case``'s requests through httpx inside ``cassette``; AssertionError on mismatch."""
    __tracebackhide__ = True  # its arguments include the secrets; keep them out of failure reports
    requests = case.run(connector)
    redactor = Redactor(secrets)
    if any(r.transport != "http" for r in requests):
        return requests, _replay_transport(case, cassette, requests, redactor)
    results: list[DeliveryResult] = []
    try:
        cassette_ctx = make_vcr(redactor).use_cassette(str(cassette), allow_playback_repeats=False)
        with network_blocked(), cassette_ctx as cass:
            with httpx.Client() as client:
                for req in requests:
                    results.append(send(client, req, timeout=5.0))
            if not cass.all_played:
                raise AssertionError(
                    f"{cassette} records {len(cass.data)} request(s) but the connector produced "
                    f"{len(requests)}; "
                    f"if the change is intended run `sluice cassettes build {case.integration}` and "
                    "review the diff\n" + _describe_mismatch(requests, cassette, redactor)
                )
    except CannotOverwriteExistingCassetteException:
        # vcrpy's own message quotes the live, unredacted request: never surface it (secrets in CI logs).
        raise AssertionError(
            f"fixture {case.path.name}: the connector's request no longer equals the one recorded in "
            f"{cassette}. "
            f"If the change is intended, run `sluice cassettes build {case.integration}` and review "
            "the diff; "
            f"otherwise fix the mapping.\n{_describe_mismatch(requests, cassette, redactor)}"
        ) from None
    return requests, results


def _replay_transport(
    case: Case, cassette: Path, requests: list[VendorRequest], redactor: Redactor
) -> list[DeliveryResult]:
    """Replay for non-HTTP operations: each produced operation (redacted ``to_wire()`` form) must equal
    the recorded one, in order; the recorded answers are what the transport answered."""
    recorded = read_cassette(cassette)["interactions"]
    produced = [
        transport_request(r, redactor) if r.transport != "http" else {"transport": "http"} for r in requests
    ]
    stored = [i["request"] for i in recorded]
    if produced != stored:
        a = json.dumps(stored, indent=1, ensure_ascii=False, sort_keys=True).splitlines()
        b = json.dumps(produced, indent=1, ensure_ascii=False, sort_keys=True).splitlines()
        diff = "\n".join(list(difflib.unified_diff(a, b, "recorded", "produced now", lineterm=""))[:80])
        raise AssertionError(
            f"fixture {case.path.name}: the connector's operations differ from those recorded in {cassette}. "
            f"If intended, run `sluice cassettes build {case.integration}` and review the diff; "
            f"otherwise fix the mapping.\n{diff}"
        )
    out = []
    for inter in recorded:
        resp = inter["response"]
        headers = {
            k: (v[0] if isinstance(v, list) and v else v) for k, v in (resp.get("headers") or {}).items()
        }
        body = (resp.get("body") or {}).get("string") or ""
        out.append(DeliveryResult(status=int(resp["status"]["code"]), headers=headers, body=body.encode()))
    return out


# --------------------------------------------------------------------------------------------------
# Error paths
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Scenario:
    """One generic failure mode; what it must mean is data (``sdk.testing.responses``), not code."""

    name: str
    status: int | None = None  # None: a network failure instead of an answer
    exception: type[Exception] | None = None
    headers: tuple[tuple[str, str], ...] = ()
    retry_after: float | None = None


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("http400", 400),
    Scenario("http401", 401),
    Scenario("http404", 404),
    Scenario("http408", 408),
    Scenario("http413", 413),
    Scenario("http429", 429, headers=(("Retry-After", "7"),), retry_after=7.0),
    Scenario("http500", 500),
    Scenario("http503", 503),
    Scenario("timeout", exception=httpx.ReadTimeout),
    Scenario("connection_reset", exception=httpx.RemoteProtocolError),
)


def expected_outcome(connector: Connector, sc: Scenario) -> Outcome:
    """The suite's default for ``sc``, unless the connector's documented responses say otherwise."""
    return scenario_outcome(connector.folder, sc.name)


def run_error_scenario(connector: Connector, req: VendorRequest, sc: Scenario) -> tuple[Classification, int]:
    """Send ``req`` to a respx-mocked vendor failing as ``sc`` says; return classification, calls."""
    if req.transport != "http":
        return _transport_scenario(connector, req, sc), 1
    with respx.mock(assert_all_called=False, assert_all_mocked=True) as mock:
        base = req.url.split("?", 1)[0]
        route = mock.route(method=req.method.upper(), url__startswith=base)
        if sc.exception is not None:
            route.side_effect = sc.exception("simulated " + sc.name.replace("_", " "))
        else:
            route.return_value = httpx.Response(
                sc.status or 500, headers=dict(sc.headers), json={"error": f"simulated {sc.status}"}
            )
        with httpx.Client() as client:
            try:
                res = send(client, req, timeout=2.0)
            except httpx.TransportError as e:
                return classify_exception(e), route.call_count
        return connector.classify(res.status, res.headers, res.body), route.call_count


# What a transport raises for the exception scenarios (sdk/transports: connection failures are OSError).
_TRANSPORT_EXCEPTIONS: dict[type[Exception], type[OSError]] = {
    httpx.ReadTimeout: TimeoutError,
    httpx.RemoteProtocolError: ConnectionResetError,
}


def _transport_scenario(connector: Connector, req: VendorRequest, sc: Scenario) -> Classification:
    """``sc`` where a non-HTTP transport answers: its answer in the transport's form (status, headers,
    body), or the ``OSError`` it raises for a timeout or a reset connection, classified as the router
    does. The operation itself must be one the transport accepts."""
    from sdk.transports import transport_class

    transport_class(req.transport).check(req.raw)
    if sc.exception is not None:
        exc = _TRANSPORT_EXCEPTIONS.get(sc.exception, OSError)("simulated " + sc.name.replace("_", " "))
        return classify_exception(exc)
    body = json.dumps({"error": f"simulated {sc.status}"}).encode()
    return connector.classify(sc.status or 500, dict(sc.headers), body)
