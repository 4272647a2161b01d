"""Gateway: auth, validation, limits, normalisation, persist-before-ack, recovery from a lost connection."""

from __future__ import annotations

import gzip
import json

import httpx
import pytest
from pipeline_helpers import WRITE_KEY, pipeline_config, sql, wait_until


@pytest.fixture
def gw(start_pipeline):
    cfg = pipeline_config([], gateway={"max_request_bytes": 200_000, "max_event_bytes": 4096})
    return start_pipeline(cfg)


def post(gw, path, body, auth=(WRITE_KEY, ""), headers=None):
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(f"{gw.url}{path}", content=content, auth=auth, headers=headers or {}, timeout=30)


def stored(dsn):
    return [r[0] for r in sql(dsn, "SELECT event FROM gateway_jobs ORDER BY id")]


def test_track_is_persisted_before_the_ack_with_server_fields(gw, pg_dsn):
    r = post(gw, "/v1/track", {"userId": "u1", "event": "Signed Up", "properties": {"plan": "pro"}})
    assert r.status_code == 200, r.text
    assert r.json() == {"success": True}
    # Persist-before-ack: the row is already committed when the response arrives.
    rows = sql(pg_dsn, "SELECT source, event FROM gateway_jobs")
    assert len(rows) == 1
    source, ev = rows[0]
    assert source == "web"
    assert ev["type"] == "track" and ev["event"] == "Signed Up" and ev["properties"] == {"plan": "pro"}
    assert ev["messageId"]  # assigned
    assert ev["receivedAt"].endswith("Z")
    assert ev["timestamp"] == ev["receivedAt"]  # no client time at all: receivedAt


def test_write_key_in_body_and_basic_auth(gw, pg_dsn):
    assert post(gw, "/v1/identify", {"userId": "u1", "writeKey": WRITE_KEY}, auth=None).status_code == 200
    ev = stored(pg_dsn)[0]
    assert "writeKey" not in ev, "the write key must not be stored with the event"
    r = post(gw, "/v1/identify", {"userId": "u1"}, auth=("wrong-key", ""))
    assert r.status_code == 401 and "write key" in r.json()["message"]
    r = post(gw, "/v1/identify", {"userId": "u1"}, auth=None)
    assert r.status_code == 401 and "Basic-auth" in r.json()["message"]


def test_clock_skew_correction(gw, pg_dsn):
    # The client's clock is a year behind; only the 10 s between its two readings matter.
    body = {
        "userId": "u1",
        "event": "E",
        "originalTimestamp": "2020-01-01T00:00:00.000Z",
        "sentAt": "2020-01-01T00:00:10.000Z",
    }
    assert post(gw, "/v1/track", body).status_code == 200
    ev = stored(pg_dsn)[0]
    from pipeline.gateway.events import parse_time

    delta = parse_time(ev["receivedAt"], "", "") - parse_time(ev["timestamp"], "", "")
    assert delta.total_seconds() == pytest.approx(10.0, abs=0.002)
    # A client-supplied timestamp is kept as is.
    assert (
        post(gw, "/v1/track", {"userId": "u1", "event": "E", "timestamp": "2021-05-05T00:00:00Z"}).status_code
        == 200
    )
    assert stored(pg_dsn)[1]["timestamp"] == "2021-05-05T00:00:00Z"


def test_batch_merges_top_level_context_and_integrations(gw, pg_dsn):
    body = {
        "batch": [
            {
                "type": "track",
                "userId": "u1",
                "event": "A",
                "context": {"ip": "1.1.1.1", "library": {"name": "own"}},
            },
            {"type": "identify", "anonymousId": "a1", "integrations": {"Webhook": False}},
        ],
        "context": {"library": {"name": "top", "version": "9"}, "locale": "en"},
        "integrations": {"All": True, "Webhook": True},
    }
    assert post(gw, "/v1/batch", body).status_code == 200
    a, b = stored(pg_dsn)
    assert a["context"] == {"ip": "1.1.1.1", "library": {"name": "own", "version": "9"}, "locale": "en"}
    assert a["integrations"] == {"All": True, "Webhook": True}
    assert b["context"] == {"library": {"name": "top", "version": "9"}, "locale": "en"}
    assert b["integrations"] == {"All": True, "Webhook": False}  # the event's own value wins


def test_gzip_body(gw, pg_dsn):
    raw = json.dumps({"batch": [{"type": "page", "userId": "u1", "name": "Home"}]}).encode()
    r = post(gw, "/v1/batch", gzip.compress(raw), headers={"Content-Encoding": "gzip"})
    assert r.status_code == 200, r.text
    assert stored(pg_dsn)[0]["name"] == "Home"
    r = post(gw, "/v1/batch", b"not gzip", headers={"Content-Encoding": "gzip"})
    assert r.status_code == 400 and "gzip" in r.json()["message"]


@pytest.mark.parametrize(
    ("path", "body", "fragment"),
    [
        ("/v1/track", b"{not json", "not valid JSON"),
        ("/v1/track", b"[1, 2]", "JSON object"),
        ("/v1/batch", {"batch": []}, "empty"),
        ("/v1/batch", {"events": []}, "'batch' array"),
        ("/v1/track", {"event": "E"}, "userId or an anonymousId"),
        ("/v1/track", {"userId": "u1", "event": "E", "properties": [1]}, "properties must be a JSON object"),
        ("/v1/track", {"userId": "u1"}, "'event' name"),
        ("/v1/track", {"userId": True, "event": "E"}, "userId must be a string"),
        ("/v1/batch", {"batch": [{"type": "bogus", "userId": "u"}]}, "type must be one of"),
        ("/v1/group", {"userId": "u1"}, "groupId"),
        ("/v1/alias", {"userId": "u1"}, "previousId"),
        ("/v1/track", {"userId": "u1", "event": "E", "timestamp": "yesterday"}, "ISO-8601"),
        ("/v1/track", b'{"userId": "u1", "event": "E", "properties": {"x": NaN}}', "NaN"),
        ("/v1/track", {"userId": "u1", "event": "E", "properties": {"x": "a\u0000b"}}, "NUL"),
    ],
)
def test_invalid_requests_are_400_with_a_message(gw, pg_dsn, path, body, fragment):
    r = post(gw, path, body)
    assert r.status_code == 400, r.text
    assert fragment in r.json()["message"]
    assert stored(pg_dsn) == []


def test_one_bad_event_rejects_the_whole_batch_naming_it(gw, pg_dsn):
    r = post(gw, "/v1/batch", {"batch": [{"type": "track", "userId": "u", "event": "ok"}, {"type": "track"}]})
    assert r.status_code == 400 and r.json()["message"].startswith("batch[1]")
    assert stored(pg_dsn) == []


def test_size_limits_are_413(gw, pg_dsn):
    big_event = {"userId": "u1", "event": "E", "properties": {"blob": "x" * 6000}}
    r = post(gw, "/v1/track", big_event)
    assert r.status_code == 413 and "4096 bytes" in r.json()["message"]
    many = {"batch": [{"type": "track", "userId": "u1", "event": "E", "properties": {"b": "y" * 3000}}] * 80}
    r = post(gw, "/v1/batch", many)
    assert r.status_code == 413 and "200000 bytes" in r.json()["message"]
    # gzip cannot be used to slip past the limit
    r = post(gw, "/v1/batch", gzip.compress(json.dumps(many).encode()), headers={"Content-Encoding": "gzip"})
    assert r.status_code == 413
    assert stored(pg_dsn) == []


def test_health_metrics_openapi(gw):
    h = httpx.get(f"{gw.url}/health")
    assert h.status_code == 200 and h.json()["status"] == "ok"
    assert post(gw, "/v1/screen", {"anonymousId": "a", "name": "S"}).status_code == 200
    m = httpx.get(f"{gw.url}/metrics").text
    assert 'sluice_gateway_events_accepted_total{source="web"}' in m
    doc = httpx.get(f"{gw.url}/openapi.json").json()
    assert doc["openapi"].startswith("3.") and "/v1/batch" in doc["paths"] and "/v1/track" in doc["paths"]


def test_backlog_bound_answers_503_with_retry_after(start_pipeline, pg_dsn):
    gw = start_pipeline(pipeline_config([], gateway={"max_backlog": 1}))
    r = post(gw, "/v1/batch", {"batch": [{"type": "identify", "userId": "u"}] * 2})
    assert r.status_code == 503 and r.headers["Retry-After"].isdigit()
    assert post(gw, "/v1/identify", {"userId": "u"}).status_code == 200


def test_recovers_by_itself_when_its_database_connection_is_killed(gw, pg_dsn):
    assert post(gw, "/v1/identify", {"userId": "before"}).status_code == 200
    sql(
        pg_dsn,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    statuses = []

    def accepted_again():
        r = post(gw, "/v1/identify", {"userId": "after"})
        statuses.append(r.status_code)
        assert r.status_code in (200, 503), r.text
        if r.status_code == 503:
            assert r.headers.get("Retry-After")
        return r.status_code == 200

    wait_until(accepted_again, timeout=30, poll=0.1)
    users = [e["userId"] for e in stored(pg_dsn)]
    assert users[0] == "before" and "after" in users
    # Every 200 was persisted; nothing acknowledged was lost.
    assert users.count("after") == statuses.count(200)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b'{"userId": "u1", "event": "E", "properties": {"x": 1e400}}', "not finite"),
        (b'{"userId": "u1", "event": "E", "properties": {"x": "\\ud800"}}', "unpaired UTF-16 surrogate"),
        (b'{"userId": "u1", "event": "E", "properties": {"x": Infinity}}', "Infinity"),
    ],
)
def test_values_jsonb_cannot_store_are_400_and_do_not_break_other_requests(gw, pg_dsn, body, fragment):
    r = post(gw, "/v1/track", body)
    assert r.status_code == 400, r.text
    assert fragment in r.json()["message"]
    assert post(gw, "/v1/track", {"userId": "u2", "event": "E"}).status_code == 200
    assert [e["userId"] for e in stored(pg_dsn)] == ["u2"]


def test_exact_values_survive_the_fast_and_the_fallback_json_paths(gw, pg_dsn):
    big = b'{"userId": "u1", "event": "E", "properties": {"n": 123456789012345678901234567890}}'
    assert post(gw, "/v1/track", big).status_code == 200
    text = {"n": 1.5, "path": "C:\\u0000dir", "s": "é\u2028😀", "q": 'a"b'}
    assert post(gw, "/v1/track", {"userId": "u1", "event": "E", "properties": text}).status_code == 200
    bom = b'\xef\xbb\xbf{"userId": "u1", "event": "BOM"}'
    assert post(gw, "/v1/track", bom).status_code == 200
    a, b, c = stored(pg_dsn)
    assert a["properties"]["n"] == 123456789012345678901234567890
    assert b["properties"] == text
    assert c["event"] == "BOM"
