"""Nested event objects → flat columns: ``{product: {name: "iPhone"}}`` → ``product_name``.

Rules:

* ``null``, ``""`` and ``[]`` carry nothing and make no column; ``{}`` flattens to nothing;
* arrays are one ``string`` column that keeps the array as its value (ClickHouse: typed arrays);
* a path listed in ``jsonPaths`` becomes one JSON column holding the object as JSON text, on
  warehouses with JSON support (the others flatten it as usual);
* objects of ``cloud`` sources nested three levels deep are stored as JSON text rather than
  flattened further, so a deep API payload cannot explode into thousands of columns;
* an object whose keys are 1..n (or 0..n-1) and whose values are single characters is a string a
  client spread into an object by mistake (``{"1": "f", "2": "o", "3": "o"}``); it is joined back
  (``"foo"``). Only nested values are rejoined: a whole ``traits`` object like that stays columns.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sdk.warehouse import types as T
from sdk.warehouse.providers import Provider

CLOUD_MAX_DEPTH = 3


@dataclass(frozen=True)
class Flat:
    """One flattened value: its raw column path (``product_name``), value and column type."""

    raw: str
    value: Any
    type: str


def is_empty(value: Any) -> bool:
    return value is None or value == "" or (isinstance(value, list) and not value)


def as_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def spread_string(value: dict[str, Any]) -> str | None:
    """``{"1": "f", "2": "o", "3": "o"}`` → ``"foo"``; None for any other object."""
    if not value:
        return None
    try:
        keys = sorted(int(k) for k in value)
    except (TypeError, ValueError):
        return None
    if keys[0] not in (0, 1) or keys != list(range(keys[0], keys[0] + len(keys))):
        return None
    chars = [value[str(k)] for k in keys] if all(str(k) in value for k in keys) else None
    if not chars or not all(isinstance(c, str) and len(c) == 1 for c in chars):
        return None
    return "".join(chars)


@dataclass(frozen=True)
class Flattener:
    provider: Provider
    json_paths: frozenset[str] = frozenset()
    max_depth: int | None = None

    def flatten(self, obj: Any, *, path: str, prefix: str = "") -> Iterator[Flat]:
        """Columns for the object at event path ``path`` (``properties``, ``context``...), named
        ``prefix`` + the keys joined by ``_``."""
        if not isinstance(obj, dict):
            return
        yield from self._walk(obj, path, prefix, 0)

    def _walk(self, obj: dict[str, Any], path: str, prefix: str, level: int) -> Iterator[Flat]:
        for key, value in obj.items():
            if is_empty(value):
                continue
            key = str(key)
            here = f"{path}.{key}" if path else key
            raw = prefix + key
            if here in self.json_paths and self.provider.json_type:
                yield Flat(raw, as_json(value), self.provider.json_type)
                continue
            if isinstance(value, dict):
                joined = spread_string(value)
                if joined is not None:
                    yield Flat(raw, joined, T.STRING)
                elif self.max_depth is not None and level >= self.max_depth:
                    yield Flat(raw, as_json(value), T.STRING)
                else:
                    yield from self._walk(value, here, raw + "_", level + 1)
                continue
            yield self.leaf(raw, key, value)

    def leaf(self, raw: str, key: str, value: Any) -> Flat:
        if key == "violationErrors" and self.provider.violation_errors_type == T.JSON:
            return Flat(raw, as_json(value), T.JSON)
        if isinstance(value, list):
            return Flat(raw, value, T.STRING)
        if isinstance(value, dict):
            return Flat(raw, as_json(value), T.STRING)
        return Flat(raw, value, T.data_type(value))


def event_json_paths(paths: tuple[str, ...], event_type: str) -> frozenset[str]:
    """The ``jsonPaths`` that apply to this event, as event-relative paths.

    ``track.properties.a.b`` (the current form) names the event type and the full path; the
    legacy form ``a.b`` means ``properties.a.b`` or ``userProperties.a.b`` of track events only.
    """
    types = ("track", "identify", "page", "screen", "group", "alias", "extract")
    out: set[str] = set()
    for p in paths:
        head, _, rest = p.partition(".")
        if head in types:
            if head == event_type and rest:
                out.add(rest)
        elif event_type == "track":
            out.add(f"properties.{p}")
            out.add(f"userProperties.{p}")
    return frozenset(out)
