"""Objects built field by field: ``{user_id: userId, properties.plan: traits.plan, "{{ x }}": y}``.

Keys are split at dots into nested objects (``a\\.b`` keeps a dot in a key); a part of a key may be a
template, computed per event (``"$groups.{{ traits.groupType }}"``). Fields are placed in the order they
are written, so a later field wins over an earlier one for the same key. A field whose value is missing
or null is left out (``keep_null: true`` keeps a null, ``omit_empty: true`` also drops "", {} and []).

A key starting with ``...`` spreads an object's fields into this one (``"...": properties``; further
spreads need distinct keys: ``...traits``); fields written after it add to or override what it brought.
"""

from __future__ import annotations

import re
from typing import Any

from sdk.mapping.env import Env
from sdk.mapping.expressions import CompileError, Compiler, Expr, place
from sdk.mapping.paths import MISSING

_SPLIT = re.compile(r"(?<!\\)\.(?![^{]*\}\})")


def _key_parts(compiler: Compiler, key: str, where: str) -> list[Any]:
    parts: list[Any] = []
    for raw in _SPLIT.split(key):
        text = raw.replace("\\.", ".")
        if not text:
            raise CompileError(where, f"field name {key!r} has an empty part; remove the extra dot")
        if "{{" in text:
            parts.append(compiler.template(text, f"{where}[key]", strict=True).fn)
        else:
            parts.append(text)
    return parts


def compile_object(compiler: Compiler, fields: dict[str, Any], where: str) -> Expr:
    plan = []
    reads: set[tuple[str, ...]] = set()
    for key, node in fields.items():
        if not isinstance(key, str) or not key:
            raise CompileError(where, f"field names are text, got {key!r}")
        fwhere = f"{where}.{key}"
        expr = compiler.value(node, fwhere)
        reads |= expr.reads
        parts = ["..."] if key.startswith("...") else _key_parts(compiler, key, fwhere)
        opts = node if isinstance(node, dict) else {}
        static = all(isinstance(p, str) for p in parts)
        plan.append(
            (
                tuple(parts) if static else parts,
                static,
                place(expr),
                bool(opts.get("keep_null")),
                bool(opts.get("omit_empty")),
            )
        )
    single = [p for p in plan if p[1] and len(p[0]) == 1 and p[0][0] != "..."]

    if len(single) == len(plan) and not any(p[3] or p[4] for p in plan):
        # The common case: flat fields, no options. One tight loop.
        flat = [(p[0][0], p[2]) for p in plan]

        def build_flat(env: Env) -> Any:
            out: dict[str, Any] = {}
            for k, fn in flat:
                v = fn(env)
                if v is not MISSING and v is not None:
                    out[k] = v
            return out

        return Expr(build_flat, True, frozenset(reads))

    def build(env: Env) -> Any:
        out: dict[str, Any] = {}
        for parts, static, fn, keep_null, omit_empty in plan:
            v = fn(env)
            if v is MISSING:
                continue
            if v is None and not keep_null:
                continue
            if omit_empty and (v == "" or v == {} or v == []):
                continue
            keys = parts if static else [p if isinstance(p, str) else _key_text(p(env)) for p in parts]
            if keys[0] == "..." and len(keys) == 1:
                if type(v) is dict:
                    out.update(v)
                continue
            if len(keys) == 1:
                out[keys[0]] = v
                continue
            cur = out
            for k in keys[:-1]:
                nxt = cur.get(k)
                if type(nxt) is not dict:
                    nxt = {}
                    cur[k] = nxt
                cur = nxt
            cur[keys[-1]] = v
        return out

    return Expr(build, True, frozenset(reads))


def _key_text(v: Any) -> str:
    from sdk.mapping.formats import to_string

    return to_string(v)
