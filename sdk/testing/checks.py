"""Well-formedness checks applied to every request a connector produces (fixtures and fuzz alike)."""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from sdk.connector import Connector
from sdk.request import VendorRequest
from sdk.testing.cases import safe_url

_TEMPLATE = re.compile(r"\{\{.*?\}\}")


@lru_cache(maxsize=256)
def _url_regex(template: str) -> re.Pattern[str]:
    parts = _TEMPLATE.split(template)
    return re.compile("^" + ".+?".join(re.escape(p) for p in parts) + "$")


def endpoint_for(connector: Connector, req: VendorRequest) -> str | None:
    """Which spec endpoint produced ``req``, by matching its URL against the endpoints' URL templates."""
    tagged = req.meta.get("endpoint")  # set by Connector.build_request; exact even when endpoints share a URL
    if isinstance(tagged, str) and tagged in connector.spec.endpoints:
        return tagged
    url = req.url.split("?", 1)[0]
    best: tuple[int, str] | None = None
    for name, ep in connector.spec.endpoints.items():
        if _url_regex(ep.url).match(url):
            # Prefer the most specific template (most literal characters) and the same method.
            score = len(_TEMPLATE.sub("", ep.url)) + (1000 if ep.method == req.method.upper() else 0)
            if best is None or score > best[0]:
                best = (score, name)
    return best[1] if best else None


def _present(body: Any, path: str) -> bool:
    """``a.b`` / ``items[].id``: present and not null (every list element must have it)."""
    parts = path.split(".")
    cur: list[Any] = [body]
    for part in parts:
        each = part.endswith("[]")
        key = part[:-2] if each else part
        nxt: list[Any] = []
        for node in cur:
            if key:
                if not isinstance(node, dict) or node.get(key) is None:
                    return False
                node = node[key]
            if each:
                if not isinstance(node, list):
                    return False
                nxt.extend(node)
            else:
                nxt.append(node)
        cur = nxt
    return True


def required_paths(connector: Connector, endpoint: str | None) -> list[str]:
    contract = connector.spec.contract
    if contract is None or endpoint is None:
        return []
    return list(contract.required.get(endpoint, []))


def request_problems(connector: Connector, req: VendorRequest) -> list[str]:
    """Everything wrong with one produced request; an empty list means well-formed."""
    problems: list[str] = []
    spec = connector.spec
    if req.method.upper() not in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        problems.append(f"method {req.method!r} is not an HTTP method the router sends")
    parts = urlsplit(req.url)
    allowed = ("https",) if spec.require_https else ("https", "http")
    if parts.scheme not in allowed or not parts.netloc:
        problems.append(
            f"url {safe_url(req.url)[:120]!r} is not an absolute {' or '.join(allowed)} URL; "
            "check the endpoint template and the settings it uses"
        )
    if any(not isinstance(v, str) for v in req.headers.values()):
        problems.append("header values must be strings")
    try:
        json.dumps(req.to_wire(), allow_nan=False)
    except (TypeError, ValueError) as e:
        problems.append(f"body is not JSON-serialisable ({e}); convert dates/decimals/NaN in the mapping")
    endpoint = endpoint_for(connector, req)
    body = req.json_body if req.body_kind == "json" else req.form if req.body_kind == "form" else None
    for path in required_paths(connector, endpoint):
        items = body if isinstance(body, list) else [body]
        if not items or not all(_present(b, path) for b in items):
            problems.append(
                f"vendor-required field {path!r} (spec contract.required.{endpoint}) is missing or null"
            )
    return problems


def batch_problems(connector: Connector, requests: list[VendorRequest], config: dict[str, Any]) -> list[str]:
    """Batching must keep the spec's limits and account for every input request exactly once."""
    b = connector.spec.batching
    problems: list[str] = []
    batches = connector.batch(requests, config)
    seen: list[int] = []
    for indices, req in batches:
        seen.extend(indices)
        if b.enabled and len(indices) > b.max_events:
            problems.append(f"a batch holds {len(indices)} events, over batching.max_events={b.max_events}")
        size = len(req.body_bytes())
        if b.enabled and len(indices) > 1 and size > b.max_bytes:
            problems.append(
                f"a batch of {len(indices)} is {size} bytes, over batching.max_bytes={b.max_bytes}"
            )
    if sorted(seen) != list(range(len(requests))):
        problems.append(
            f"batching lost or duplicated requests: got indices {sorted(seen)[:20]} for {len(requests)}"
        )
    return problems
