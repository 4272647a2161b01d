"""Merge mapped requests into vendor batches, within the spec's limits.

Only requests that would go to the same place the same way (method, URL, headers, params) and
under the same batching rules merge, and order is kept: the router relies on it for per-user
ordering. The rules come from the spec: the spec-wide ``batching`` block, or an endpoint's own
``batch`` block (per-array caps, a wrapping envelope, another URL for merged uploads).

Merging is total: a request that cannot be merged for any reason (a body too deep to encode, an odd
value in a header) is passed through on its own, so one strange event never keeps the others of its
round from going out; if it cannot be sent either, that is its job's outcome alone. Nothing here
recurses into event data: merged bodies copy only the containers on the merged lists' paths.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from sdk.mapping.paths import MISSING, get_path, split_path
from sdk.request import VendorRequest
from sdk.spec.model import Batching, EndpointBatch


@dataclass(frozen=True)
class BatchPlan:
    """How requests of one kind merge. ``lists`` None means the body is a JSON array, merged whole."""

    name: str
    max_events: int
    max_bytes: int
    lists: dict[tuple[str, ...], int | None] | None
    wrap: str | None = None
    merged_url: str | None = None
    group_by: tuple[tuple[str, ...], ...] = ()
    deliver_url: str | None = None
    deliver_endpoint: str | None = None
    hoist: tuple[str, ...] = ()

    @classmethod
    def from_batching(cls, b: Batching) -> BatchPlan:
        lists = {split_path(b.list_path): None} if b.list_path else None
        return cls("spec", b.max_events, b.max_bytes, lists)

    @classmethod
    def from_endpoint(
        cls, name: str, b: EndpointBatch, merged_url: str | None = None, deliver_url: str | None = None
    ) -> BatchPlan:
        lists: dict[tuple[str, ...], int | None] | None = {split_path(k): v for k, v in b.lists.items()}
        if b.wrap:
            lists = {(b.wrap,): b.max_events}
        group_by = tuple(split_path(p) for p in b.group_by)
        return cls(
            f"endpoint:{name}",
            b.max_events,
            b.max_bytes,
            lists or None,
            b.wrap,
            merged_url,
            group_by,
            deliver_url,
            b.deliver_to if deliver_url else None,
            tuple(b.hoist),
        )


@dataclass
class _Group:
    indices: list[int]
    first: VendorRequest
    size: int
    lists: dict[tuple[str, ...], list[Any]] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)
    requests: list[VendorRequest] = field(default_factory=list)


def _size(r: VendorRequest) -> int:
    """The encoded size of a JSON body, measured with orjson (several times faster than encoding it
    the way it is sent; the two can differ by a character or two for unusual floats, which is why a
    merged body is measured exactly once more before it leaves, see ``_close``)."""
    try:
        return len(orjson.dumps(r.json_body))
    except (TypeError, orjson.JSONEncodeError):
        return len(r.body_bytes())


def encoded_body(req: VendorRequest) -> bytes:
    """The body's bytes as sent: those the batcher already computed, else ``req.body_bytes()``."""
    cached = req.meta.get(ENCODED)
    return cached if isinstance(cached, bytes) else req.body_bytes()


ENCODED = "encoded_body"  # meta key: a merged request's body, encoded once when it was measured


def _route_key(plan: BatchPlan, r: VendorRequest, group: list[Any]) -> str:
    hoisted = {k: r.json_body.get(k) for k in plan.hoist} if isinstance(r.json_body, dict) else None
    return json.dumps(
        [plan.name, r.method, r.url, r.headers, r.params, group, hoisted], sort_keys=True, default=str
    )


def _wrapped(body: Any, plan: BatchPlan) -> Any:
    """``{wrap: [body]}``, with the ``hoist`` keys moved from the body into the envelope (first)."""
    if not plan.hoist or not isinstance(body, dict):
        return {plan.wrap: [body]}
    envelope = {k: body[k] for k in plan.hoist if k in body}
    envelope[plan.wrap] = [{k: v for k, v in body.items() if k not in envelope}]
    return envelope


def _group_values(plan: BatchPlan, body: Any) -> list[Any]:
    """The values at the plan's ``group_by`` paths (read before any envelope is added)."""
    return [None if (v := get_path(body, p)) is MISSING else v for p in plan.group_by]


def _parts(body: Any, plan: BatchPlan) -> dict[tuple[str, ...], list[Any]] | None:
    """The arrays this body contributes, or None when it cannot be merged under ``plan``."""
    if plan.lists is None:
        return {(): body} if isinstance(body, list) else None
    if not isinstance(body, dict):
        return None
    found: dict[tuple[str, ...], list[Any]] = {}
    for path in plan.lists:
        v = get_path(body, path)
        if isinstance(v, list):
            found[path] = v
        elif v is not MISSING and v is not None:
            return None
    return found or None


def _overflows(group: _Group, parts: dict[tuple[str, ...], list[Any]], plan: BatchPlan) -> bool:
    for path, items in parts.items():
        cap = plan.lists.get(path) if plan.lists else None
        if cap is not None and len(group.lists.get(path, ())) + len(items) > cap:
            return True
    return False


def _close(group: _Group, plan: BatchPlan) -> list[tuple[list[int], VendorRequest]]:
    if len(group.indices) == 1:
        return [(group.indices, group.first)]
    if plan.lists is None:
        body: Any = group.lists[()]
    else:
        body = _with_lists(group.first.json_body, group.lists)
        for k, v in group.extras.items():
            body.setdefault(k, v)
    update: dict[str, Any] = {"json_body": body}
    if plan.merged_url:
        update["url"] = plan.merged_url
    merged = group.first.model_copy(update=update)
    encoded = merged.body_bytes()
    if len(encoded) > plan.max_bytes:
        # The quick measure was a little short: pack this group again, measuring exactly.
        half = len(group.requests) // 2
        out = []
        for part, offset in ((group.requests[:half], 0), (group.requests[half:], half)):
            for idx, req in merge_planned(part, lambda _r: plan, exact=True):
                out.append(([group.indices[offset + i] for i in idx], req))
        return out
    merged.meta = {**merged.meta, ENCODED: encoded}
    return [(group.indices, merged)]


def _with_lists(body: dict[str, Any], lists: dict[tuple[str, ...], list[Any]]) -> dict[str, Any]:
    """``body`` with the arrays at ``lists`` replaced; only the dicts on those paths are copied, so
    the first request (and the event data it shares with others) is never modified."""
    root = dict(body)
    copied: dict[tuple[str, ...], dict[str, Any]] = {(): root}
    for path, items in lists.items():
        node = root
        for depth in range(1, len(path)):
            child = copied.get(path[:depth])
            if child is None:
                current = node.get(path[depth - 1])
                child = dict(current) if isinstance(current, dict) else {}
                node[path[depth - 1]] = child
                copied[path[:depth]] = child
            node = child
        node[path[-1]] = items
    return root


def merge_planned(
    requests: list[VendorRequest],
    plan_for: Callable[[VendorRequest], BatchPlan | None],
    *,
    exact: bool = False,
) -> list[tuple[list[int], VendorRequest]]:
    """Group ``requests``; returns (indices of inputs, request to send) pairs, in input order."""
    out: list[tuple[list[int], VendorRequest]] = []
    groups: dict[str, tuple[_Group, BatchPlan]] = {}
    for i, r in enumerate(requests):
        try:
            plan = plan_for(r)
            if plan is None or r.body_kind != "json":
                out.append(([i], r))
                continue
            group = _group_values(plan, r.json_body)
            if plan.wrap:
                r = r.model_copy(update={"json_body": _wrapped(r.json_body, plan)})
            if plan.deliver_url:
                r = r.model_copy(update={"url": plan.deliver_url, "endpoint": plan.deliver_endpoint})
            parts = _parts(r.json_body, plan)
            if parts is None or plan.max_events <= 1:
                out.append(([i], r))
                continue
            key = _route_key(plan, r, group)
            size = len(r.body_bytes()) if exact else _size(r)
        except Exception:  # noqa: BLE001 - unmergeable: it goes alone (see the module docstring)
            out.append(([i], r))  # `r` is the wrapped form if wrapping got that far
            continue
        entry = groups.get(key)
        if entry is not None:
            g = entry[0]
            full = len(g.indices) + 1 > plan.max_events or g.size + size > plan.max_bytes
            if full or _overflows(g, parts, plan):
                out.extend(_close(g, plan))
                entry = None
        if entry is None:
            groups[key] = (_Group([i], r, size, {p: list(v) for p, v in parts.items()}, requests=[r]), plan)
            continue
        g = entry[0]
        g.indices.append(i)
        g.requests.append(r)
        g.size += size
        for path, items in parts.items():
            g.lists.setdefault(path, []).extend(items)
        if isinstance(r.json_body, dict):
            tops = {p[0] for p in parts if p}
            for k, v in r.json_body.items():
                if k not in tops:
                    g.extras.setdefault(k, v)
    for g, plan in groups.values():
        out.extend(_close(g, plan))
    out.sort(key=lambda p: p[0][0])
    return out


def merge_requests(
    requests: list[VendorRequest], batching: Batching
) -> list[tuple[list[int], VendorRequest]]:
    """Merge with the spec-wide rules only (no endpoint-specific ones)."""
    plan = BatchPlan.from_batching(batching) if batching.enabled and batching.max_events > 1 else None
    return merge_planned(requests, lambda _r: plan)
