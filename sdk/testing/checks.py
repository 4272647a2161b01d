"""Well-formedness checks applied to every request a connector produces (fixtures and fuzz alike)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from sdk.connector import Connector
from sdk.request import VendorRequest
from sdk.testing.cases import safe_url


def endpoint_for(connector: Connector, req: VendorRequest) -> str | None:
    """Which spec endpoint produced ``req`` (its tag, else the best URL-template match)."""
    return connector.endpoint_of(req)


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
    if req.transport != "http":
        return _transport_problems(connector, req)
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


def _transport_problems(connector: Connector, req: VendorRequest) -> list[str]:
    """A non-HTTP request (sdk/transports): a registered transport, an operation it accepts, JSON-storable,
    and the spec's ``contract.required`` fields present in the operation."""
    from sdk.delivery import UnsendableRequest
    from sdk.transports import transport_class

    try:
        transport_class(req.transport).check(req.raw)
    except KeyError as e:
        return [str(e).strip("'\"")]
    except UnsendableRequest as e:
        return [f"the {req.transport} operation is malformed: {e.message}"]
    problems: list[str] = []
    try:
        json.dumps(req.to_wire(), allow_nan=False)
    except (TypeError, ValueError) as e:
        problems.append(f"the operation is not JSON-serialisable ({e}); convert dates or NaN in mapping")
    endpoint = endpoint_for(connector, req)
    for path in required_paths(connector, endpoint):
        if not _present(req.raw, path):
            problems.append(f"required field {path!r} (spec contract.required.{endpoint}) is missing or null")
    return problems


def batch_problems(connector: Connector, requests: list[VendorRequest], config: dict[str, Any]) -> list[str]:
    """Batching must keep the spec's limits (an endpoint's own, else the spec-wide ones) and account
    for every input request exactly once."""
    spec_b = connector.spec.batching
    problems: list[str] = []
    batches = connector.batch(requests, config)
    seen: list[int] = []
    for indices, req in batches:
        seen.extend(indices)
        if not spec_b.enabled or not indices:
            continue
        ep_name = connector.endpoint_of(requests[indices[0]])
        ep_b = connector.spec.endpoints[ep_name].batch if ep_name else None
        where = f"endpoints.{ep_name}.batch" if ep_b else "batching"
        max_events = ep_b.max_events if ep_b else spec_b.max_events
        max_bytes = ep_b.max_bytes if ep_b else spec_b.max_bytes
        if len(indices) > max_events:
            problems.append(f"a batch holds {len(indices)} events, over {where}.max_events={max_events}")
        size = len(req.body_bytes())
        if len(indices) > 1 and size > max_bytes:
            problems.append(f"a batch of {len(indices)} is {size} bytes, over {where}.max_bytes={max_bytes}")
        for path, cap in ep_b.lists.items() if ep_b else ():
            items = req.json_body.get(path) if isinstance(req.json_body, dict) else None
            if cap is not None and isinstance(items, list) and len(items) > cap:
                problems.append(f"a batch's {path} holds {len(items)} items, over {where}.lists.{path}={cap}")
    if sorted(seen) != list(range(len(requests))):
        problems.append(
            f"batching lost or duplicated requests: got indices {sorted(seen)[:20]} for {len(requests)}"
        )
    return problems
