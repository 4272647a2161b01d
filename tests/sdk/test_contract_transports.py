"""The contract suite's transport-level capability: a non-HTTP destination's expectations, cassettes,
replay and error scenarios work on ``{"transport", "raw"}`` operations, generically (no destination is
named here but the registered Redis transport the spec below declares). Expectations written by hand."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from sdk.classify import Outcome
from sdk.connector import Connector
from sdk.request import VendorRequest
from sdk.spec.model import DestinationSpec
from sdk.testing.cases import Case, build_cassette, dump_cassette, redacted_wire
from sdk.testing.checks import request_problems
from sdk.testing.expect import parse_expectation, request_diff
from sdk.testing.replay import Scenario, replay_case, run_error_scenario

SPEC = {
    "spec_version": 2,
    "name": "kv",
    "display_name": "KV",
    "vendor": {"api_version": "1", "docs": ["https://redis.io/docs/latest/commands/hset/"]},
    "settings": {
        "type": "object",
        "properties": {"address": {"type": "string"}, "pw": {"type": "string", "secret": True}},
    },
    "event_types": ["identify"],
    "endpoints": {"w": {"transport": "redis"}},
    "mappings": {"identify": {"endpoint": "w", "body": {"key": "user:{{ userId }}", "fields": "traits"}}},
}


def _conn() -> Connector:
    return Connector(DestinationSpec.model_validate(SPEC))


def _case(tmp_path: Path, traits: dict) -> Case:
    return Case(
        integration="kv",
        name="c1",
        path=tmp_path / "c1.json",
        config={"address": "h:1", "pw": "hunter2-secret"},
        event={"type": "identify", "userId": "u1", "traits": traits},
        response={"status": 200, "body": {"reply": 1}},
    )


def test_an_http_endpoint_still_needs_a_url_and_a_transport_endpoint_takes_none():
    bad = {**SPEC, "endpoints": {"w": {"transport": "redis", "url": "https://x"}}}
    with pytest.raises(ValueError, match="no url"):
        DestinationSpec.model_validate(bad)
    with pytest.raises(ValueError, match="unknown transport"):
        DestinationSpec.model_validate({**SPEC, "endpoints": {"w": {"transport": "carrier_pigeon"}}})


def test_expectations_name_the_transport_and_compare_the_operation():
    [req] = _conn().transform({"type": "identify", "userId": "u1", "traits": {"a": "b"}}, {"address": "h:1"})
    assert req.to_wire() == {
        "transport": "redis",
        "raw": {"key": "user:u1", "fields": {"a": "b"}},
        "endpoint": "w",
    }
    op = {"transport": "redis", "raw": {"key": "user:u1", "fields": {"a": "b"}}}
    exp = parse_expectation(
        {"status": "accepted", "doc": {"url": "https://d", "section": "s"}, "requests": [op]}, "f"
    )
    assert exp is not None and exp.problems == []
    assert request_diff(exp.requests[0], req) == []
    assert request_diff({"transport": "redis", "raw": {"key": "user:u2", "fields": {"a": "b"}}}, req) == [
        'raw $.key: expected "user:u2", got "user:u1"'
    ]
    assert request_diff({"method": "POST", "url": "https://x"}, req)[0].startswith("transport:")
    broken = parse_expectation({"status": "accepted", "requests": [{"transport": "redis"}]}, "f")
    assert broken is not None and any("transport (its name) and raw" in p for p in broken.problems)


def test_malformed_operations_are_request_problems():
    bad = VendorRequest.from_wire({"transport": "redis", "raw": {"key": "", "fields": {}}})
    assert any("malformed" in p for p in request_problems(_conn(), bad))
    unknown = VendorRequest.from_wire({"transport": "nope", "raw": {}})
    assert any("unknown transport" in p for p in request_problems(_conn(), unknown))


def test_cassettes_store_the_redacted_operation_and_replay_compares_it(tmp_path):
    conn = _conn()
    case = _case(tmp_path, {"a": "b", "token": "hunter2-secret"})
    data = build_cassette(conn, case, "success", ["hunter2-secret"])
    text = dump_cassette(data)
    assert "hunter2-secret" not in text
    assert data["interactions"][0]["request"] == {
        "transport": "redis",
        "raw": {"key": "user:u1", "fields": {"a": "b", "token": "<REDACTED>"}},
    }
    path = tmp_path / "c1.yaml"
    path.write_text(text)
    _, results = replay_case(conn, case, path, ["hunter2-secret"])
    assert [(r.status, r.body) for r in results] == [(200, b'{"reply":1}')]
    changed = _case(tmp_path, {"a": "c", "token": "hunter2-secret"})
    with pytest.raises(AssertionError, match="differ from those recorded"):
        replay_case(conn, changed, path, ["hunter2-secret"])
    wire = redacted_wire(conn.transform(case.event, case.config)[0], ["hunter2-secret"])
    assert wire["raw"]["fields"]["token"] == "<REDACTED>"


@pytest.mark.parametrize(
    "scenario, outcome",
    [
        (Scenario("timeout", exception=httpx.ReadTimeout), Outcome.RETRY),
        (Scenario("connection_reset", exception=httpx.RemoteProtocolError), Outcome.RETRY),
        (Scenario("http400", 400), Outcome.ABORT),
        (Scenario("http503", 503), Outcome.RETRY),
    ],
)
def test_error_scenarios_are_answered_where_the_transport_answers(scenario, outcome):
    [req] = _conn().transform({"type": "identify", "userId": "u1", "traits": {"a": "b"}}, {"address": "h:1"})
    got, calls = run_error_scenario(_conn(), req, scenario)
    assert (got.outcome, calls) == (outcome, 1)
