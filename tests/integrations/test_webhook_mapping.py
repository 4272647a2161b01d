"""Webhook mapping: method, headers, URL overrides and query parameters, on hand-written events."""

from __future__ import annotations

import pytest

from sdk.context import TransformContext
from sdk.errors import ConfigurationError, InstrumentationError
from sdk.registry import load_connector

CTX = TransformContext.at("2024-05-01T12:00:00Z", seed="t")
URL = "https://receiver.example/hook"


@pytest.fixture(scope="module")
def wh():
    return load_connector("webhook")


def test_post_sends_event_with_config_headers(wh):
    cfg = {"webhookUrl": URL, "headers": [{"from": "X-Team", "to": "kiln"}, {"from": "", "to": "dropped"}]}
    event = {"type": "track", "event": "Fired", "userId": "u1", "properties": {"cone": 6}}
    [req] = wh.transform(event, cfg, CTX)
    assert (req.method, req.url) == ("POST", URL)
    assert _lower(req.headers) == {"content-type": "application/json", "x-team": "kiln"}
    assert req.json_body == event


def test_configured_content_type_replaces_default(wh):
    cfg = {
        "webhookUrl": URL,
        "webhookMethod": "PUT",
        "headers": [{"from": "Content-Type", "to": "text/plain"}],
    }
    [req] = wh.transform({"type": "identify", "userId": "u1"}, cfg, CTX)
    assert req.method == "PUT"
    assert _lower(req.headers) == {"content-type": "text/plain"}


def test_get_flattens_properties_and_keeps_url_query(wh):
    cfg = {"webhookUrl": URL, "webhookMethod": "get"}
    event = {
        "type": "page",
        "userId": "u1",
        "appendPath": "?src=sdk",
        "properties": {"a": 1, "b": {"c": "x", "d": {"e": True}}, "empty": {}},
    }
    [req] = wh.transform(event, cfg, CTX)
    assert req.method == "GET" and req.body_kind is None
    assert req.url == URL
    assert req.params == {"src": "sdk", "a": 1, "b.c": "x", "b.d.e": True}
    assert "content-type" not in _lower(req.headers)


def _lower(headers):
    return {k.lower(): v for k, v in headers.items()}


def test_event_header_full_path_and_request_ip(wh):
    event = {
        "type": "track",
        "event": "x",
        "fullPath": "http://other.example/in",
        "appendPath": "/v2",
        "header": {"X-Obj": {"k": 1}, "X-Null": None, "X-Flag": False},
        "request_ip": "198.51.100.1",
    }
    cfg = {"webhookUrl": URL, "allowedHosts": ["other.example"], "headers": [{"from": "X-Secret", "to": "s"}]}
    [req] = wh.transform(event, cfg, CTX)
    assert req.url == "http://other.example/in/v2"
    assert "x-secret" not in _lower(req.headers), "configured headers never go to another host"
    assert (
        req.headers["x-obj"] == '{"k":1}'
        and req.headers["x-null"] == "null"
        and req.headers["x-flag"] == "false"
    )
    assert "header" not in req.json_body and "fullPath" not in req.json_body
    assert req.json_body["context"] == {"ip": "198.51.100.1"}


# -- issue 11, item 3: an event cannot redirect the configured credentials -------------------------------
@pytest.mark.parametrize(
    "event",
    [
        {"type": "track", "appendPath": "@attacker.net/x"},
        {"type": "track", "appendPath": "//attacker.net/x"},
        {"type": "track", "appendPath": ".attacker.net/x"},
        {"type": "track", "header": {"Host": "attacker.net", "X-Secret": "overridden"}},
    ],
)
def test_event_keys_never_move_the_request_off_the_configured_host(wh, event):
    cfg = {"webhookUrl": URL, "headers": [{"from": "X-Secret", "to": "s3cret"}]}
    [req] = wh.transform(event, cfg, CTX)
    assert req.url.startswith("https://receiver.example/"), req.url
    headers = _lower(req.headers)
    assert headers["x-secret"] == "s3cret" and "host" not in headers


def test_full_path_to_another_host_is_refused_unless_allowed(wh):
    event = {"type": "track", "fullPath": "https://attacker.net/collect"}
    with pytest.raises(InstrumentationError, match="allowedHosts"):
        wh.transform(event, {"webhookUrl": URL, "headers": [{"from": "X-Secret", "to": "s"}]}, CTX)
    [same_host] = wh.transform(
        {"type": "track", "fullPath": "https://RECEIVER.example/other"}, {"webhookUrl": URL}, CTX
    )
    assert same_host.url == "https://RECEIVER.example/other"


@pytest.mark.parametrize(
    ("cfg", "event", "error"),
    [
        ({"webhookUrl": URL}, {"type": "track", "fullPath": "mailto:x@y"}, InstrumentationError),
        ({"webhookUrl": URL}, {"type": "track", "header": {"X-A": "1\r\nX-B: 2"}}, InstrumentationError),
        ({"webhookUrl": URL}, {"type": "track", "header": {"bad name": "v"}}, InstrumentationError),
        ({"webhookUrl": "ftp://files.example"}, {"type": "track"}, ConfigurationError),
        ({"webhookUrl": "not a url"}, {"type": "track"}, ConfigurationError),
        (
            {"webhookUrl": URL, "headers": [{"from": "bad name", "to": "v"}]},
            {"type": "track"},
            ConfigurationError,
        ),
        ({}, {"type": "track"}, ConfigurationError),
        ({"webhookUrl": URL, "webhookMethod": "TRACE"}, {"type": "track"}, ConfigurationError),
    ],
)
def test_typed_errors(wh, cfg, event, error):
    with pytest.raises(error):
        wh.transform(event, cfg, CTX)
