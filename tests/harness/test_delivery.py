"""sdk.delivery: the bytes sent are the request's own encoding; network failures surface as httpx errors."""

from __future__ import annotations

import asyncio
import http.server
import json
import threading

import httpx
import pytest
import respx

from sdk.classify import Outcome, classify_exception
from sdk.delivery import DeliveryResult, send, send_async
from sdk.request import VendorRequest


def test_send_json_body_headers_and_params() -> None:
    req = VendorRequest(
        url="https://api.example.com/v1/e",
        headers={"X-Key": "k"},
        params={"strict": True},
        json={"name": "café", "n": 1},
    )
    with respx.mock(assert_all_called=True) as mock:
        route = mock.post("https://api.example.com/v1/e").mock(
            return_value=httpx.Response(202, json={"ok": 1})
        )
        with httpx.Client() as client:
            res = send(client, req, timeout=2)
    sent = route.calls[0].request
    assert sent.content == req.body_bytes()
    assert sent.headers["content-type"] == "application/json"
    assert sent.headers["x-key"] == "k"
    assert sent.url.params["strict"] == "true"
    assert isinstance(res, DeliveryResult) and res.status == 202 and json.loads(res.body) == {"ok": 1}


def test_send_form_body_is_urlencoded() -> None:
    req = VendorRequest(url="https://api.example.com/f", form={"data": {"a": 1}, "flag": False})
    with respx.mock() as mock:
        route = mock.post("https://api.example.com/f").mock(return_value=httpx.Response(200))
        with httpx.Client() as client:
            send(client, req)
    sent = route.calls[0].request
    assert sent.headers["content-type"] == "application/x-www-form-urlencoded"
    assert sent.content == b"data=%7B%22a%22%3A1%7D&flag=false"


def test_network_failure_raises_httpx_error_and_classifies_as_retry() -> None:
    req = VendorRequest(url="https://api.example.com/x", json={})
    with respx.mock() as mock:
        mock.post("https://api.example.com/x").mock(
            side_effect=httpx.ConnectError("connection reset by peer")
        )
        with httpx.Client() as client, pytest.raises(httpx.TransportError) as info:
            send(client, req)
    assert classify_exception(info.value).outcome is Outcome.RETRY


def test_send_async_over_real_loopback_http() -> None:
    received: dict = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_PUT(self) -> None:  # noqa: N802 - http.server naming
            n = int(self.headers["Content-Length"])
            received["body"] = self.rfile.read(n)
            received["path"] = self.path
            received["ctype"] = self.headers["Content-Type"]
            self.send_response(429)
            self.send_header("Retry-After", "3")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        req = VendorRequest(method="PUT", url=url, params={"a": "b c"}, text="hello")

        async def go() -> DeliveryResult:
            async with httpx.AsyncClient() as client:
                return await send_async(client, req, timeout=5)

        res = asyncio.run(go())
    finally:
        server.shutdown()
    assert received == {"body": b"hello", "path": "/hook?a=b+c", "ctype": None}
    assert res.status == 429 and res.headers["retry-after"] == "3" and res.elapsed_ms > 0
