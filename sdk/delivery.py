"""Put one ``VendorRequest`` on the wire and hand back the raw answer.

``build_kwargs`` is shared by the pipeline router's HTTP client
(``pipeline/router/http1.py``) and the contract harness (``send``, on httpx), so
the bytes the tests replay against cassettes are exactly the bytes production
sends. Classification is deliberately *not* done here: the caller owns the
connector and its response rules, and network failures surface as httpx
exceptions so ``sdk.classify.classify_exception`` can see what happened.

What a stored request may not decide (it can come from an event: the webhook copies an event's
``header`` object): framing and hop-by-hop headers (``Content-Length``, ``Transfer-Encoding``,
``Host``, ``Connection``, ``Keep-Alive``, ``Upgrade``, ``TE``, ``Trailer``, ``Proxy-*``) are the
HTTP client's business and are dropped; a header the protocol cannot carry (a name that is not a
token, a value with a line break or another control character) raises ``UnsendableRequest``, so the
caller can abort that one request with the reason. Values with non-ASCII text go as their UTF-8
bytes, which RFC 9110 (section 5.5) lets a field value carry as opaque octets.
"""

from __future__ import annotations

import asyncio
import functools
import re
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field

from sdk.batching import encoded_body
from sdk.errors import AbortedError
from sdk.request import VendorRequest

DEFAULT_TIMEOUT = 30.0
USER_AGENT = "sluice/0.1"
# The most of a vendor's answer the async sender reads; the rest is dropped (the connection closed).
MAX_RESPONSE_BYTES = 1 << 20

_FRAMING = frozenset(
    {"content-length", "transfer-encoding", "host", "connection", "keep-alive", "upgrade", "te", "trailer"}
)
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_BAD_VALUE_CHAR = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


class UnsendableRequest(AbortedError):
    """The request cannot be put on the wire as it is (retrying cannot help)."""

    type = "unsendable_request"


class DeadlineExceeded(httpx.TimeoutException):
    """No complete answer within the request's total deadline (however slowly the bytes trickled)."""

    @classmethod
    def after(cls, deadline: float | None) -> DeadlineExceeded:
        return cls(
            f"no complete answer within the {deadline:g} s deadline for one request "
            "(raise the destination's timeout_s if the vendor is legitimately this slow)"
        )


class DeliveryResult(BaseModel):
    """What the vendor answered; ``body`` is raw bytes because vendors are not always JSON."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    status: int
    headers: dict[str, str] = Field(default_factory=dict)
    body: bytes = b""
    elapsed_ms: float = 0.0

    def as_tuple(self) -> tuple[int, dict[str, str], bytes]:
        return self.status, self.headers, self.body


def build_kwargs(req: VendorRequest, timeout: float | httpx.Timeout | None) -> dict[str, Any]:
    """httpx ``request()`` keyword arguments for ``req``.

    The body is encoded by ``VendorRequest.body_bytes`` (not by httpx's json=/data=)
    so batching byte limits, cassette bodies and what is sent all agree byte for byte.
    """
    headers = wire_headers(req.headers)
    lower = {k.lower() for k in headers}
    ctype = req.content_type()
    if ctype and "content-type" not in lower:
        headers["Content-Type"] = ctype
    if "user-agent" not in lower:
        headers["User-Agent"] = USER_AGENT
    params = {k: _param_value(v) for k, v in req.params.items() if v is not None}
    # httpx's params= replaces a query string already in the URL; merge instead, so a
    # user-supplied webhook URL like https://h/x?token=1 keeps its own parameters.
    url = _parsed_url(req.url)
    if params:
        url = url.copy_merge_params(params)
    kwargs: dict[str, Any] = {
        "method": req.method.upper(),
        "url": url,
        "headers": headers,
        "timeout": timeout if timeout is not None else DEFAULT_TIMEOUT,
    }
    if req.body_kind is not None:
        kwargs["content"] = encoded_body(req)
    return kwargs


def wire_headers(headers: dict[str, Any]) -> dict[str, str | bytes]:
    """The headers a request may set itself, as they go on the wire (see the module docstring)."""
    out: dict[str, str | bytes] = {}
    for name, raw in headers.items():
        lname = name.lower()
        if lname in _FRAMING or lname.startswith("proxy-"):
            continue
        if not _HEADER_NAME.fullmatch(name):
            raise UnsendableRequest(
                f"header name {name[:60]!r} is not a valid HTTP header name (letters, digits and "
                "!#$%&'*+.^_`|~- only); fix the destination config or the event that set it"
            )
        value = (raw if isinstance(raw, str) else str(raw)).strip(" \t")
        if _BAD_VALUE_CHAR.search(value):
            raise UnsendableRequest(
                f"header {name!r} has a line break or another control character in its value, which "
                "HTTP cannot carry; fix the destination config or the event that set it"
            )
        out[name] = value if value.isascii() else value.encode("utf-8")
    return out


def rebase(url: str, base: str) -> str:
    """``url`` sent to ``base`` instead: its scheme, host and port, with its path as a prefix; the
    request's own path, query and user info are kept (a vendor-URL override for sandboxes, egress
    proxies and tests)."""
    u, b = urlsplit(url), urlsplit(base)
    netloc = b.netloc if "@" not in u.netloc else u.netloc.rsplit("@", 1)[0] + "@" + b.netloc
    return urlunsplit((b.scheme, netloc, b.path.rstrip("/") + (u.path or "/"), u.query, u.fragment))


@functools.lru_cache(maxsize=4096)
def _parsed_url(url: str) -> httpx.URL:
    """httpx parses a URL in pure Python (~tens of µs); a destination sends to few distinct URLs."""
    return httpx.URL(url)


def _param_value(v: Any) -> Any:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):
        return [_param_value(x) for x in v]
    return v


def _result(resp: httpx.Response, started: float) -> DeliveryResult:
    return DeliveryResult(
        status=resp.status_code,
        headers={k: v for k, v in resp.headers.items()},
        body=resp.content,
        elapsed_ms=(time.perf_counter() - started) * 1000.0,
    )


def send(
    client: httpx.Client, req: VendorRequest, timeout: float | httpx.Timeout | None = None
) -> DeliveryResult:
    """Send ``req`` synchronously. Network failures raise ``httpx.TransportError`` subclasses."""
    started = time.perf_counter()
    resp = client.request(**build_kwargs(req, timeout))
    return _result(resp, started)


async def send_async(
    client: httpx.AsyncClient,
    req: VendorRequest,
    timeout: float | httpx.Timeout | None = None,
    *,
    deadline: float | None = None,
    max_body: int = MAX_RESPONSE_BYTES,
) -> DeliveryResult:
    """Send ``req`` on an async client; same contract as :func:`send`, plus a total ``deadline`` in
    seconds (``timeout`` bounds each connect/read/write; a server sending one byte every few seconds
    never trips it, the deadline does: ``DeadlineExceeded``) and at most ``max_body`` bytes of the
    answer are read."""
    kwargs = build_kwargs(req, timeout)
    started = time.perf_counter()
    try:
        async with asyncio.timeout(deadline):
            resp = await client.send(client.build_request(**kwargs), stream=True)
            try:
                body = bytearray()
                async for chunk in resp.aiter_bytes():
                    body += chunk
                    if len(body) >= max_body:
                        del body[max_body:]
                        break
            finally:
                await resp.aclose()
    except TimeoutError:
        raise DeadlineExceeded.after(deadline) from None
    return DeliveryResult(
        status=resp.status_code,
        headers={k: v for k, v in resp.headers.items()},
        body=bytes(body),
        elapsed_ms=(time.perf_counter() - started) * 1000.0,
    )
