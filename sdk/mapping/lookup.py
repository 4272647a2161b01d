"""``lookup``: translate a value through a table written in the spec and/or rows from the settings.

::

    lookup: event                  # the key (any expression)
    rows: settings.eventsMapping   # RudderStack-style rows [{from: ..., to: ...}] (checked first)
                                   # or an object: its keys are the keys (`rows: traits` reads the
                                   # trait a setting names: `lookup: settings.groupTypeTrait`)
    key_field: from                # row field holding the key (default "from")
    value_field: to                # row field holding the result (default "to")
    table: {order completed: purchase}   # static table (data, not expressions)
    match: loose                   # exact | ci | loose (default: loose)
    many: true                     # every match, as a list (one event -> several vendor events)
    otherwise: pass                # no match: missing (default) | pass (the key itself) | drop | error
    default: Other                 # no match: this literal (instead of `otherwise`)
    error: "..."                   # message for otherwise: error/drop

Rows are indexed once per distinct settings list, not per event. An object given as ``rows`` is read
directly (no index): with ``match: exact`` one dictionary read, otherwise its keys are compared one by one.
"""

from __future__ import annotations

from typing import Any

from sdk.errors import EventDropped, InstrumentationError
from sdk.mapping.env import Env
from sdk.mapping.expressions import MATCH_MODES, CompileError, Compiler, Expr, normalise_key
from sdk.mapping.jsoncopy import json_copy
from sdk.mapping.paths import MISSING

OTHERWISE = ("missing", "pass", "drop", "error")


class RowIndex:
    """Settings rows ``[{from: k, to: v}, ...]`` as {normalised key: [values]}, built once per rows list
    (rows without a key or a value are skipped, keys keep every value). Shared by the closures and the
    generated code, so both index rows the same way."""

    def __init__(self, key_field: str, value_field: str, mode: str):
        self.key_field, self.value_field, self.mode = key_field, value_field, mode
        self.cache: dict[int, tuple[Any, dict[str | None, list[Any]]]] = {}

    def __call__(self, rows: Any) -> dict[str | None, list[Any]]:
        hit = self.cache.get(id(rows))
        if hit is not None and hit[0] is rows:
            return hit[1]
        idx: dict[str | None, list[Any]] = {}
        for row in rows if isinstance(rows, list) else []:
            if not isinstance(row, dict):
                continue
            k = normalise_key(row.get(self.key_field), self.mode)
            v = row.get(self.value_field)
            if k is None or k == "" or v is None or v == "":
                continue
            idx.setdefault(k, []).append(v)
        if len(self.cache) > 64:
            self.cache.clear()
        self.cache[id(rows)] = (rows, idx)  # keeps `rows` alive, so its id cannot be reused
        return idx


def distinct_copies(found: list[Any]) -> list[Any]:
    """``many``: every match once (compared by their text form), each a copy."""
    seen: set[str] = set()
    out = []
    for v in found:
        mark = repr(v)
        if mark not in seen:
            seen.add(mark)
            out.append(json_copy(v))
    return out


def compile_lookup(compiler: Compiler, node: dict[str, Any], where: str) -> Expr:
    key = compiler.value(node["lookup"], f"{where}.lookup")
    mode = node.get("match", "loose")
    if mode not in MATCH_MODES:
        raise CompileError(where, f"`match` is one of {', '.join(MATCH_MODES)}")
    table = node.get("table") or {}
    if not isinstance(table, dict):
        raise CompileError(where, "`table` is a mapping of keys to results")
    static: dict[str | None, list[Any]] = {}
    for k, v in table.items():
        static.setdefault(normalise_key(k, mode), []).extend(v if isinstance(v, list) else [v])
    rows = compiler.value(node["rows"], f"{where}.rows") if "rows" in node else None
    kf, vf = node.get("key_field", "from"), node.get("value_field", "to")
    many = bool(node.get("many"))
    otherwise = node.get("otherwise", "missing")
    if otherwise not in OTHERWISE:
        raise CompileError(where, f"`otherwise` is one of {', '.join(OTHERWISE)}")
    has_default, default = "default" in node, node.get("default")
    message = node.get("error")
    message_t = compiler.template(message, f"{where}.error") if isinstance(message, str) else None
    key_fn, rows_fn = key.fn, rows.fn if rows else None
    index_rows = RowIndex(kf, vf, mode)

    def lookup(env: Env) -> Any:
        raw = key_fn(env)
        k = normalise_key(raw, mode)
        found: list[Any] = []
        if k is not None:
            if rows_fn is not None:
                table_rows = rows_fn(env)
                if type(table_rows) is dict:
                    found.extend(_object_matches(table_rows, k, mode))
                else:
                    found.extend(index_rows(table_rows).get(k, ()))
            found.extend(static.get(k, ()))
        if found:
            return distinct_copies(found) if many else json_copy(found[0])
        if has_default:
            return json_copy(default)
        if otherwise == "pass":
            if raw is MISSING or raw is None:
                return MISSING
            return [raw] if many else raw
        if otherwise in ("drop", "error"):
            text = message_t.fn(env) if message_t else f"{raw!r} is not mapped ({where})"
            if otherwise == "drop":
                raise EventDropped(str(text))
            raise InstrumentationError(str(text))
        return MISSING

    return Expr(lookup, False, key.reads)


def _object_matches(obj: dict[str, Any], key: str, mode: str) -> list[Any]:
    """Values of ``obj`` whose key matches ``key`` (already normalised); null and empty text are no match."""
    if mode == "exact":
        v = obj.get(key)
        return [] if v is None or v == "" else [v]
    return [v for k, v in obj.items() if v is not None and v != "" and normalise_key(k, mode) == key]
