"""Connection-level limits the HTTP server does not have by itself: a header deadline, a header size
limit and a bound on open connections.

Why: uvicorn's keep-alive timer starts only after a first response and is reset by every byte, so a
client that connects and sends nothing (or one header byte now and then) holds a socket for ever;
enough of them exhaust file descriptors and the gateway stops answering, ``/health`` included. Here:

* the request line and headers must arrive within ``header_timeout_s`` of the connection opening (or
  of the previous response), however the bytes trickle in, else the connection is closed;
* they may be at most ``max_header_bytes`` long (431 and close);
* at most ``max_connections`` are open: a new connection beyond it closes the connection that has been
  idle longest (connected but not in a request), so idle floods cannot lock out real clients; only when
  every connection is busy with a request is the newcomer refused (503 and close);
* idle keep-alive connections close after ``keep_alive_s`` (uvicorn's own timer).

Body deadlines and the in-flight body budget are the gateway's (pipeline/gateway/http.py).
"""

from __future__ import annotations

import asyncio
import logging
import resource
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from pipeline.config import Gateway as GatewayLimits

log = logging.getLogger("sluice.gateway")

# File descriptors kept for everything that is not a client connection (database, log files, vendors).
_FD_RESERVE = 512

_431 = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"
    b"connection: close\r\ncontent-length: %d\r\n\r\n%s"
)
_503 = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\n"
    b"connection: close\r\ncontent-length: %d\r\n\r\n%s"
)


def _response(template: bytes, message: str) -> bytes:
    body = b'{"success":false,"code":"%s","message":"%s"}' % (
        b"too_large" if template is _431 else b"busy",
        message.encode(),
    )
    return template % (len(body), body)


def effective_max_connections(configured: int) -> int:
    """``configured``, lowered (with a warning) if the process may not open that many descriptors.

    Raises the soft RLIMIT_NOFILE towards the hard one first, as servers usually do.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = configured + _FD_RESERVE
    if soft != resource.RLIM_INFINITY and soft < want:
        target = want if hard == resource.RLIM_INFINITY else min(want, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    if soft != resource.RLIM_INFINITY and soft - _FD_RESERVE < configured:
        lowered = max(8, soft - _FD_RESERVE)
        log.warning(
            "gateway.max_connections %d is above what the file-descriptor limit (%d) allows; using %d. "
            "Raise it with `ulimit -n` to accept more.",
            configured,
            soft,
            lowered,
        )
        return lowered
    return configured


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol plus the limits above (configured by ``protocol_for``)."""

    limits: GatewayLimits
    max_connections: int

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._awaiting_headers = True
        self._header_bytes = 0
        self._raw_header_bytes = 0
        self._idle_since = 0.0
        self._refused = False

    # -- connection lifecycle ---------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._wait_for_headers()
        if len(self.connections) > self.max_connections:
            victim = self._longest_idle()
            if victim is None:
                self._refuse(_503, "the gateway is at its connection limit; retry later")
            else:
                victim._close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        super().connection_lost(exc)

    def _longest_idle(self) -> GuardedProtocol | None:
        best: GuardedProtocol | None = None
        for c in self.connections:
            if c is self or not isinstance(c, GuardedProtocol) or c.transport.is_closing():
                continue
            if c.cycle is not None and not c.cycle.response_complete:
                continue  # in a request: never shed
            if best is None or c._idle_since < best._idle_since:
                best = c
        return best

    def _close(self) -> None:
        self._cancel_deadline()
        self._refused = True
        self.connections.discard(self)  # counted out now; the socket closes on the next loop turn
        self.transport.close()

    def _refuse(self, template: bytes, message: str) -> None:
        if not self.transport.is_closing():
            self.transport.write(_response(template, message))
        self._close()

    # -- header deadline and size ------------------------------------------------------------------
    def _wait_for_headers(self) -> None:
        self._awaiting_headers = True
        self._header_bytes = 0
        self._raw_header_bytes = 0
        self._idle_since = self.loop.time()
        self._cancel_deadline()
        self._deadline = self.loop.call_later(self.limits.header_timeout_s, self._headers_late)

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _headers_late(self) -> None:
        self._deadline = None
        if self._awaiting_headers and not self.transport.is_closing():
            self._close()

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        counting = self._awaiting_headers
        super().data_received(data)
        if self._awaiting_headers:
            if counting:
                # Still inside the headers after this chunk: all of it was header bytes, including a
                # header the parser is still buffering (it reports a header only once it is complete).
                self._raw_header_bytes += len(data)
            if max(self._header_bytes, self._raw_header_bytes) > self.limits.max_header_bytes:
                self._headers_too_large()

    def on_url(self, url: bytes) -> None:
        self._header_bytes += len(url)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value) + 4
        super().on_header(name, value)

    def _headers_too_large(self) -> None:
        self._refuse(_431, f"the request line and headers exceed {self.limits.max_header_bytes} bytes")

    def on_headers_complete(self) -> None:
        if self._refused:
            return
        self._awaiting_headers = False
        self._cancel_deadline()
        if self._header_bytes > self.limits.max_header_bytes:
            self._headers_too_large()
            return
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if not self._refused:
            super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and (self.cycle is None or self.cycle.response_complete):
            self._wait_for_headers()


def protocol_for(limits: GatewayLimits) -> type[GuardedProtocol]:
    """A protocol class bound to one gateway's limits (uvicorn instantiates it per connection)."""
    return type(
        "GatewayProtocol",
        (GuardedProtocol,),
        {"limits": limits, "max_connections": effective_max_connections(limits.max_connections)},
    )


def server_config(app: Any, limits: GatewayLimits, host: str, port: int, **kwargs: Any) -> uvicorn.Config:
    """The uvicorn settings every gateway runs with (``sluice up`` and the in-process test server)."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=protocol_for(limits),
        timeout_keep_alive=limits.keep_alive_s,  # type: ignore[arg-type]  # a float works (call_later)
        log_level="warning",
        access_log=False,
        lifespan="off",
        **kwargs,
    )
