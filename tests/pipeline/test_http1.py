"""The router's HTTP/1.1 client against real sockets: answer framings, content codings, keep-alive,
TLS with SNI and certificate checks, credentials in the URL, and what a broken server gets."""

from __future__ import annotations

import asyncio
import gzip
import ipaddress
import ssl
import subprocess
from collections.abc import Awaitable, Callable

import httpx
import pytest

from pipeline.router import http1
from pipeline.router.guard import AddressGuard
from pipeline.router.http1 import Http1Client
from sdk.request import VendorRequest

LOOPBACK = [ipaddress.ip_network("127.0.0.0/8")]
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.lower().split(b"\r\n")
    length = next((int(h.split(b":")[1]) for h in lines if h.startswith(b"content-length")), 0)
    return head, (await reader.readexactly(length) if length else b"")


def run(
    handler: Handler,
    scenario: Callable[[str, Http1Client], Awaitable[None]],
    client_tls: ssl.SSLContext | None = None,
    **server_kw,
) -> None:
    async def main() -> None:
        server = await asyncio.start_server(handler, "127.0.0.1", 0, **server_kw)
        port = server.sockets[0].getsockname()[1]
        client = Http1Client(AddressGuard(LOOPBACK), client_tls or ssl.create_default_context())
        try:
            await scenario(f"http://127.0.0.1:{port}", client)
        finally:
            await client.aclose()
            server.close()

    asyncio.run(main())


def answering(*responses: bytes, seen: list | None = None) -> Handler:
    """A server answering each request on a connection with the next of ``responses``."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            for response in responses:
                request = await read_request(reader)
                if seen is not None:
                    seen.append(request)
                writer.write(response)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    return handler


def post(url: str, **kw) -> VendorRequest:
    return VendorRequest(url=url, json={"userId": "u1"}, **kw)


@pytest.mark.parametrize(
    "response, body",
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", b"hello"),
        (
            b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n",
            b"hello",
        ),  # noqa: E501
        (b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nhello", b"hello"),  # delimited by the close
        (
            b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s"
            % (len(gzip.compress(b"hello", mtime=0)), gzip.compress(b"hello", mtime=0)),
            b"hello",
        ),
    ],
    ids=["content-length", "chunked", "close-delimited", "gzip"],
)
def test_answer_framings_and_codings(response, body):
    async def scenario(url: str, client: Http1Client) -> None:
        res = await http1.send(client, post(url + "/x"), deadline=5)
        assert res.status in (200, 201) and res.body == body

    run(answering(response), scenario)


def test_a_compressed_answer_is_never_expanded_beyond_the_cap():
    bomb = gzip.compress(b"\0" * (50 << 20))  # 50 MB of zeros in ~50 KB

    async def scenario(url: str, client: Http1Client) -> None:
        res = await http1.send(client, post(url), deadline=10, max_body=1 << 20)
        assert res.status == 500 and len(res.body) == 1 << 20

    head = b"HTTP/1.1 500 Oops\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(bomb)
    run(answering(head + bomb), scenario)


def test_keep_alive_reuses_one_connection_and_survives_the_server_closing_it():
    connections = []

    def counting(handler: Handler) -> Handler:
        async def wrapped(reader, writer):
            connections.append(1)
            await handler(reader, writer)

        return wrapped

    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

    async def scenario(url: str, client: Http1Client) -> None:
        for _ in range(3):
            assert (await http1.send(client, post(url), deadline=5)).status == 200
        assert len(connections) == 1
        # The server's handler ends after three answers and closes the connection: the next request
        # notices the closed connection and opens a new one.
        await asyncio.sleep(0.2)
        assert (await http1.send(client, post(url), deadline=5)).status == 200
        assert len(connections) == 2

    run(counting(answering(ok, ok, ok)), scenario)


def test_request_head_carries_host_length_utf8_headers_and_url_credentials():
    seen: list = []

    async def scenario(url: str, client: Http1Client) -> None:
        host = url.removeprefix("http://")
        req = VendorRequest(
            url=f"http://user:pa%40ss@{host}/path?a=1",
            headers={"X-Name": "José", "Content-Length": "1"},
            params={"b": "2 3"},
            json={"name": "José"},
        )
        await http1.send(client, req, deadline=5)
        (head, body) = seen[0]
        assert head.startswith(b"POST /path?a=1&b=2+3 HTTP/1.1\r\nHost: " + host.encode() + b"\r\n")
        assert b"\r\nX-Name: Jos\xc3\xa9\r\n" in head
        assert b"\r\nContent-Length: %d\r\n" % len(body) in head and b"Content-Length: 1\r\n" not in head
        assert b"\r\nAuthorization: Basic dXNlcjpwYUBzcw==\r\n" in head  # user:pa@ss

    run(answering(b"HTTP/1.1 204 No Content\r\n\r\n", seen=seen), scenario)


def test_broken_servers_raise_what_the_router_classifies():
    async def scenario(url: str, client: Http1Client) -> None:
        with pytest.raises(httpx.RemoteProtocolError):
            await http1.send(client, post(url), deadline=5)

    run(answering(b"this is not http\r\n\r\n"), scenario)  # garbage
    run(answering(), scenario)  # closes without answering

    async def refused(url: str, client: Http1Client) -> None:
        with pytest.raises(httpx.ConnectError):
            await http1.send(client, post("http://127.0.0.1:1/x"), deadline=5)

    run(answering(), refused)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[str, str]:
    """A self-signed certificate for the name ``sluice.test``."""
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=sluice.test",
            "-addext",
            "subjectAltName=DNS:sluice.test",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return str(cert), str(key)


def test_tls_checks_the_certificate_against_the_url_host(certificate):
    cert, key = certificate
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    client_tls = ssl.create_default_context(cafile=cert)

    async def to_loopback(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    async def scenario(url: str, client: Http1Client) -> None:
        client.guard = AddressGuard(LOOPBACK, resolver=to_loopback)
        port = url.rsplit(":", 1)[1]
        res = await http1.send(client, post(f"https://sluice.test:{port}/x"), deadline=5)
        assert res.status == 200 and res.body == b"ok"
        # The same server under another name: the certificate does not match, nothing is sent.
        with pytest.raises(httpx.ConnectError, match="certificate"):
            await http1.send(client, post(f"https://other.test:{port}/x"), deadline=5)

    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    run(answering(ok, ok), scenario, client_tls=client_tls, ssl=server_tls)
