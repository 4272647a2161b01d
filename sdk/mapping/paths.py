"""Dotted source paths into events (``context.traits.email``, ``products.0.sku``).

Paths are split once, when a spec is compiled; reading is a plain loop.
"""

from __future__ import annotations

from typing import Any

MISSING = object()


def split_path(path: str) -> tuple[str, ...]:
    return tuple(p for p in path.split(".") if p != "")


def get_path(root: Any, parts: tuple[str, ...]) -> Any:
    """The value at ``parts`` or ``MISSING``."""
    cur = root
    for p in parts:
        if isinstance(cur, dict):
            if p in cur:
                cur = cur[p]
            else:
                return MISSING
        elif isinstance(cur, list) and p.lstrip("-").isdigit():
            i = int(p)
            if -len(cur) <= i < len(cur):
                cur = cur[i]
            else:
                return MISSING
        else:
            return MISSING
    return cur


def get(root: Any, path: str, default: Any = None) -> Any:
    """Convenience for mappers: ``get(event, "context.traits.email")``."""
    v = get_path(root, split_path(path))
    return default if v is MISSING or v is None else v


def set_path(target: dict, parts: tuple[str, ...], value: Any) -> None:
    cur = target
    for p in parts[:-1]:
        nxt = cur.get(p)
        if not isinstance(nxt, dict):
            nxt = {}
            cur[p] = nxt
        cur = nxt
    cur[parts[-1]] = value
