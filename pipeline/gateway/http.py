"""Starlette routes of the gateway: ``/v1/*`` ingestion, ``/health``, ``/metrics``, ``/openapi.json``.

Compatible with Segment and RudderStack clients: write key as the Basic-auth user name (or a body
``writeKey``), gzip bodies, a JSON error body ``{"code", "message"}`` that their SDKs log.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import zlib
from collections.abc import Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pipeline import metrics
from pipeline.config import SluiceConfig
from pipeline.gateway.budget import BodyBudget
from pipeline.gateway.events import (
    EVENT_TYPES,
    MAX_DEPTH,
    EventError,
    iso,
    nesting_exceeds,
    normalise,
    normalise_batch,
)
from pipeline.gateway.openapi import openapi_document
from pipeline.gateway.wire import copy_lines, decode_body
from pipeline.gateway.writer import GroupWriter, Unavailable
from pipeline.queue.db import copy_text

_OK = b'{"success":true}'


def _error(
    status: int, code: str, message: str, retry_after: int | None = None, *, close: bool = False
) -> Response:
    metrics.REQUESTS_REJECTED.labels(str(status)).inc()
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    if close:
        headers["Connection"] = "close"
    return JSONResponse(
        {"success": False, "code": code, "message": message}, status_code=status, headers=headers
    )


def _busy() -> EventError:
    return EventError(
        "the gateway holds as many request bytes as it may (gateway.max_inflight_body_bytes); retry later",
        503,
        "busy",
        retry_after=1,
    )


class Gateway:
    """The ingestion endpoints, bound to one config and one group writer."""

    def __init__(self, config: SluiceConfig, writer: GroupWriter, is_ready: Callable[[], dict[str, Any]]):
        self.config = config
        self.writer = writer
        self.is_ready = is_ready
        self.sources = {s.write_key: s.name for s in config.sources}
        self.max_request = config.gateway.max_request_bytes
        self.max_event = config.gateway.max_event_bytes
        self.max_unprocessed = config.gateway.max_unprocessed
        self.body_timeout = config.gateway.body_timeout_s
        self.budget = BodyBudget(config.gateway.max_inflight_body_bytes)
        self._budget_freed = asyncio.Event()
        self.unprocessed: Callable[[], int] = lambda: 0
        self._prefixes: dict[str, bytes] = {}
        self._accepted: dict[str, Any] = {}

    def routes(self) -> list[Route]:
        routes = [Route(f"/v1/{t}", self._endpoint(t), methods=["POST"]) for t in (*EVENT_TYPES, "batch")]
        routes += [
            Route("/health", self.health, methods=["GET"]),
            Route("/metrics", self.metrics, methods=["GET"]),
            Route("/openapi.json", self.openapi, methods=["GET"]),
        ]
        return routes

    def _endpoint(self, kind: str) -> Callable[[Request], Any]:
        async def handler(request: Request) -> Response:
            return await self.ingest(request, kind)

        handler.__name__ = f"ingest_{kind}"
        return handler

    # -- ingestion --------------------------------------------------------------------------------
    def _header_key(self, request: Request) -> str | None:
        auth = request.headers.get("authorization")
        if not auth:
            return None
        scheme, _, value = auth.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            decoded = base64.b64decode(value.strip(), validate=False).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[0]

    def _too_large(self, what: str = "request") -> EventError:
        return EventError(
            f"the {what} is larger than {self.max_request} bytes; send smaller batches", 413, "too_large"
        )

    async def _take(self, n: int, anonymous: bool, wait_s: float) -> bool:
        """Reserve ``n`` body bytes, waiting up to ``wait_s`` for other requests to give some back."""
        if self.budget.try_take(n, anonymous):
            return True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while (left := deadline - loop.time()) > 0:
            self._budget_freed.clear()
            try:
                await asyncio.wait_for(self._budget_freed.wait(), timeout=left)
            except TimeoutError:
                pass
            if self.budget.try_take(n, anonymous):
                return True
        return False

    def _give_back(self, n: int, anonymous: bool) -> None:
        if n:
            self.budget.give_back(n, anonymous)
            self._budget_freed.set()

    async def _read_body(self, request: Request, anonymous: bool, held: list[int]) -> bytes | bytearray:
        """The body, with its bytes reserved in the budget (``held[0]`` says how many, to give back).

        Raises EventError: 413 above max_request_bytes (before reading, when Content-Length says so),
        408 when the body does not arrive within body_timeout_s, 503 when the budget is spent.
        """
        limit = self.max_request
        declared = request.headers.get("content-length")
        size_known = declared is not None and declared.isdigit()
        if size_known and int(declared) > limit:
            raise self._too_large()
        if size_known and not await self._take(int(declared), anonymous, 1.0):
            raise _busy()
        held[0] = int(declared) if size_known else 0
        body = bytearray()
        try:
            async with asyncio.timeout(self.body_timeout):
                async for chunk in request.stream():
                    if len(body) + len(chunk) > limit:
                        raise self._too_large()
                    if len(body) + len(chunk) > held[0]:
                        # Chunked, or more than declared (the server would refuse that anyway).
                        extra = len(body) + len(chunk) - held[0]
                        if not self.budget.try_take(extra, anonymous):
                            raise _busy()
                        held[0] += extra
                    body += chunk
        except TimeoutError:
            raise EventError(
                f"the request body did not arrive within {self.body_timeout:g} s; send it faster or smaller",
                408,
                "timeout",
            ) from None
        if request.headers.get("content-encoding", "").lower() == "gzip":
            try:
                d = zlib.decompressobj(16 + zlib.MAX_WBITS)
                plain = d.decompress(body, limit + 1)
            except zlib.error:
                raise EventError("the body is marked Content-Encoding: gzip but is not valid gzip") from None
            if len(plain) > limit:
                raise self._too_large("decompressed request")
            if not self.budget.try_take(len(plain), anonymous):
                raise _busy()
            held[0] += len(plain)
            return plain
        return body

    async def ingest(self, request: Request, kind: str) -> Response:
        if not self.writer.connected:
            return _error(503, "unavailable", "the queue database is unreachable; retry later", 5)
        if self.max_unprocessed is not None and self.unprocessed() > self.max_unprocessed:
            return _error(503, "backlog", "the pipeline is behind; retry later", 2)
        header_key = self._header_key(request)
        if header_key is not None and header_key not in self.sources:
            # Refused before a byte of the body is read; the connection closes so it is not read later.
            return _error(
                401,
                "unauthorized",
                "unknown write key; check the source's write_key in sluice.yaml",
                close=True,
            )
        anonymous = header_key is None
        held = [0]
        try:
            try:
                body = await self._read_body(request, anonymous, held)
                source, data, count = self.prepare(body, kind, header_key)
            except EventError as e:
                # Whatever is left of the body is not read: close instead of keeping the connection.
                return _error(e.status, e.code, e.message, e.retry_after, close=e.status != 400)
            del body
            try:
                await self.writer.submit(data, count)
            except Unavailable as e:
                return _error(503, "unavailable", f"{e.reason}; retry later", e.retry_after)
            except asyncio.CancelledError:
                raise
        finally:
            self._give_back(held[0], anonymous)
        accepted = self._accepted.get(source)
        if accepted is None:
            accepted = self._accepted[source] = metrics.EVENTS_ACCEPTED.labels(source)
        accepted.inc(count)
        return Response(_OK, media_type="application/json")

    def prepare(self, body: bytes, kind: str, header_key: str | None) -> tuple[str, bytes, int]:
        """Parse, authenticate, validate and encode one request: ``(source, COPY text, event count)``.

        Synchronous and free of I/O, so it can be measured and tested on its own. Raises EventError
        (400/401/413) naming what is wrong.
        """
        if not body:
            raise EventError("the request body is empty; send a JSON object")
        payload, fast = decode_body(body)
        if type(payload) is not dict:
            raise EventError(f"the body must be a JSON object, got {type(payload).__name__}")
        key = header_key or payload.get("writeKey")
        if not key:
            raise EventError(
                "no write key; send it as the Basic-auth user name (empty password) or as writeKey",
                401,
                "unauthorized",
            )
        source = self.sources.get(key) if isinstance(key, str) else None
        if source is None:
            raise EventError(
                "unknown write key; check the source's write_key in sluice.yaml", 401, "unauthorized"
            )
        received = dt.datetime.now(dt.UTC)
        received_iso = iso(received)
        if kind == "batch":
            events = payload.get("batch")
            if type(events) is not list:
                raise EventError("a batch request needs a 'batch' array of events")
            if not events:
                raise EventError("the batch is empty; send at least one event")
            bctx = payload.get("context")
            bint = payload.get("integrations")
            if bctx is not None and type(bctx) is not dict:
                raise EventError("context must be a JSON object")
            if bint is not None and type(bint) is not dict:
                raise EventError("integrations must be a JSON object")
            # Merged into every event (recursively): bound their depth before the merge walks them.
            if nesting_exceeds(bctx, MAX_DEPTH - 1) or nesting_exceeds(bint, MAX_DEPTH - 1):
                raise EventError(
                    f"the batch's context or integrations nest more than {MAX_DEPTH - 1} levels deep; "
                    "flatten them"
                )
            normalise_batch(
                events,
                received=received,
                received_iso=received_iso,
                batch_sent_at=payload.get("sentAt"),
                batch_context=bctx,
                batch_integrations=bint,
            )
        else:
            payload.pop("writeKey", None)
            events = [
                normalise(payload, etype=kind, received=received, received_iso=received_iso, where=kind)
            ]
        prefix = self._prefixes.get(source)
        if prefix is None:
            prefix = self._prefixes[source] = (copy_text(source) + "\t").encode("utf-8")
        return source, copy_lines(events, prefix, self.max_event, fast), len(events)

    # -- operations -------------------------------------------------------------------------------
    async def health(self, request: Request) -> Response:
        state = self.is_ready()
        ok = state.get("ready") and self.writer.connected
        state["database"] = "up" if self.writer.connected else "unreachable"
        # Degraded: still accepting and persisting events (200), but delivery is behind or failing.
        state["status"] = ("degraded" if state.get("problems") else "ok") if ok else "unavailable"
        return JSONResponse(state, status_code=200 if ok else 503)

    async def metrics(self, request: Request) -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    async def openapi(self, request: Request) -> Response:
        return JSONResponse(openapi_document(self.config))
