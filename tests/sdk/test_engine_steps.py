"""Declared steps (sdk/steps.py, spec keys auth.exchange, endpoint lookup/found): a tiny generic spec,
scripted vendor answers (the vendor boundary), the runner's caching, renewal and classification."""

from __future__ import annotations

import asyncio
import json

import pytest

from sdk.classify import Outcome
from sdk.connector import Connector
from sdk.errors import SpecError
from sdk.request import VendorRequest
from sdk.spec.model import DestinationSpec
from sdk.steps import Answer, StepRunner, fill, needs_steps, probe

SPEC = {
    "spec_version": 2,
    "name": "crm",
    "display_name": "CRM",
    "settings": {"type": "object", "properties": {"user": {"type": "string"},
                                                  "secret": {"type": "string", "secret": True}}},
    "event_types": ["identify"],
    "endpoints": {
        "token": {"url": "https://login.crm.test/oauth/token", "body_format": "form"},
        "find": {"method": "GET", "url": "${auth.base}/find", "body_format": "none",
                 "lookup": {"take": "records.0.id"}},
        "create": {"url": "${auth.base}/people", "found": "update"},
        "update": {"method": "PATCH", "url": "${auth.base}/people/${lookup}"},
    },
    "auth": {"type": "oauth_token", "exchange": {
        "endpoint": "token", "form": {"grant_type": "password", "username": "{{ settings.user }}",
                                      "password": "{{ settings.secret }}", "scope": "{{ settings.scope }}"},
        "fields": {"base": "instance"}, "ttl_seconds": 100}},
    "mappings": {"identify": {"requests": [
        {"endpoint": "find", "params": {"email": "traits.email"}},
        {"endpoint": "create", "body": {"email": "traits.email"}},
    ]}},
}  # fmt: skip
CONFIG = {"user": "ann", "secret": "s3cr3t-pass"}
EVENT = {"type": "identify", "traits": {"email": "a@b.co"}}


def _json(status: int, body: object) -> Answer:
    return Answer(status, {"content-type": "application/json"}, json.dumps(body).encode())


class Vendor:
    """Scripted answers by (method, path); records what was asked."""

    def __init__(self, answers: dict[str, list[Answer]]):
        self.answers, self.asked = answers, []

    async def __call__(self, req: VendorRequest) -> Answer:
        key = f"{req.method} {req.url.split('://', 1)[1].split('/', 1)[1]}"
        self.asked.append((key, req))
        queue = self.answers[key]
        return queue.pop(0) if len(queue) > 1 else queue[0]


def _run(runner: StepRunner, req: VendorRequest, vendor: Vendor, deliver_status: list[int] | None = None):
    sent: list[VendorRequest] = []
    statuses = list(deliver_status or [201])

    async def deliver(r: VendorRequest):
        sent.append(r)
        return statuses.pop(0) if len(statuses) > 1 else statuses[0]

    res = asyncio.run(runner.send(req, vendor, deliver, lambda c, step: (c, step), lambda r: r))
    return res, sent


def _token(tok: str = "T1", expires_in: int | None = None) -> Answer:
    body = {"access_token": tok, "instance": "https://eu7.crm.test/"}
    if expires_in is not None:
        body["expires_in"] = expires_in
    return _json(200, body)


def test_transform_carries_the_lookup_and_the_found_variant_with_placeholders():
    c = Connector(DestinationSpec.model_validate(SPEC))
    [req] = c.transform(EVENT, CONFIG)
    assert req.url == "${auth.base}/people" and req.headers["Authorization"] == "Bearer ${auth.access_token}"
    assert req.steps["lookup"]["take"] == "records.0.id"
    assert req.steps["lookup"]["request"]["params"] == {"email": "a@b.co"}
    assert req.steps["found"]["method"] == "PATCH" and req.steps["found"]["url"].endswith("/people/${lookup}")
    assert needs_steps(req)
    tok = c.token_request(CONFIG)
    assert tok.form == {"grant_type": "password", "username": "ann", "password": "s3cr3t-pass"}  # no scope
    assert "Authorization" not in tok.headers


def test_lookup_miss_creates_and_hit_updates_with_one_cached_token():
    c = Connector(DestinationSpec.model_validate(SPEC))
    [req] = c.transform(EVENT, CONFIG)
    vendor = Vendor(
        {
            "POST oauth/token": [_token()],
            "GET find": [_json(200, {"records": []}), _json(200, {"records": [{"id": "p/7"}]})],
        }
    )
    runner = StepRunner(c, CONFIG)
    res, sent = _run(runner, req, vendor)
    assert res == 201 and sent[0].method == "POST" and sent[0].url == "https://eu7.crm.test/people"
    assert sent[0].headers["Authorization"] == "Bearer T1" and sent[0].steps is None
    res, sent = _run(runner, req, vendor)
    assert sent[0].method == "PATCH" and sent[0].url == "https://eu7.crm.test/people/p%2F7"
    assert sent[0].json_body == {"email": "a@b.co"}
    assert runner.fetches == 1 and [k for k, _ in vendor.asked].count("POST oauth/token") == 1


def test_token_expires_by_its_lifetime_and_is_renewed_on_401():
    c = Connector(DestinationSpec.model_validate(SPEC))
    [req] = c.transform(EVENT, CONFIG)
    now = [0.0]
    vendor = Vendor(
        {
            "POST oauth/token": [_token("T1", 120), _token("T2"), _token("T3")],
            "GET find": [_json(200, {"records": []})],
        }
    )
    runner = StepRunner(c, CONFIG, clock=lambda: now[0])
    _run(runner, req, vendor)
    now[0] = 89.0  # 120 s minus the 30 s margin: still valid
    _run(runner, req, vendor)
    assert runner.fetches == 1
    now[0] = 91.0
    _, sent = _run(runner, req, vendor)
    assert runner.fetches == 2 and sent[0].headers["Authorization"] == "Bearer T2"
    # The write answers 401 once: one renewal, one more delivery, then the answer stands.
    res, sent = _run(runner, req, vendor, deliver_status=[401, 201])
    assert (
        res == 201
        and runner.fetches == 3
        and [r.headers["Authorization"] for r in sent] == ["Bearer T2", "Bearer T3"]
    )
    res, sent = _run(runner, req, vendor, deliver_status=[401])
    assert res == 401 and len(sent) == 2  # renewed once only


def test_token_failures_are_classified_and_redacted():
    c = Connector(DestinationSpec.model_validate(SPEC))
    [req] = c.transform(EVENT, CONFIG)
    bad = _json(400, {"error": "invalid_grant", "error_description": "bad credentials s3cr3t-pass"})
    (cls, step), sent = _run(StepRunner(c, CONFIG), req, Vendor({"POST oauth/token": [bad]}))
    assert step == "token" and cls.outcome is Outcome.ABORT and not sent
    assert "invalid_grant" in cls.reason and "s3cr3t-pass" not in cls.reason
    (cls, _), _ = _run(StepRunner(c, CONFIG), req, Vendor({"POST oauth/token": [_json(503, {})]}))
    assert cls.outcome is Outcome.RETRY
    (cls, _), _ = _run(StepRunner(c, CONFIG), req, Vendor({"POST oauth/token": [_json(200, {"x": 1})]}))
    assert cls.outcome is Outcome.ABORT and "access_token" in cls.reason
    no_instance = _json(200, {"access_token": "T"})
    (cls, _), _ = _run(StepRunner(c, CONFIG), req, Vendor({"POST oauth/token": [no_instance]}))
    assert cls.outcome is Outcome.RETRY and "instance" in cls.reason


def test_lookup_failures_are_classified_and_a_lookup_401_renews_the_token():
    c = Connector(DestinationSpec.model_validate(SPEC))
    [req] = c.transform(EVENT, CONFIG)
    runner = StepRunner(c, CONFIG)
    vendor = Vendor({"POST oauth/token": [_token()], "GET find": [_json(500, {"message": "down"})]})
    (cls, step), sent = _run(runner, req, vendor)
    assert step == "lookup" and cls.outcome is Outcome.RETRY and not sent
    vendor = Vendor(
        {
            "POST oauth/token": [_token("T2")],
            "GET find": [_json(401, [{"errorCode": "INVALID_SESSION_ID"}]), _json(200, {"records": []})],
        }
    )
    runner = StepRunner(c, CONFIG)
    res, sent = _run(runner, req, vendor)
    assert res == 201 and runner.fetches == 2


def test_fill_and_probe():
    r = VendorRequest(
        url="${auth.base}/x/${lookup}",
        headers={"A": "Bearer ${auth.access_token}"},
        params={"id": "${lookup}"},
    )
    out = fill(r, {"base": "https://h", "access_token": "T"}, "a b")
    assert (out.url, out.headers["A"], out.params["id"]) == ("https://h/x/a%20b", "Bearer T", "a b")
    p = probe(r)
    assert p.url.startswith("https://instance.invalid/x/") and "${" not in p.headers["A"]


def test_spec_errors_name_the_problem():
    bad = json.loads(json.dumps(SPEC))
    bad["endpoints"]["create"]["found"] = "nowhere"
    with pytest.raises(ValueError, match="found 'nowhere' is not defined"):
        DestinationSpec.model_validate(bad)
    bad = json.loads(json.dumps(SPEC))
    bad["auth"]["exchange"]["endpoint"] = "nope"
    with pytest.raises(ValueError, match="auth.exchange.endpoint 'nope'"):
        DestinationSpec.model_validate(bad)
    bad = json.loads(json.dumps(SPEC))
    bad["auth"] = {"type": "oauth_token"}
    with pytest.raises(ValueError, match="needs exchange"):
        DestinationSpec.model_validate(bad)
    bad = json.loads(json.dumps(SPEC))
    bad["mappings"]["identify"]["requests"] = bad["mappings"]["identify"]["requests"][:1]
    with pytest.raises(SpecError, match="lookup step must be followed"):
        Connector(DestinationSpec.model_validate(bad)).transform(EVENT, CONFIG)


def test_transform_cli_resolves_steps_against_given_answers(tmp_path, monkeypatch):
    from sdk.cli import transform as cli

    monkeypatch.setattr(cli, "load_connector", lambda name: Connector(DestinationSpec.model_validate(SPEC)))
    line = json.dumps({"destination": "crm", "config": CONFIG, "event": EVENT})
    plain = cli.transform_line(line)
    assert plain["requests"][0]["url"] == "${auth.base}/people"
    answers = {"token": {"status": 200, "body": {"access_token": "T9", "instance": "https://x.crm.test"}},
               "lookup": {"status": 200, "body": {"records": [{"id": "42"}]}}}  # fmt: skip
    out = cli.transform_line(line, answers)
    [write] = out["requests"]
    assert (write["method"], write["url"]) == ("PATCH", "https://x.crm.test/people/42")
    assert write["headers"]["Authorization"] == "Bearer T9"
    token, lookup = out["step_requests"]
    assert token["request"]["form"]["password"] == "[redacted]" and "s3cr3t" not in json.dumps(out)
    assert lookup["request"]["url"] == "https://x.crm.test/find" and lookup["answer"] == answers["lookup"]


def test_sent_urls_match_their_endpoint_despite_placeholders():
    c = Connector(DestinationSpec.model_validate(SPEC))
    assert c.endpoint_matching("PATCH", "https://eu7.crm.test/people/p%2F7") == "update"
    assert c.endpoint_matching("GET", "https://eu7.crm.test/find?email=a") == "find"


def test_a_lookup_without_a_token_exchange():
    spec = json.loads(json.dumps(SPEC))
    del spec["auth"]
    for ep in spec["endpoints"].values():
        ep["url"] = ep["url"].replace("${auth.base}", "https://api.crm.test")
    c = Connector(DestinationSpec.model_validate(spec))
    assert c.has_steps
    [req] = c.transform(EVENT, CONFIG)
    vendor = Vendor({"GET find": [_json(200, {"records": [{"id": "9"}]})]})
    res, sent = _run(StepRunner(c, CONFIG), req, vendor)
    assert sent[0].url == "https://api.crm.test/people/9" and "Authorization" not in sent[0].headers
    assert [k for k, _ in vendor.asked] == ["GET find"]
