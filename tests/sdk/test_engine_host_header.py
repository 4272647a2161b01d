"""An endpoint may declare a literal Host header only when it repeats the URL's own literal host.

Vendors such as GA4's Measurement Protocol show ``HOST: www.google-analytics.com`` in their request format;
any other Host (templated, or naming another host) could redirect the request and is refused at load.
"""

import pytest
from mini_spec import mini_connector

from sdk.connector import Connector
from sdk.context import TransformContext
from sdk.errors import SpecError


def _connector(url: str, headers: dict, event_headers: dict | None = None) -> Connector:
    mapping = {"endpoint": "events", "body": {"name": "event"}}
    if event_headers is not None:
        mapping["headers"] = event_headers
    return mini_connector(
        "track",
        mapping,
        vars={"path": {"value": "v1/collect"}},
        endpoints={"events": {"url": url, "headers": headers}},
    )


def _send(conn: Connector, event: dict | None = None):
    event = event or {"type": "track", "event": "Signed Up"}
    (req,) = conn.transform(event, {}, TransformContext.at("2024-05-01T12:00:00Z"))
    return req


def test_host_equal_to_the_literal_url_host_is_sent():
    conn = _connector("https://collect.demo.io/{{ vars.path }}", {"HOST": "collect.demo.io"})
    req = _send(conn)
    assert req.url == "https://collect.demo.io/v1/collect"
    assert req.headers["HOST"] == "collect.demo.io"


@pytest.mark.parametrize(
    "url, host",
    [
        ("https://collect.demo.io/v1", "evil.example"),
        ("https://collect.demo.io/v1", "{{ vars.path }}"),
        ("https://{{ vars.path }}/v1", "collect.demo.io"),
    ],
)
def test_any_other_host_header_is_refused_at_load(url, host):
    with pytest.raises(SpecError, match="Host header may only repeat"):
        _connector(url, {"Host": host})


def test_other_framing_headers_stay_refused():
    with pytest.raises(SpecError, match="set by the client"):
        _connector("https://collect.demo.io/v1", {"Content-Length": "10"})


def test_an_event_can_still_never_set_host():
    conn = _connector("https://collect.demo.io/v1", {}, event_headers={"Host": "properties.host"})
    req = _send(conn, {"type": "track", "event": "x", "properties": {"host": "evil.example"}})
    assert all(k.lower() != "host" for k in req.headers)
