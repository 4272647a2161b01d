"""Merge mapped requests into vendor batches, within the spec's limits.

Only requests that would go to the same place the same way (method, URL, headers, params, and the
body fields an endpoint's ``group_by`` names) and under the same batching rules merge, and order is
kept: the router relies on it for per-user ordering. The rules come from the spec: the spec-wide
``batching`` block, or an endpoint's own ``batch`` block (per-array caps, a wrapping envelope, another
URL for merged uploads, envelope fields that must agree).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sdk.mapping.paths import MISSING, get_path, set_path, split_path
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

    @classmethod
    def from_batching(cls, b: Batching) -> BatchPlan:
        lists = {split_path(b.list_path): None} if b.list_path else None
        return cls("spec", b.max_events, b.max_bytes, lists)

    @classmethod
    def from_endpoint(cls, name: str, b: EndpointBatch, merged_url: str | None = None) -> BatchPlan:
        lists: dict[tuple[str, ...], int | None] | None = {split_path(k): v for k, v in b.lists.items()}
        if b.wrap:
            lists = {(b.wrap,): b.max_events}
        group_by = tuple(split_path(p) for p in b.group_by)
        return cls(f"endpoint:{name}", b.max_events, b.max_bytes, lists or None, b.wrap, merged_url, group_by)


@dataclass
class _Group:
    indices: list[int]
    first: VendorRequest
    size: int
    lists: dict[tuple[str, ...], list[Any]] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)


def _route_key(plan: BatchPlan, r: VendorRequest, mapped_body: Any) -> str:
    key: list[Any] = [plan.name, r.method, r.url, r.headers, r.params]
    if plan.group_by:
        key.append([_or_none(get_path(mapped_body, p)) for p in plan.group_by])
    return json.dumps(key, sort_keys=True, default=str)


def _or_none(v: Any) -> Any:
    return None if v is MISSING else v


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


def _close(group: _Group, plan: BatchPlan) -> tuple[list[int], VendorRequest]:
    if len(group.indices) == 1:
        return group.indices, group.first
    if plan.lists is None:
        body: Any = group.lists[()]
    else:
        body = copy.deepcopy(group.first.json_body)
        for path, items in group.lists.items():
            set_path(body, path, items)
        for k, v in group.extras.items():
            body.setdefault(k, v)
    update: dict[str, Any] = {"json_body": body}
    if plan.merged_url:
        update["url"] = plan.merged_url
    return group.indices, group.first.model_copy(update=update)


def merge_planned(
    requests: list[VendorRequest], plan_for: Callable[[VendorRequest], BatchPlan | None]
) -> list[tuple[list[int], VendorRequest]]:
    """Group ``requests``; returns (indices of inputs, request to send) pairs, in input order."""
    out: list[tuple[list[int], VendorRequest]] = []
    groups: dict[str, tuple[_Group, BatchPlan]] = {}
    for i, r in enumerate(requests):
        plan = plan_for(r)
        if plan is None or r.body_kind != "json":
            out.append(([i], r))
            continue
        mapped_body = r.json_body
        if plan.wrap:
            r = r.model_copy(update={"json_body": {plan.wrap: [mapped_body]}})
        parts = _parts(r.json_body, plan)
        if parts is None or plan.max_events <= 1:
            out.append(([i], r))
            continue
        key = _route_key(plan, r, mapped_body)
        size = len(r.body_bytes())
        entry = groups.get(key)
        if entry is not None:
            g = entry[0]
            full = len(g.indices) + 1 > plan.max_events or g.size + size > plan.max_bytes
            if full or _overflows(g, parts, plan):
                out.append(_close(g, plan))
                entry = None
        if entry is None:
            groups[key] = (_Group([i], r, size, {p: list(v) for p, v in parts.items()}), plan)
            continue
        g = entry[0]
        g.indices.append(i)
        g.size += size
        for path, items in parts.items():
            g.lists.setdefault(path, []).extend(items)
        if isinstance(r.json_body, dict):
            tops = {p[0] for p in parts if p}
            for k, v in r.json_body.items():
                if k not in tops:
                    g.extras.setdefault(k, v)
    for g, plan in groups.values():
        out.append(_close(g, plan))
    out.sort(key=lambda p: p[0][0])
    return out


def merge_requests(
    requests: list[VendorRequest], batching: Batching
) -> list[tuple[list[int], VendorRequest]]:
    """Merge with the spec-wide rules only (no endpoint-specific ones)."""
    plan = BatchPlan.from_batching(batching) if batching.enabled and batching.max_events > 1 else None
    return merge_planned(requests, lambda _r: plan)
