"""A lean HTTP/1.1 client for the router's vendor requests.

Why not httpx here: measured on the 2-core dev box, an httpx request costs 600-800 µs of CPU in its
layers (httpcore on anyio: ~400 µs), while the router sends one request per event to webhooks and most
one-event APIs, so at a few thousand events/s httpx alone would need a core. This client does only
what the router needs, on plain asyncio streams with llhttp (``httptools``, C) parsing the answers:

* one keep-alive connection per client (the router has one client per concurrency slot), dropped
  after ``keepalive_s`` idle, on ``Connection: close``, or when an answer was not read to its end;
* the request is built by ``sdk.delivery.build_kwargs`` (URL and query, headers, body bytes) exactly
  as the contract harness builds it, so what is sent is what the cassettes hold;
* every TCP connection goes to an address the SSRF guard checked (``AddressGuard.open_connection``);
  TLS verifies the certificate against, and sends SNI for, the URL's host;
* ``Content-Encoding: gzip``/``deflate`` answers are decoded, never beyond ``max_body`` bytes;
* no proxies, no redirects (both on purpose), no HTTP/2.

Failures are raised as the httpx exception types the router classifies (``ConnectError``,
``RemoteProtocolError``, ``ReadError``, ``WriteError``), and the caller puts the total deadline around
the whole exchange.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import time
import zlib
from typing import Any

import httptools
import httpx

from pipeline.router.guard import AddressGuard
from sdk.delivery import MAX_RESPONSE_BYTES, DeadlineExceeded, DeliveryResult, build_kwargs
from sdk.request import VendorRequest

_READ = 65536


class _Answer:
    """httptools callbacks: collects one response."""

    def __init__(self, max_body: int):
        self.max_body = max_body
        self.headers: list[tuple[str, str]] = []
        self.body = bytearray()
        self.headers_done = False
        self.complete = False
        self.truncated = False
        self.status = 0
        self.keep_alive = False
        self.parser: Any = None

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        self.headers_done = True

    def on_body(self, body: bytes) -> None:
        room = self.max_body - len(self.body)
        if len(body) > room:
            self.truncated = True
            body = body[:room]
        self.body += body

    def on_message_complete(self) -> None:
        self.complete = True
        self.keep_alive = self.parser.should_keep_alive()  # only known while the message is current


def _decoded(encoding: str, body: bytes, max_body: int) -> bytes:
    """The body without its content coding, at most ``max_body`` bytes of it (a small compressed
    answer can expand enormously); codings other than gzip and deflate are left as they are."""
    encoding = encoding.strip().lower()
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(wbits=31).decompress(body, max_body)
    if encoding == "deflate":
        try:
            return zlib.decompressobj(wbits=15).decompress(body, max_body)
        except zlib.error:
            return zlib.decompressobj(wbits=-15).decompress(body, max_body)
    return body


class _Conn:
    def __init__(self, key: tuple[str, str, int], reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.key = key
        self.reader = reader
        self.writer = writer
        self.idle_since = time.monotonic()

    def close(self) -> None:
        self.writer.close()


class Http1Client:
    def __init__(self, guard: AddressGuard, tls: ssl.SSLContext, keepalive_s: float = 5.0):
        self.guard = guard
        self.tls = tls
        self.keepalive_s = keepalive_s
        self._conn: _Conn | None = None

    async def aclose(self) -> None:
        self._drop()

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _reusable(self, key: tuple[str, str, int]) -> _Conn | None:
        c = self._conn
        if c is None:
            return None
        stale = time.monotonic() - c.idle_since > self.keepalive_s
        if c.key != key or stale or c.reader.at_eof() or c.writer.is_closing():
            self._drop()
            return None
        return c

    async def _connect(self, key: tuple[str, str, int]) -> _Conn:
        scheme, host, port = key
        https = scheme == "https"
        try:
            reader, writer = await self.guard.open_connection(
                host, port, ssl=self.tls if https else None, server_hostname=host if https else None
            )
        except (OSError, ssl.SSLError) as e:
            raise httpx.ConnectError(f"cannot connect to {host}:{port}: {e}") from e
        return _Conn(key, reader, writer)

    async def request(
        self, method: str, url: httpx.URL, headers: dict[str, Any], content: bytes | None, max_body: int
    ) -> DeliveryResult:
        started = time.perf_counter()
        scheme = url.scheme
        if scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"{scheme!r} URLs cannot be sent; use http or https")
        port = url.port or (443 if scheme == "https" else 80)
        key = (scheme, url.raw_host.decode("ascii"), port)  # IDNA form: what DNS and SNI want
        head = self._head(method, url, headers, content)
        conn = self._reusable(key) or await self._connect(key)
        self._conn = None  # owned by this exchange until it ends cleanly
        try:
            conn.writer.writelines([head, content] if content else [head])
            await conn.writer.drain()
            answer, keep = await self._read(conn.reader, max_body)
        except (ConnectionError, OSError) as e:
            conn.close()
            raise httpx.RemoteProtocolError(f"connection lost: {type(e).__name__}: {e}") from e
        except BaseException:
            conn.close()  # a deadline or an error mid-exchange: the connection's state is unknown
            raise
        if keep:
            conn.idle_since = time.monotonic()
            self._conn = conn
        else:
            conn.close()
        headers_out = {k.lower(): v for k, v in answer.headers}
        body = bytes(answer.body)
        if "content-encoding" in headers_out:
            try:
                body = _decoded(headers_out["content-encoding"], body, max_body)
            except zlib.error:
                pass  # a corrupt compressed body: the status still counts, the raw bytes are kept
        return DeliveryResult(
            status=answer.status,
            headers=headers_out,
            body=body,
            elapsed_ms=(time.perf_counter() - started) * 1000.0,
        )

    @staticmethod
    def _head(method: str, url: httpx.URL, headers: dict[str, Any], content: bytes | None) -> bytes:
        lines = [f"{method} ".encode(), url.raw_path or b"/", b" HTTP/1.1\r\nHost: ", url.netloc, b"\r\n"]
        lower = {k.lower() for k in headers}
        if (url.username or url.password) and "authorization" not in lower:
            cred = f"{url.username}:{url.password}".encode()
            lines.append(b"Authorization: Basic " + base64.b64encode(cred) + b"\r\n")
        if "accept" not in lower:
            lines.append(b"Accept: */*\r\n")
        if "accept-encoding" not in lower:
            lines.append(b"Accept-Encoding: gzip, deflate\r\n")
        for name, value in headers.items():
            lines.extend((name.encode("ascii"), b": ", value if isinstance(value, bytes) else value.encode()))
            lines.append(b"\r\n")
        if content is not None or method in ("POST", "PUT", "PATCH"):
            lines.append(b"Content-Length: %d\r\n" % len(content or b""))
        lines.append(b"\r\n")
        return b"".join(lines)

    @staticmethod
    async def _read(reader: asyncio.StreamReader, max_body: int) -> tuple[Any, bool]:
        answer = _Answer(max_body)
        parser = answer.parser = httptools.HttpResponseParser(answer)
        while not answer.complete and not answer.truncated:
            data = await reader.read(_READ)
            if not data:
                if answer.headers_done:
                    break  # a body delimited by the end of the connection (or cut short: keep what came)
                raise httpx.RemoteProtocolError("the vendor closed the connection without answering")
            try:
                parser.feed_data(data)
            except httptools.HttpParserError as e:
                raise httpx.RemoteProtocolError(f"the vendor's answer is not valid HTTP/1.1: {e}") from e
        answer.status = parser.get_status_code()
        keep = answer.complete and not answer.truncated and answer.keep_alive
        return answer, keep


async def send(
    client: Http1Client, req: VendorRequest, deadline: float, max_body: int = MAX_RESPONSE_BYTES
) -> DeliveryResult:
    """Send ``req`` with a total ``deadline`` (seconds) for the whole exchange."""
    kwargs = build_kwargs(req, None)
    try:
        async with asyncio.timeout(deadline):
            return await client.request(
                kwargs["method"], kwargs["url"], kwargs["headers"], kwargs.get("content"), max_body
            )
    except TimeoutError:
        raise DeadlineExceeded.after(deadline) from None
