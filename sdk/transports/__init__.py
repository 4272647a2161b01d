"""Non-HTTP transports: how a destination that is not an HTTP API (a key-value store, a queue) is written.

An endpoint declares ``transport: <name>`` in its spec; its mapped body is then the request's ``raw``
operation (``VendorRequest.raw``), and the router hands such requests to the transport instead of its
HTTP client. A transport answers like an HTTP vendor would (a ``DeliveryResult``: a status, a body), so
the spec's ``responses`` rules, the default classification, retries, ordering and dead letters work
unchanged. The contract is small on purpose:

- ``Transport(settings)``: one per destination and process, from the destination's (unsealed) settings;
  it opens its connections lazily.
- ``addresses()``: the ``(host, port)`` pairs it will connect to, so the router's address guard can refuse
  private networks exactly as it does for HTTP URLs.
- ``check(raw)``: raise ``UnsendableRequest`` when an operation is malformed (never retried).
- ``await send(raw, deadline)`` -> ``DeliveryResult``; a connection failure or a timeout is raised as
  ``OSError`` (``ConnectionError``/``TimeoutError``), which the router retries like a network error.
- ``await aclose()``.
- ``documented_answers``: what the transport answers for the vendor's documented outcomes (status and
  body, with the reply the vendor documents), for contract fixtures and the docs.

Transports are imported lazily by name, so specs load without the client libraries of transports they
do not use.
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol

from sdk.delivery import DeliveryResult

_REGISTRY = {"redis": "sdk.transports.redis:RedisTransport"}


class Transport(Protocol):
    name: str

    def __init__(self, settings: dict[str, Any]) -> None: ...

    def addresses(self) -> list[tuple[str, int]]: ...

    @staticmethod
    def check(raw: Any) -> None: ...

    async def send(self, raw: Any, deadline: float) -> DeliveryResult: ...

    async def aclose(self) -> None: ...


def names() -> frozenset[str]:
    """The registered non-HTTP transports."""
    return frozenset(_REGISTRY)


def transport_class(name: str) -> type[Transport]:
    """The transport registered as ``name``; ``KeyError`` with the known names when there is none."""
    try:
        module, _, attr = _REGISTRY[name].partition(":")
    except KeyError:
        raise KeyError(f"unknown transport {name!r}; known: {', '.join(sorted(_REGISTRY))}") from None
    return getattr(importlib.import_module(module), attr)
