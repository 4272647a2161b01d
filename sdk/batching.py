"""Merge mapped requests into vendor batches, within the spec's event and byte limits.

Only requests that would go to the same place the same way (method, URL,
headers, params) merge, and order is kept: the router relies on it for
per-user ordering.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from sdk.mapping.paths import MISSING, get_path, set_path, split_path
from sdk.request import VendorRequest
from sdk.spec.model import Batching


def _route_key(r: VendorRequest) -> str:
    return json.dumps([r.method, r.url, r.headers, r.params, r.body_kind], sort_keys=True, default=str)


def _items(r: VendorRequest, parts: tuple[str, ...] | None) -> list[Any] | None:
    body = r.json_body
    if parts is None:
        return body if isinstance(body, list) else None
    v = get_path(body, parts)
    return v if isinstance(v, list) and v is not MISSING else None


def merge_requests(
    requests: list[VendorRequest], batching: Batching
) -> list[tuple[list[int], VendorRequest]]:
    """Group ``requests`` into batched requests; returns (indices of inputs, merged request) pairs."""
    if not batching.enabled or batching.max_events <= 1:
        return [([i], r) for i, r in enumerate(requests)]
    parts = split_path(batching.list_path) if batching.list_path else None
    out: list[tuple[list[int], VendorRequest]] = []
    open_groups: dict[str, tuple[list[int], list[Any], int, VendorRequest]] = {}

    def close(key: str) -> None:
        idx, items, _size, first = open_groups.pop(key)
        if len(idx) == 1:
            out.append((idx, first))
            return
        merged = first.model_copy(deep=False)
        if parts is None:
            merged.json_body = items
        else:
            body = copy.deepcopy(first.json_body)
            set_path(body, parts, items)
            merged.json_body = body
        out.append((idx, merged))

    for i, r in enumerate(requests):
        items = _items(r, parts) if r.body_kind == "json" else None
        if items is None:
            out.append(([i], r))
            continue
        key = _route_key(r)
        size = len(r.body_bytes())
        group = open_groups.get(key)
        if group is not None:
            idx, acc, acc_size, _first = group
            if len(idx) + 1 > batching.max_events or acc_size + size > batching.max_bytes:
                close(key)
                group = None
        if group is None:
            open_groups[key] = ([i], list(items), size, r)
        else:
            idx, acc, acc_size, first = group
            idx.append(i)
            acc.extend(items)
            open_groups[key] = (idx, acc, acc_size + size, first)
    for key in list(open_groups):
        close(key)
    out.sort(key=lambda p: p[0][0])
    return out
