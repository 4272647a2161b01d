"""Helpers for the drift tests: JSON Patch (RFC 6902) over parsed documents, and the fixture paths."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def _parts(pointer: str) -> list[str]:
    return (
        [p.replace("~1", "/").replace("~0", "~") for p in pointer.lstrip("/").split("/")] if pointer else []
    )


def _parent(doc: Any, pointer: str) -> tuple[Any, str]:
    parts = _parts(pointer)
    cur = doc
    for p in parts[:-1]:
        cur = cur[int(p)] if isinstance(cur, list) else cur[p]
    return cur, parts[-1]


def _get(doc: Any, pointer: str) -> Any:
    parent, key = _parent(doc, pointer)
    return parent[int(key)] if isinstance(parent, list) else parent[key]


def _remove(doc: Any, pointer: str) -> Any:
    parent, key = _parent(doc, pointer)
    return parent.pop(int(key)) if isinstance(parent, list) else parent.pop(key)


def _add(doc: Any, pointer: str, value: Any) -> None:
    parent, key = _parent(doc, pointer)
    if isinstance(parent, list):
        parent.append(value) if key == "-" else parent.insert(int(key), value)
    else:
        parent[key] = value


def apply_patch(doc: Any, ops: list[dict[str, Any]]) -> Any:
    out = copy.deepcopy(doc)
    for op in ops:
        kind = op["op"]
        if kind == "add":
            _add(out, op["path"], copy.deepcopy(op["value"]))
        elif kind == "remove":
            _remove(out, op["path"])
        elif kind == "replace":
            _remove(out, op["path"])
            _add(out, op["path"], copy.deepcopy(op["value"]))
        elif kind == "move":
            _add(out, op["path"], _remove(out, op["from"]))
        elif kind == "copy":
            _add(out, op["path"], copy.deepcopy(_get(out, op["from"])))
        else:
            raise ValueError(f"unsupported patch op {kind!r}")
    return out
