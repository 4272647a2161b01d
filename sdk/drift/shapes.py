"""The shape of a JSON value: which pointers exist and with what types, values left out.

Live drift and runtime telemetry compare shapes rather than bodies: ids, times and counts differ on every
call, fields and types should not. Arrays fold into ``*`` (every element has the element shape), and an
object with very many keys is treated as a map (its keys are data, not fields).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

MAP_KEYS = 64
MAX_DEPTH = 8


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def shape(
    value: Any, prefix: str = "", depth: int = 0, out: dict[str, set[str]] | None = None
) -> dict[str, set[str]]:
    """``{pointer: {types}}`` for ``value`` and everything inside it (``""`` is the value itself)."""
    out = {} if out is None else out
    out.setdefault(prefix, set()).add(type_name(value))
    if depth >= MAX_DEPTH:
        return out
    if isinstance(value, dict) and len(value) <= MAP_KEYS:
        for k, v in value.items():
            shape(v, f"{prefix}/{str(k).replace('~', '~0').replace('/', '~1')}", depth + 1, out)
    elif isinstance(value, list):
        for v in value[:50]:
            shape(v, prefix + "/*", depth + 1, out)
    return out


def parse_json(text: str | bytes | None) -> tuple[bool, Any]:
    if text is None:
        return False, None
    try:
        return True, json.loads(text)
    except (ValueError, TypeError):
        return False, None


def body_shape(text: str | bytes | None) -> dict[str, set[str]] | None:
    """The shape of a JSON body; ``None`` when the body is not JSON."""
    ok, value = parse_json(text)
    return shape(value) if ok else None


def shape_key(sh: dict[str, set[str]] | None) -> str:
    """A short stable id of a shape (``text`` for a non-JSON body)."""
    if sh is None:
        return "text"
    flat = json.dumps({k: sorted(v) for k, v in sorted(sh.items())}, separators=(",", ":"))
    return hashlib.sha256(flat.encode()).hexdigest()[:12]


def shape_diff(old: dict[str, set[str]], new: dict[str, set[str]]) -> dict[str, list[Any]]:
    """Fields added, removed and retyped from ``old`` to ``new`` (topmost pointers only)."""
    added = sorted(p for p in new if p not in old and not _has_parent_in(p, new, old))
    removed = sorted(p for p in old if p not in new and not _has_parent_in(p, old, new))
    # A value that is null in one sample and set in the other says nothing about its type.
    retyped = sorted(
        [p, sorted(old[p]), sorted(new[p])]
        for p in old
        if p in new and (old[p] - {"null"}) and (new[p] - {"null"}) and old[p] - {"null"} != new[p] - {"null"}
    )
    return {"added": added, "removed": removed, "retyped": retyped}


def _has_parent_in(pointer: str, here: dict[str, set[str]], other: dict[str, set[str]]) -> bool:
    """True when an ancestor of ``pointer`` is itself new here (report the ancestor only)."""
    parts = pointer.split("/")
    for i in range(1, len(parts)):
        parent = "/".join(parts[:i])
        if parent and parent in here and parent not in other:
            return True
    return False
