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
    assert req.headers == {"content-type": "application/json", "x-team": "kiln"}
    assert req.json_body == event


def test_configured_content_type_replaces_default(wh):
    cfg = {
        "webhookUrl": URL,
        "webhookMethod": "PUT",
        "headers": [{"from": "Content-Type", "to": "text/plain"}],
    }
    [req] = wh.transform({"type": "identify", "userId": "u1"}, cfg, CTX)
    assert req.method == "PUT"
    assert req.headers == {"content-type": "text/plain"}


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
    assert "content-type" not in req.headers


def test_event_header_full_path_and_request_ip(wh):
    event = {
        "type": "track",
        "event": "x",
        "fullPath": "http://other.example/in",
        "appendPath": "/v2",
        "header": {"X-Obj": {"k": 1}, "X-Null": None, "X-Flag": False},
        "request_ip": "198.51.100.1",
    }
    [req] = wh.transform(event, {"webhookUrl": URL}, CTX)
    assert req.url == "http://other.example/in/v2"
    assert (
        req.headers["x-obj"] == '{"k":1}'
        and req.headers["x-null"] == "null"
        and req.headers["x-flag"] == "false"
    )
    assert "header" not in req.json_body and "fullPath" not in req.json_body
    assert req.json_body["context"] == {"ip": "198.51.100.1"}


@pytest.mark.parametrize(
    ("cfg", "event", "error"),
    [
        ({"webhookUrl": URL}, {"type": "track", "fullPath": "mailto:x@y"}, InstrumentationError),
        ({"webhookUrl": URL}, {"type": "track", "header": {"X-A": "1\r\nX-B: 2"}}, InstrumentationError),
        ({"webhookUrl": URL}, {"type": "track", "header": {"bad name": "v"}}, InstrumentationError),
        ({"webhookUrl": "ftp://files.example"}, {"type": "track"}, ConfigurationError),
        ({}, {"type": "track"}, ConfigurationError),
        ({"webhookUrl": URL, "webhookMethod": "TRACE"}, {"type": "track"}, ConfigurationError),
    ],
)
def test_typed_errors(wh, cfg, event, error):
    with pytest.raises(error):
        wh.transform(event, cfg, CTX)
