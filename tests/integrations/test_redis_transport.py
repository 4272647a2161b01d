"""The Redis transport against a real redis-server: what each documented operation writes, and how each
documented answer (https://redis.io/docs/latest/develop/reference/protocol-spec/#simple-errors, AUTH's
WRONGPASS/NOAUTH) comes back for the classifier. Expectations from the Redis command docs (HSET, SELECT,
AUTH), not from the code under test."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from sdk.delivery import UnsendableRequest
from sdk.transports import names, transport_class
from sdk.transports.redis import RedisTransport


def _send(settings: dict[str, Any], raw: Any, deadline: float = 5.0) -> tuple[int, dict[str, Any]]:
    async def go() -> tuple[int, dict[str, Any]]:
        t = RedisTransport(settings)
        try:
            answer = await t.send(raw, deadline)
        finally:
            await t.aclose()
        return answer.status, json.loads(answer.body)

    return asyncio.run(go())


def _single(server: Any, **more: Any) -> dict[str, Any]:
    return {"address": server.address, "clusterMode": False, **more}


def test_redis_is_a_registered_transport():
    assert "redis" in names()
    assert transport_class("redis") is RedisTransport


def test_hset_writes_every_field_as_text(redis_server):
    raw = {"key": "user:u1", "fields": {"plan": "pro", "age": 42, "score": 1.5, "vip": True, "gone": None}}
    status, body = _send(_single(redis_server), raw)
    assert status == 200 and body == {"reply": 4}  # HSET answers the number of fields added
    stored = redis_server.client().hgetall("user:u1")
    assert stored == {"plan": "pro", "age": "42", "score": "1.5", "vip": "true"}
    # Writing again updates in place: no new fields.
    assert _send(_single(redis_server), {"key": "user:u1", "fields": {"plan": "team"}}) == (200, {"reply": 0})
    assert redis_server.client().hget("user:u1", "plan") == "team"


def test_one_field_of_a_hash(redis_server):
    raw = {"hash": "h1", "key": "model", "value": {"a": 1}}
    assert _send(_single(redis_server), raw) == (200, {"reply": 1})
    assert redis_server.client().hget("h1", "model") == '{"a":1}'


def test_database_selects_the_numbered_database(redis_server):
    assert _send(_single(redis_server, database="3"), {"key": "k", "fields": {"a": "b"}})[0] == 200
    assert redis_server.client().exists("k") == 0
    import redis

    db3 = redis.Redis(host="127.0.0.1", port=redis_server.port, db=3, decode_responses=True)
    assert db3.hgetall("k") == {"a": "b"}


def test_a_database_that_is_not_a_number_is_refused_with_the_fix():
    with pytest.raises(ValueError, match="not a database number"):
        RedisTransport({"address": "127.0.0.1:6379", "clusterMode": False, "database": "test"})


def test_wrong_type_is_an_error_reply_with_its_code(redis_server):
    redis_server.client().set("user:s", "text")
    status, body = _send(_single(redis_server), {"key": "user:s", "fields": {"a": "b"}})
    assert status == 400 and body["code"] == "WRONGTYPE"


def test_json_set_without_the_redisjson_module_is_an_error_reply(redis_server):
    status, body = _send(_single(redis_server), {"key": "user:j", "value": {"a": 1}})
    assert status == 400 and "unknown command" in body["error"].lower()


def test_wrong_password_and_missing_password(redis_server_factory):
    server = redis_server_factory(password="s3cret-pw")
    status, body = _send(_single(server, password="not-it"), {"key": "k", "fields": {"a": "b"}})
    assert (status, body["code"]) == (400, "WRONGPASS")
    status, body = _send(_single(server), {"key": "k", "fields": {"a": "b"}})
    assert (status, body["code"]) == (400, "NOAUTH")
    assert _send(_single(server, password="s3cret-pw"), {"key": "k", "fields": {"a": "b"}})[0] == 200
    assert "s3cret-pw" not in json.dumps(body) and "not-it" not in json.dumps(body)


def test_tls_with_the_servers_ca_or_skip_verify_and_a_refused_self_signed_certificate(redis_server_factory):
    server = redis_server_factory(tls=True)
    op = {"key": "user:t", "fields": {"a": "b"}}
    assert _send(_single(server, secure=True, caCertificate=server.ca_pem), op)[0] == 200
    assert _send(_single(server, secure=True, skipVerify=True), op) == (200, {"reply": 0})
    assert server.client().hgetall("user:t") == {"a": "b"}
    with pytest.raises(OSError, match="certificate verify failed"):  # not trusted: like HTTPS, retried
        _send(_single(server, secure=True), op)


def test_a_server_that_is_down_is_a_connection_error(redis_server):
    redis_server.stop()
    with pytest.raises(OSError):
        _send(_single(redis_server), {"key": "k", "fields": {"a": "b"}})


def test_cluster_mode_against_a_single_server_says_how_to_fix_it(redis_server):
    status, body = _send({"address": redis_server.address}, {"key": "k", "fields": {"a": "b"}})
    assert status == 400 and "clusterMode" in body["error"]


@pytest.mark.parametrize(
    "raw", [None, [], {"key": "k"}, {"key": "", "fields": {}}, {"key": "k", "fields": []}, {"x": 1}]
)
def test_malformed_operations_are_unsendable(raw):
    with pytest.raises(UnsendableRequest):
        RedisTransport.check(raw)


def test_the_routers_drift_baseline_knows_the_redis_answers_it_was_certified_with():
    """Runtime drift telemetry compares answers with the cassettes: a transport's recorded exchanges
    belong to its endpoint (a 200 from Redis is not news), not to a URL that matches nothing."""
    from pipeline.router.telemetry import Baseline
    from sdk.connector import Connector
    from sdk.registry import integrations_dir

    baseline = Baseline.of(Connector.from_folder(integrations_dir() / "redis"))
    assert baseline.known and baseline.statuses == {"write": {200}}
