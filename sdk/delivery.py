"""Put one ``VendorRequest`` on the wire and hand back the raw answer.

Shared by the pipeline router (async) and the contract harness (sync), so the
bytes the tests replay against cassettes are exactly the bytes production
sends. Classification is deliberately *not* done here: the caller owns the
connector and its response rules, and network failures surface as the httpx
exception itself so ``sdk.classify.classify_exception`` can see what happened.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field

from sdk.request import VendorRequest

DEFAULT_TIMEOUT = 30.0
USER_AGENT = "sluice/0.1"


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
    headers = {k: str(v) for k, v in req.headers.items()}
    lower = {k.lower() for k in headers}
    ctype = req.content_type()
    if ctype and "content-type" not in lower:
        headers["Content-Type"] = ctype
    if "user-agent" not in lower:
        headers["User-Agent"] = USER_AGENT
    params = {k: _param_value(v) for k, v in req.params.items() if v is not None}
    # httpx's params= replaces a query string already in the URL; merge instead, so a
    # user-supplied webhook URL like https://h/x?token=1 keeps its own parameters.
    url = httpx.URL(req.url)
    if params:
        url = url.copy_merge_params(params)
    kwargs: dict[str, Any] = {
        "method": req.method.upper(),
        "url": url,
        "headers": headers,
        "timeout": timeout if timeout is not None else DEFAULT_TIMEOUT,
    }
    if req.body_kind is not None:
        kwargs["content"] = req.body_bytes()
    return kwargs


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
    client: httpx.AsyncClient, req: VendorRequest, timeout: float | httpx.Timeout | None = None
) -> DeliveryResult:
    """Send ``req`` on an async client; same contract as :func:`send`."""
    started = time.perf_counter()
    resp = await client.request(**build_kwargs(req, timeout))
    return _result(resp, started)
