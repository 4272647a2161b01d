"""sdk.delivery on a real loopback socket: what a stored request may not decide (framing headers), what
HTTP cannot carry (line breaks), non-ASCII header text, a total deadline per request, a capped answer."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import httpx
import pytest

from sdk.delivery import (
    DeadlineExceeded,
    UnsendableRequest,
    rebase,
    send_async,
    wire_headers,
)
from sdk.errors import AbortedError
from sdk.request import VendorRequest

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    body = await reader.readexactly(length) if length else b""
    return head, body


async def serve(handler: Handler, scenario: Callable[[str], Awaitable[None]]) -> None:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        await scenario(f"http://127.0.0.1:{port}")
    finally:
        server.close()


def test_framing_and_hop_by_hop_headers_are_dropped_case_insensitively():
    headers = {
        "Content-Length": "1",
        "transfer-encoding": "chunked",
        "HOST": "evil.example",
        "Connection": "close",
        "Keep-Alive": "timeout=1",
        "Upgrade": "h2c",
        "TE": "trailers",
        "Trailer": "X-Y",
        "Proxy-Authorization": "Basic eA==",
        "proxy-connection": "keep-alive",
        "X-Kept": "yes",
    }
    assert wire_headers(headers) == {"X-Kept": "yes"}


@pytest.mark.parametrize(
    "headers",
    [{"X-Bad": "a\r\nInjected: 1"}, {"X-Bad": "a\nb"}, {"X-Nul": "a\x00b"}, {"Bad Name": "x"}, {"": "x"}],
)
def test_headers_http_cannot_carry_are_refused_with_a_reason(headers):
    with pytest.raises(UnsendableRequest) as e:
        wire_headers(headers)
    assert isinstance(e.value, AbortedError)  # retrying cannot help
    assert "fix the destination config or the event" in e.value.message


def test_non_ascii_header_and_a_stored_content_length_go_out_correctly():
    """The issue's two crashes: "José" in a header (UnicodeEncodeError) and "Content-Length": "1" (h11
    protocol error). The vendor must receive the UTF-8 bytes and the real length of the body."""
    seen: list[tuple[bytes, bytes]] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await read_request(reader))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()

    async def scenario(url: str) -> None:
        req = VendorRequest(
            url=url + "/hook",
            headers={"X-Name": "José", "Content-Length": "1", "Host": "elsewhere"},
            json={"userId": "u1", "name": "José"},
        )
        async with httpx.AsyncClient() as client:
            res = await send_async(client, req, 5, deadline=5)
        assert res.status == 200 and res.body == b"ok"

    asyncio.run(serve(handler, scenario))
    ((head, body),) = seen
    assert b"\r\nX-Name: Jos\xc3\xa9\r\n" in head
    assert f"\r\nContent-Length: {len(body)}\r\n".encode() in head and len(body) > 1
    assert b"Host: 127.0.0.1:" in head and b"elsewhere" not in head
    assert body == VendorRequest(url="http://x", json={"userId": "u1", "name": "José"}).body_bytes()


def test_a_server_dripping_bytes_is_cut_off_by_the_total_deadline():
    """One byte every 0.3 s keeps a per-read timeout (here 5 s) from ever firing; the deadline does."""
    stopped = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
        try:
            for _ in range(100):  # would take 30 s
                writer.write(b"x")
                await writer.drain()
                await asyncio.sleep(0.3)
        except ConnectionError:
            pass
        finally:
            stopped.set()
            writer.close()

    async def scenario(url: str) -> None:
        async with httpx.AsyncClient() as client:
            t0 = time.monotonic()
            with pytest.raises(DeadlineExceeded, match="deadline"):
                await send_async(client, VendorRequest(url=url, json={}), timeout=5, deadline=1.5)
            took = time.monotonic() - t0
        assert took < 5, f"the deadline did not cut the request off ({took:.1f} s)"
        await asyncio.wait_for(stopped.wait(), 5)  # and the connection was closed, not left dripping

    asyncio.run(serve(handler, scenario))


def test_a_huge_answer_is_read_only_up_to_the_cap():
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        size = 3 * 1024 * 1024
        writer.write(b"HTTP/1.1 500 Oops\r\nContent-Length: %d\r\n\r\n" % size)
        try:
            for _ in range(size // 65536):
                writer.write(b"e" * 65536)
                await writer.drain()
        except ConnectionError:
            pass
        writer.close()

    async def scenario(url: str) -> None:
        async with httpx.AsyncClient() as client:
            res = await send_async(client, VendorRequest(url=url, json={}), 5, deadline=10, max_body=1 << 20)
        assert res.status == 500 and len(res.body) == 1 << 20

    asyncio.run(serve(handler, scenario))


def test_rebase_keeps_path_query_and_prefixes_the_base_path():
    assert rebase("https://api2.amplitude.com/2/httpapi?x=1", "http://127.0.0.1:9000/amplitude/") == (
        "http://127.0.0.1:9000/amplitude/2/httpapi?x=1"
    )
    assert rebase("https://u:p@h.example/a", "http://proxy:8080") == "http://u:p@proxy:8080/a"
    assert rebase("https://h.example", "https://sandbox.example") == "https://sandbox.example/"
