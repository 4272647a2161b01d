"""Generate one Python function per event type from a compiled spec: the engine's fast path.

The closure compiler (``expressions.py``) defines the language: it validates every node, reports errors
with their key, and is the reference semantics. This module then writes the same mapping as straight-line
Python (one function per event type, one per ``let``), so that a field is a few inline dictionary reads
instead of a chain of closure calls. Nodes it does not know how to write (and anything whose
generation fails) are called as the closure the compiler built, so every feature of the language works
here, just at closure speed. ``tests/sdk/test_codegen.py`` runs both on the same events and requires equal
results, errors included.

Generated code reads ``env`` (event, settings, vars, memo); a ``let`` computed here is stored in
``env.memo``, so closures used as fallbacks see it too, and vice versa.

What the code is shaped by, since it runs for every event (``bench/RESULTS.md`` has the measurements):
a function reads only the ``env`` attributes it uses; a let read at a function's top level is kept in a
local for the rest of that function; values are copied once, where they enter an output (``fresh``
tracks which are new already); the common formats and key normalisation are inline for text; constant
fields are plain stores.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sdk.errors import EventDropped, InstrumentationError
from sdk.mapping import formats
from sdk.mapping.conditions import TESTS, duration_seconds, user_pattern
from sdk.mapping.env import _ABSENT, _COMPUTING, CTX_NAMES
from sdk.mapping.expressions import (
    DIRECTIVE_OPTIONS,
    MODIFIERS,
    PRIMARY,
    CompileError,
    Compiler,
    _drop_path,
    _key_paths,
    _missing_template_value,
    _runtime_steps,
    _sandboxed_template,
    normalise_key,
)
from sdk.mapping.exprstring import ExprSyntaxError, ParsedExpr, parse, template_parts
from sdk.mapping.jsoncopy import json_copy
from sdk.mapping.lookup import OTHERWISE as _OTHERWISE
from sdk.mapping.lookup import RowIndex, _object_matches, distinct_copies
from sdk.mapping.objects import _SPLIT as _KEY_SPLIT
from sdk.mapping.paths import INDEX, KEY, MISSING, Path, PathError, read_keys, read_steps

_UNSET: Any = object()
_SIMPLE_ROOTS = {"event": "ev", "settings": "st", "vars": "vr"}
_SUPPORTED_DIRECTIVES = {
    "from", "value", "template", "first", "object", "merge", "array", "if", "each", "lookup", "entries",
    "switch", "rest", "get", "without", "render", "sum", "product", "count", "call",
}  # fmt: skip
_TYPE_TESTS = {
    "string": "type({v}) is str",
    "number": "(type({v}) is int or type({v}) is float)",
    "integer": "type({v}) is int",
    "boolean": "type({v}) is bool",
    "object": "type({v}) is dict",
    "list": "type({v}) is list",
    "null": "{v} is None",
}


# Formats whose result for (most) text is one expression: (extra test on the text, result). Equal to
# calling the format (tests/sdk/test_codegen.py compares every spec both ways); other inputs call it.
_TEXT_INLINE = {
    "string": ("", "{v}"),
    "lower": ("", "{v}.lower()"),
    "upper": ("", "{v}.upper()"),
    "trim": ("", "{v}.strip()"),
    # non-blank text is its own identifier (formats.identifier)
    "identifier": (" and {v} and not {v}[0].isspace() and not {v}[-1].isspace()", "{v}"),
}


class _Unsupported(Exception):
    """This node is not generated: call the compiler's closure for it instead."""


def _format_error(where: str, name: str, e: Exception) -> InstrumentationError:
    return InstrumentationError(f"{where} ({name}): {e}; fix the event value")


class Writer:
    """Source lines with indentation, temporary names and constants."""

    def __init__(self, consts: dict[str, Any], counter: Iterator[int]):
        self.lines: list[str] = []
        self.depth = 1
        # let name -> (local holding its value, line count when it was read): see Generator._let
        self.let_locals: dict[str, tuple[str, int]] = {}
        self.consts = consts
        self.counter = counter

    def tmp(self, prefix: str = "t") -> str:
        return f"{prefix}{next(self.counter)}"

    def const(self, obj: Any, prefix: str = "K") -> str:
        name = f"{prefix}{next(self.counter)}"
        self.consts[name] = obj
        return name

    def emit(self, line: str) -> None:
        self.lines.append("    " * self.depth + line)

    @contextmanager
    def block(self) -> Iterator[None]:
        self.depth += 1
        start = len(self.lines)
        yield
        if len(self.lines) == start:
            self.emit("pass")
        self.depth -= 1

    def guarded(self, statement: str, catch: str, handler: str) -> None:
        """One statement whose failure (``catch``) is handled in place by another: the generated code's
        way of turning a format or number error into a value or a typed error that names the spec key."""
        self.emit("try:")
        with self.block():
            self.emit(statement)
        self.emit(f"except {catch}:")
        with self.block():
            self.emit(handler)

    @contextmanager
    def item_loop(self, seq: str) -> Iterator[str]:
        """``for`` over the list in ``seq`` with each element as ``item`` (and ``index``), restoring the
        enclosing ones afterwards even when the body raises; yields the element's variable."""
        saved, i, el = self.tmp("sv"), self.tmp("i"), self.tmp("el")
        self.emit(f"{saved} = (env.item, env.index)")
        self.emit("try:")
        with self.block():
            self.emit(f"for {i}, {el} in enumerate({seq}):")
            with self.block():
                self.emit(f"env.item = {el}")
                self.emit(f"env.index = {i}")
                yield el
        self.emit("finally:")
        with self.block():
            self.emit(f"env.item, env.index = {saved}")

    def mark(self) -> tuple[int, int]:
        return len(self.lines), self.depth

    def rollback(self, mark: tuple[int, int]) -> None:
        del self.lines[mark[0] :]
        self.depth = mark[1]
        self.let_locals = {n: v for n, v in self.let_locals.items() if v[1] <= mark[0]}


class Generator:
    """Writes values and conditions of one spec; falls back to the compiler's closures."""

    def __init__(self, compiler: Compiler, let_names: set[str], lets_in_env: bool = False):
        self.compiler = compiler
        self.let_names = let_names
        # Outside a mapping function (endpoint templates) lets are computed by the closures (env.let).
        self.lets_in_env = lets_in_env
        # Mark a let as being computed (to report a let that reads itself); needed only when the spec's
        # lets read each other in a cycle, which generation detects.
        self.mark_computing = True
        # What the whole body (or let) being generated reads, as the compiler saw it: `rest` leaves those
        # keys out. None outside such a scope (then `rest` is not generated).
        self.rest_reads: frozenset[tuple[str, ...]] | None = None
        self.let_fn: dict[str, str] = {}  # let name -> generated function (set per event type)
        self.used_lets: set[str] = set()
        self.consts: dict[str, Any] = {
            "_M": MISSING, "_U": _UNSET, "_C": _COMPUTING, "_A": _ABSENT, "_jc": json_copy, "_rk": read_keys,
            "_rs": read_steps,
            "_FE": formats.FormatError, "_fe": _format_error, "_nk": normalise_key, "_truthy": formats.truthy,
            "_IE": InstrumentationError, "_mtv": _missing_template_value, "_to_s": formats.to_string,
            "_num": formats.to_number, "_pt": formats.parse_time, "_up": user_pattern,
            "_rst": _runtime_steps, "_PE": PathError, "_ESE": ExprSyntaxError, "_kp": _key_paths,
            "_dp": _drop_path, "_sbt": _sandboxed_template, "_om": _object_matches,
            "_distinct": distinct_copies, "_ED": EventDropped,
        }  # fmt: skip
        self.counter = itertools.count()

    # -- values ------------------------------------------------------------------------------------------
    def value(self, w: Writer, node: Any, where: str) -> tuple[str, bool]:
        """Emit code computing ``node``; returns (expression of the result, whether it is fresh)."""
        mark = w.mark()
        try:
            atom, fresh = self._value(w, node, where)
            if not atom.isidentifier():  # a literal: give it a name, so tests on it stay plain comparisons
                name = w.tmp()
                w.emit(f"{name} = {atom}")
                atom = name
            return atom, fresh
        except (_Unsupported, ExprSyntaxError):
            w.rollback(mark)
            if self.rest_reads is not None and _has_rest(node):
                fn = self.compiler.scoped(node, where, reads=self.rest_reads).fn
            else:
                fn = self.compiler.value(node, where).fn
            name = w.const(fn, "C")
            out = w.tmp()
            w.emit(f"{out} = {name}(env)")
            return out, False

    def _value(self, w: Writer, node: Any, where: str) -> tuple[str, bool]:
        if isinstance(node, str):
            if "{{" in node:
                return self._template(w, node, where), False
            return self._expr(w, parse(node), where), False
        if node is None or isinstance(node, bool | int | float):
            return repr(node), False
        if isinstance(node, list):
            return self._array(w, node, where), True
        if isinstance(node, dict):
            primaries = [k for k in PRIMARY if k in node]
            if not primaries:
                if any(k in MODIFIERS for k in node):
                    raise _Unsupported
                return self._object(w, node, where), True
            if len(primaries) > 1:  # as the compiler decides: the directive whose options cover the others
                primaries = [p for p in primaries if set(primaries) - {p} <= set(DIRECTIVE_OPTIONS[p])]
            if len(primaries) != 1:
                raise _Unsupported
            kind = primaries[0]
            if kind not in _SUPPORTED_DIRECTIVES or set(node) - set(MODIFIERS) - {kind} - set(
                DIRECTIVE_OPTIONS[kind]
            ):
                raise _Unsupported
            return self._directive(w, kind, node, where)
        raise _Unsupported

    def _expr(self, w: Writer, p: ParsedExpr, where: str) -> str:
        out = w.tmp()
        depth = w.depth
        # Each fallback is nested in the test of the one before: once an operand is present, the rest of
        # the chain costs nothing (long chains stay flat: Python limits indentation to 100 levels).
        nest = len(p.operands) <= 16
        for i, op in enumerate(p.operands):
            if i:
                w.depth = w.depth if nest else depth
                w.emit(f'if {out} is _M or {out} is None or {out} == "":')
                w.depth += 1
            w.emit(f"{out} = {self._operand(w, op, where)}")
        if len(p.operands) > 1:
            # `a ?? b` is the first present operand, else missing (as the closures): never the last one's
            # null or empty text, which the formats would then be asked to convert.
            w.emit(f'if {out} is None or {out} == "":')
            with w.block():
                w.emit(f"{out} = _M")
        w.depth = depth
        self._formats(w, out, list(p.formats), where, lenient=False)
        return out

    def _operand(self, w: Writer, op: Any, where: str) -> str:
        if op.path is None:
            if isinstance(op.literal, dict | list):
                return f"_jc({w.const(op.literal)})"
            return repr(op.literal)
        return self._path(w, op.path, where)

    def _path(self, w: Writer, path: Path, where: str) -> str:
        root, steps = path.root, path.steps
        if root == "let":
            name = steps[0][1]
            if name not in self.let_names:
                raise _Unsupported
            base = self._let(w, name)
            steps = steps[1:]
        elif root == "ctx":
            if not steps or steps[0][1] not in CTX_NAMES:
                raise _Unsupported
            base = w.tmp()
            w.emit(f"{base} = env.ctx_value({steps[0][1]!r})")
            steps = steps[1:]
        elif root in _SIMPLE_ROOTS:
            base = _SIMPLE_ROOTS[root]
        elif root in ("item", "index", "opts"):
            base = f"env.{root}"
        else:
            raise _Unsupported
        if not steps:
            return base
        if not all(kind in (KEY, INDEX) for kind, _ in steps):
            return f"_rs({base}, {w.const(steps)})"
        keys = [str(arg) for _, arg in steps]
        if any(k.lstrip("-").isdigit() for k in keys) or len(keys) > 3:
            return f"_rk({base}, {w.const(tuple(keys))})"
        out = w.tmp()
        first, rest = keys[0], keys[1:]
        if base == "ev":  # the event is always an object (the connector checks it first)
            w.emit(f"{out} = ev.get({first!r}, _M)")
        else:
            w.emit(f"{out} = {base}.get({first!r}, _M) if type({base}) is dict else _M")
        for k in rest:
            w.emit(f"{out} = {out}.get({k!r}, _M) if type({out}) is dict else _M")
        return out

    def _let(self, w: Writer, name: str) -> str:
        """A let's value: from this event's memo, else computed by its generated function. Once read at
        a function's top level (so on every path to what follows), later reads use that local."""
        self.used_lets.add(name)
        known = w.let_locals.get(name)
        if known is not None:
            return known[0]
        out = w.tmp("L")
        fn = self.let_fn.get(name, f"LET_{_ident(name)}")
        top = w.depth == 1
        w.emit(f"{out} = memo.get({name!r}, _A)")
        w.emit(f"if {out} is _A or {out} is _C:")
        with w.block():
            w.emit(f"{out} = env.let({name!r})" if self.lets_in_env else f"{out} = {fn}(env)")
        if top:
            w.let_locals[name] = (out, len(w.lines))
        return out

    def _formats(self, w: Writer, var: str, specs: list[Any], where: str, lenient: bool) -> None:
        for spec in specs:
            try:
                name, arg = formats.split_spec(spec)
            except ValueError:
                raise _Unsupported from None
            if name == "default":
                w.emit(f"if {var} is _M or {var} is None:")
                with w.block():
                    w.emit(f"{var} = _jc({w.const(arg)})")
                continue
            if name not in formats.FORMATS:
                raise _Unsupported
            fn = w.const(formats.FORMATS[name].fn, "F")
            a = w.const(arg, "A")
            inline = _TEXT_INLINE.get(name) if arg is None else None
            if inline is not None:
                # Text, the usual input, converted in place; anything else goes to the format function.
                test, result = inline
                w.emit(f"if type({var}) is str{test.format(v=var)}:")
                with w.block():
                    if result != "{v}":
                        w.emit(f"{var} = {result.format(v=var)}")
                w.emit(f"elif {var} is not _M and {var} is not None:")
            else:
                w.emit(f"if {var} is not _M and {var} is not None:")
            with w.block():
                failed = f"{var} = _M" if lenient else f"raise _fe({where!r}, {name!r}, e) from e"
                w.guarded(f"{var} = {fn}({var}, {a})", "_FE as e", failed)

    def _template(self, w: Writer, text: str, where: str, strict: bool = False) -> str:
        parts = template_parts(text)
        if len(parts) == 1 and not isinstance(parts[0], str):
            out = self._expr(w, parts[0], where)
            if strict:
                names = [op.path.text for op in parts[0].operands if op.path is not None]
                w.emit(f'if {out} is _M or {out} is None or {out} == "":')
                with w.block():
                    w.emit(f"raise _mtv({names!r}, {where!r})")
            return out
        if all(isinstance(p, str) for p in parts):
            return repr("".join(parts))  # type: ignore[arg-type]
        pieces = []
        for p in parts:
            if isinstance(p, str):
                pieces.append(repr(p))
                continue
            v = self._expr(w, p, where)
            w.emit(f"if {v} is _M or {v} is None:")
            with w.block():
                if strict:
                    names = [op.path.text for op in p.operands if op.path is not None]
                    w.emit(f"raise _mtv({names!r}, {where!r})")
                else:
                    w.emit(f'{v} = ""')
            w.emit(f"elif type({v}) is not str:")
            with w.block():
                w.emit(f"{v} = _to_s({v})")
            pieces.append(v)
        out = w.tmp()
        w.emit(f"{out} = {' + '.join(pieces)}")
        return out

    def _first(self, w: Writer, nodes: list[Any], where: str, same_where: bool = False) -> str:
        out = w.tmp()
        w.emit(f"{out} = _M")
        for i, n in enumerate(nodes):
            if i:
                w.emit(f'if {out} is _M or {out} is None or {out} == "":')
                w.depth += 1
            v, _ = self.value(w, n, where if same_where else f"{where}[{i}]")
            w.emit(f"{out} = {v}")
        w.depth -= len(nodes) - 1
        w.emit(f'if {out} is None or {out} == "":')
        with w.block():
            w.emit(f"{out} = _M")
        return out

    def _directive(self, w: Writer, kind: str, node: dict[str, Any], where: str) -> tuple[str, bool]:
        cond = None
        if "when" in node:
            cond = self.condition(w, node["when"], f"{where}.when")
        out = w.tmp()
        w.emit(f"{out} = _M")
        if cond is not None:
            w.emit(f"if {cond}:")
            w.depth += 1
        fresh = False
        if kind == "from":
            src = node["from"]
            items = src if isinstance(src, list) else [src]
            if len(items) == 1:
                v = self._expr(w, parse(items[0]), f"{where}.from")
            else:
                v = self._first(w, items, f"{where}.from", same_where=True)
            w.emit(f"{out} = {v}")
        elif kind == "value":
            lit = node["value"]
            w.emit(f"{out} = _jc({w.const(lit)})" if isinstance(lit, dict | list) else f"{out} = {lit!r}")
            fresh = isinstance(lit, dict | list)
        elif kind == "template":
            w.emit(f"{out} = {self._template(w, node['template'], where)}")
        elif kind == "first":
            w.emit(f"{out} = {self._first(w, node['first'], f'{where}.first')}")
        elif kind == "object":
            w.emit(f"{out} = {self._object(w, node['object'], f'{where}.object')}")
            fresh = True
        elif kind == "array":
            w.emit(f"{out} = {self._array(w, node['array'], f'{where}.array')}")
            fresh = True
        elif kind == "merge":
            acc = w.tmp("m")
            w.emit(f"{acc} = {{}}")
            for i, item in enumerate(node["merge"]):
                v, _ = self.value(w, item, f"{where}.merge[{i}]")
                w.emit(f"if type({v}) is dict:")
                with w.block():
                    w.emit(f"{acc}.update({v})")
            w.emit(f"{out} = {{k: _jc(x) for k, x in {acc}.items()}}")
            fresh = True
        elif kind == "if":
            c = self.condition(w, node["if"], f"{where}.if")
            w.emit(f"if {c}:")
            with w.block():
                if "then" in node:
                    v, f1 = self.value(w, node["then"], f"{where}.then")
                    w.emit(f"{out} = {v}")
            w.emit("else:")
            with w.block():
                if "else" in node:
                    v, f2 = self.value(w, node["else"], f"{where}.else")
                    w.emit(f"{out} = {v}")
        elif kind == "each":
            w.emit(f"{out} = {self._each(w, node, where)}")
            fresh = True
        elif kind == "lookup":
            self._lookup(w, node, out, where)
        elif kind == "entries":
            w.emit(f"{out} = {self._entries(w, node, where)}")
            fresh = True
        elif kind == "switch":
            self._switch(w, node, out, where)
        elif kind == "rest":
            self._rest(w, node, out, where)
            fresh = True
        elif kind == "get":
            self._get(w, node, out, where)
        elif kind == "without":
            self._without(w, node, out, where)
        elif kind == "render":
            self._render(w, node, out, where)
        elif kind in ("sum", "product"):
            self._fold(w, kind, node, out, where)
        elif kind == "count":
            self._count(w, node, out, where)
        elif kind == "call":
            self._call(w, node, out, where)
        if "format" in node:
            fmts = node["format"] if isinstance(node["format"], list) else [node["format"]]
            self._formats(w, out, fmts, where, lenient=bool(node.get("lenient")))
            fresh = False
        if "omit" in node or "pick" in node:
            omit = node.get("omit")
            omit = [omit] if isinstance(omit, str) else list(omit or [])
            drop = w.const(frozenset(omit))
            # Values the directive made are fresh already; the source's are copied in the same pass (one
            # walk over the object instead of a filter and then a deep copy).
            x = "x" if fresh else "(_jc(x) if type(x) is dict or type(x) is list else x)"
            w.emit(f"if type({out}) is dict:")
            with w.block():
                if "pick" in node:
                    pick = node["pick"]
                    pick = [pick] if isinstance(pick, str) else list(pick)
                    keys = w.const(tuple(k for k in pick if k not in omit))
                    val = f"{out}[k]" if fresh else _copied(f"{out}[k]")
                    w.emit(f"{out} = {{k: {val} for k in {keys} if k in {out}}}")
                else:
                    w.emit(f"{out} = {{k: {x} for k, x in {out}.items() if k not in {drop}}}")
            if not fresh:
                w.emit(f"elif type({out}) is list:")
                with w.block():
                    w.emit(f"{out} = _jc({out})")
            fresh = True
        if "rename" in node:  # new keys, the same values (so as fresh as they were)
            renames = w.const(dict(node["rename"]))
            w.emit(f"if type({out}) is dict:")
            with w.block():
                w.emit(f"{out} = {{{renames}.get(k, k): x for k, x in {out}.items()}}")
        # A switch's `default` is its own option (the value for unlisted cases), not the modifier.
        default = "default" in node and kind != "switch"
        if default or node.get("required") or node.get("keep_null"):
            w.emit(f"if {out} is _M or {out} is None:")
            with w.block():
                if default:
                    d = node["default"]
                    w.emit(f"{out} = _jc({w.const(d)})" if isinstance(d, dict | list) else f"{out} = {d!r}")
                    fresh = fresh and isinstance(d, dict | list)
                elif node.get("required"):
                    if isinstance(node.get("error"), str):
                        msg = self._template(w, node["error"], f"{where}.error")
                        w.emit(f"raise _IE(str({msg}))")
                    else:
                        what = _describe(node)
                        w.emit(f"raise _IE({f'{what} is required ({where}); add it to the event'!r})")
                elif node.get("keep_null"):
                    w.emit(f"{out} = None")
        if cond is not None:
            w.depth -= 1
        return out, fresh

    def _lookup(self, w: Writer, node: dict[str, Any], out: str, where: str) -> None:
        """A table lookup as ``lookup.py`` does it: settings rows first, then the spec's table; the first
        match (copied) or, with ``many``, every distinct match; else ``default`` or the ``otherwise`` mode."""
        mode = node.get("match", "loose")
        table = node.get("table") or {}
        otherwise = node.get("otherwise", "missing")
        if mode not in ("exact", "ci", "loose") or not isinstance(table, dict) or otherwise not in _OTHERWISE:
            raise _Unsupported
        raw, _ = self.value(w, node["lookup"], f"{where}.lookup")
        simple = "rows" not in node and not node.get("many")
        if simple and not any(isinstance(v, dict | list) for v in table.values()):
            self._static_lookup(w, table, mode, raw, out)
        else:
            self._table_lookup(w, node, table, mode, raw, out, where)
        w.emit(f"if {out} is _U:")
        with w.block():
            self._unmatched(w, node, otherwise, raw, out, where)

    def _static_lookup(self, w: Writer, table: dict[Any, Any], mode: str, raw: str, out: str) -> None:
        """Only a table of scalars, one result: a dictionary read (the first of equal keys wins)."""
        index = {
            normalise_key(k, mode): (v[0] if isinstance(v, list) else v)
            for k, v in reversed(table.items())
            if normalise_key(k, mode) is not None and not (isinstance(v, list) and not v)
        }
        w.emit(f"{out} = {w.const(index)}.get({_nk_expr(raw, mode)}, _U)")

    def _table_lookup(
        self,
        w: Writer,
        node: dict[str, Any],
        table: dict[Any, Any],
        mode: str,
        raw: str,
        out: str,
        where: str,
    ) -> None:
        """Matches from the rows (an object read directly, a list indexed once per list) and the table;
        the rows are read only for a usable key. Leaves ``_U`` in ``out`` when nothing matched."""
        static: dict[str | None, list[Any]] = {}
        for k, v in table.items():
            static.setdefault(normalise_key(k, mode), []).extend(v if isinstance(v, list) else [v])
        key, found = w.tmp("k"), w.tmp("f")
        w.emit(f"{key} = {_nk_expr(raw, mode)}")
        w.emit(f"{found} = []")
        w.emit(f"if {key} is not None:")
        with w.block():
            if "rows" in node:
                rows, _ = self.value(w, node["rows"], f"{where}.rows")
                index = w.const(RowIndex(node.get("key_field", "from"), node.get("value_field", "to"), mode))
                w.emit(f"if type({rows}) is dict:")
                with w.block():
                    w.emit(f"{found}.extend(_om({rows}, {key}, {mode!r}))")
                w.emit("else:")
                with w.block():
                    w.emit(f"{found}.extend({index}({rows}).get({key}, ()))")
            w.emit(f"{found}.extend({w.const(static)}.get({key}, ()))")
        w.emit(f"if not {found}:")
        with w.block():
            w.emit(f"{out} = _U")
        w.emit("else:")
        with w.block():
            w.emit(f"{out} = _distinct({found})" if node.get("many") else f"{out} = _jc({found}[0])")

    def _unmatched(
        self, w: Writer, node: dict[str, Any], otherwise: str, raw: str, out: str, where: str
    ) -> None:
        """No match: the lookup's ``default`` (a copy), else the key itself (``pass``), an error or a drop
        with the ``error`` message, or missing."""
        if "default" in node:
            d = node["default"]
            w.emit(f"{out} = _jc({w.const(d)})" if isinstance(d, dict | list) else f"{out} = {d!r}")
        elif otherwise == "pass":
            passed = f"[{raw}]" if node.get("many") else raw
            w.emit(f"{out} = _M if {raw} is _M or {raw} is None else {passed}")
        elif otherwise in ("drop", "error"):
            if isinstance(node.get("error"), str):
                text = self._template(w, node["error"], f"{where}.error")
            else:
                text = w.tmp("msg")
                w.emit(f"{text} = repr({raw}) + {f' is not mapped ({where})'!r}")
            w.emit(f"raise {'_ED' if otherwise == 'drop' else '_IE'}(str({text}))")
        else:
            w.emit(f"{out} = _M")

    def _entries(self, w: Writer, node: dict[str, Any], where: str) -> str:
        src, _ = self.value(w, node["entries"], f"{where}.entries")
        acc = w.tmp("e")
        w.emit(f"{acc} = {{}}")
        seq = w.tmp("q")
        w.emit(
            f"{seq} = [{{'key': k, 'value': x}} for k, x in {src}.items()] if type({src}) is dict else {src}"
        )
        w.emit(f"if type({seq}) is list:")
        with w.block():
            with w.item_loop(seq):
                self._skip_unless(w, node, where)
                k, _ = self.value(w, node["key"], f"{where}.key")
                w.emit(f'if {k} is _M or {k} is None or {k} == "" or type({k}) is dict or type({k}) is list:')
                with w.block():
                    w.emit("continue")
                v, fresh = self.value(w, node["value"], f"{where}.value")
                w.emit(f"if {v} is not _M:")
                with w.block():
                    placed = v if fresh else f"(_jc({v}) if type({v}) is dict or type({v}) is list else {v})"
                    w.emit(f"{acc}[{k} if type({k}) is str else _to_s({k})] = {placed}")
        return acc

    def _skip_unless(self, w: Writer, node: dict[str, Any], where: str) -> None:
        """Inside an item loop: ``continue`` when the node's ``where`` does not hold for the item."""
        if "where" in node:
            c = self.condition(w, node["where"], f"{where}.where")
            w.emit(f"if not {c}:")
            with w.block():
                w.emit("continue")

    def _rest(self, w: Writer, node: dict[str, Any], out: str, where: str) -> None:
        """The object at a path minus the keys the rest of the body reads from it (the compiler's rule)."""
        if self.rest_reads is None or not isinstance(node["rest"], str):
            raise _Unsupported
        path = Path(node["rest"])
        if not path.static:
            raise _Unsupported
        source = (path.root, *path.keys)
        n = len(source)
        except_ = node.get("except")
        excluded = {r[n] for r in self.rest_reads if len(r) > n and r[:n] == source}
        excluded |= {except_} if isinstance(except_, str) else set(except_ or ())
        v = self._path(w, path, where)
        drop = w.const(frozenset(excluded))
        w.emit(f"if type({v}) is dict:")
        with w.block():
            w.emit(
                f"{out} = {{k: (_jc(x) if type(x) is dict or type(x) is list else x) "
                f"for k, x in {v}.items() if k not in {drop}}}"
            )

    def _in(self, w: Writer, node: dict[str, Any], where: str) -> str:
        """The object ``get`` and ``without`` read below: ``in``, else the whole event."""
        if "in" not in node:
            return "ev"
        v, _ = self.value(w, node["in"], f"{where}.in")
        return v

    def _get(self, w: Writer, node: dict[str, Any], out: str, where: str) -> None:
        """A path known at run time, read below ``in``; the path text is parsed once (``_rst`` caches)
        and a path that cannot be parsed reads as missing. ``in`` is read only for a usable path."""
        text, _ = self.value(w, node["get"], f"{where}.get")
        steps = w.tmp("st")
        w.emit(f"if isinstance({text}, str) and {text}.strip():")
        with w.block():
            w.guarded(f"{steps} = _rst({text}.strip())", "(_PE, _ESE)", f"{steps} = None")
            w.emit(f"if {steps} is not None:")
            with w.block():
                base = self._in(w, node, where)
                w.emit(f"{out} = _rs({base}, {steps})")

    def _without(self, w: Writer, node: dict[str, Any], out: str, where: str) -> None:
        """An object minus keys named at run time. Only the objects along a removed path are copied (the
        rest is still the source's, so the result is not fresh); the names are read only for an object."""
        base = self._in(w, node, where)
        w.emit(f"{out} = {base}")
        w.emit(f"if type({out}) is dict:")
        with w.block():
            names, _ = self.value(w, node["without"], f"{where}.without")
            keys = w.tmp("kp")
            w.emit(f"for {keys} in _kp({names}):")
            with w.block():
                w.emit(f"{out} = _dp({out}, {keys})")

    def _render(self, w: Writer, node: dict[str, Any], out: str, where: str) -> None:
        """A settings template rendered by the sandbox (``_sbt``, compiled once per text); with ``in`` the
        template reads that object, held in ``item`` while it renders."""
        escape = node.get("escape")
        if escape not in (None, "html"):
            raise _Unsupported
        scoped = "in" in node
        text, _ = self.value(w, node["render"], f"{where}.render")
        fn = w.tmp("rt")
        w.emit(f"if isinstance({text}, str):")
        with w.block():
            w.emit(f"{fn} = _sbt({text}, {scoped!r}, {escape!r})")
            w.emit(f"if {fn} is None:")
            with w.block():
                msg = f"{where}: the template from the settings cannot be read; fix it"
                w.emit(f"raise _IE({msg!r})")
            if not scoped:
                w.emit(f"{out} = {fn}(env)")
                return
            scope, _ = self.value(w, node["in"], f"{where}.in")
            saved = w.tmp("sv")
            w.emit(f"{saved} = (env.item, env.index)")
            w.emit(f"env.item = {scope} if type({scope}) is dict else {{}}")
            w.emit("try:")
            with w.block():
                w.emit(f"{out} = {fn}(env)")
            w.emit("finally:")
            with w.block():
                w.emit(f"env.item, env.index = {saved}")

    def _fold(self, w: Writer, kind: str, node: dict[str, Any], out: str, where: str) -> None:
        """``sum`` / ``product``: the numbers of a list (``of``: what per element) added or multiplied;
        missing and null are left out, numeric text counts, anything else is an error naming the key. A
        product of no factor at all is missing; a whole float becomes an int (as the closures)."""
        src, _ = self.value(w, node[kind], f"{where}.{kind}")
        acc, found, x = w.tmp("acc"), w.tmp("fd"), w.tmp("x")
        op = "+=" if kind == "sum" else "*="
        w.emit(f"if type({src}) is list:")
        with w.block():
            w.emit(f"{acc} = {0 if kind == 'sum' else 1}")
            if kind == "product":
                w.emit(f"{found} = False")
            with w.item_loop(src) as el:
                if "of" in node:
                    v, _ = self.value(w, node["of"], f"{where}.of")
                    w.emit(f"{x} = {v}")
                else:
                    w.emit(f"{x} = {el}")
                w.emit(f"if {x} is _M or {x} is None:")
                with w.block():
                    w.emit("continue")
                failed = f'raise _IE({where + ": "!r} + str(e) + "; fix the event value") from e'
                w.guarded(f"{acc} {op} _num({x})", "_FE as e", failed)
                if kind == "product":
                    w.emit(f"{found} = True")
            if kind == "product":
                w.emit(f"if {found}:")
                w.depth += 1
            w.emit(f"{out} = int({acc}) if isinstance({acc}, float) and {acc}.is_integer() else {acc}")
            if kind == "product":
                w.depth -= 1

    def _count(self, w: Writer, node: dict[str, Any], out: str, where: str) -> None:
        """``count``: the elements of a list (``where``: those for which it holds); 0 for a non-list."""
        src, _ = self.value(w, node["count"], f"{where}.count")
        w.emit(f"{out} = 0")
        w.emit(f"if type({src}) is list:")
        with w.block():
            if "where" not in node:
                w.emit(f"{out} = len({src})")
                return
            with w.item_loop(src):
                c = self.condition(w, node["where"], f"{where}.where")
                w.emit(f"if {c}:")
                with w.block():
                    w.emit(f"{out} += 1")

    def _call(self, w: Writer, node: dict[str, Any], out: str, where: str) -> None:
        """``call``: a mapper.py function, ``fn(value, event, settings, ctx)``; None from it is missing."""
        fn = self.compiler.functions.get(node["call"]) if isinstance(node["call"], str) else None
        if fn is None:
            raise _Unsupported
        arg = "None"
        if "with" in node:
            v, _ = self.value(w, node["with"], f"{where}.with")
            arg = f"(None if {v} is _M else {v})"
        name = w.const(fn, "FN")
        w.emit(f"{out} = {name}({arg}, env.event, env.settings, env.ctx)")
        w.emit(f"if {out} is None:")
        with w.block():
            w.emit(f"{out} = _M")

    def _switch(self, w: Writer, node: dict[str, Any], out: str, where: str) -> None:
        mode = node.get("match", "exact")
        subject, _ = self.value(w, node["switch"], f"{where}.switch")
        key = w.tmp("k")
        w.emit(f"{key} = {_nk_expr(subject, mode)}")
        # The compiler's table keeps the last of equal keys: generate the cases in that order.
        table: dict[Any, tuple[Any, str]] = {}
        for case, result in node["cases"].items():
            table[normalise_key(case, mode)] = (result, f"{where}.cases.{case}")
        first = True
        for nk, (result, cwhere) in table.items():
            w.emit(f"{'if' if first else 'elif'} {key} == {w.const(nk)}:")
            first = False
            with w.block():
                v, _ = self.value(w, result, cwhere)
                w.emit(f"{out} = {v}")
        w.emit("else:" if not first else "if True:")
        with w.block():
            if "default" in node:
                v, _ = self.value(w, node["default"], f"{where}.default")
                w.emit(f"{out} = {v}")
            else:
                w.emit(f"{out} = _M")

    def _each(self, w: Writer, node: dict[str, Any], where: str) -> str:
        limit = node.get("limit")
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool)):
            raise _Unsupported
        src, _ = self.value(w, node["each"], f"{where}.each")
        acc = w.tmp("a")
        w.emit(f"{acc} = []")
        seq = src
        if node.get("wrap"):
            seq = w.tmp("q")
            w.emit(
                f"{seq} = {src} if type({src}) is list else ([] if {src} is _M or {src} is None else [{src}])"
            )
        w.emit(f"if type({seq}) is list:")
        with w.block():
            with w.item_loop(seq) as el:
                self._skip_unless(w, node, where)
                if "map" in node:
                    v, fresh = self.value(w, node["map"], f"{where}.map")
                else:
                    v, fresh = el, False
                w.emit(f"if {v} is not _M and {v} is not None:")
                with w.block():
                    w.emit(f"{acc}.append({v})" if fresh else f"{acc}.append(_jc({v}))")
                    if limit is not None:
                        w.emit(f"if len({acc}) >= {limit}:")
                        with w.block():
                            w.emit("break")
        return acc

    def _array(self, w: Writer, items: list[Any], where: str) -> str:
        acc = w.tmp("a")
        w.emit(f"{acc} = []")
        for i, item in enumerate(items):
            v, fresh = self.value(w, item, f"{where}[{i}]")
            w.emit(f"if {v} is not _M and {v} is not None:")
            with w.block():
                w.emit(f"{acc}.append({v})" if fresh else f"{acc}.append(_jc({v}))")
        return acc

    def _object(self, w: Writer, fields: dict[str, Any], where: str) -> str:
        for key in fields:
            if not isinstance(key, str) or not key:
                raise _Unsupported
        out = w.tmp("o")
        w.emit(f"{out} = {{}}")
        for key, node in fields.items():
            fwhere = f"{where}.{key}"
            opts = node if isinstance(node, dict) else {}
            # Split before generating the value: a key the compiler refuses must not leave half a field.
            parts = ["..."] if key.startswith("...") else _key_parts(key)
            lit = _scalar_literal(node)
            if lit is not _UNSET and len(parts) == 1 and isinstance(parts[0], str) and parts[0] != "...":
                # A constant field (`type: {value: event}`, `version: 2`): one store, no tests.
                if (lit is not None or opts.get("keep_null")) and not (opts.get("omit_empty") and lit == ""):
                    w.emit(f"{out}[{parts[0]!r}] = {lit!r}")
                continue
            v, fresh = self.value(w, node, fwhere)
            test = f"{v} is not _M" + ("" if opts.get("keep_null") else f" and {v} is not None")
            if opts.get("omit_empty"):
                test += f' and {v} != "" and {v} != {{}} and {v} != []'
            w.emit(f"if {test}:")
            with w.block():
                placed = v
                if not fresh:
                    placed = w.tmp("p")
                    w.emit(f"{placed} = _jc({v}) if type({v}) is dict or type({v}) is list else {v}")
                # Templated key parts are rendered after the value, and only for a value that is placed
                # (as the closures do): a key's missing value is an error only when the field is written.
                keys = [
                    repr(p) if isinstance(p, str) else self._key_text(w, p, f"{fwhere}[key]") for p in parts
                ]
                self._place_field(w, out, keys, placed, parts)
        return out

    def _key_text(self, w: Writer, template: _KeyTemplate, where: str) -> str:
        """A templated key part as text: strict (a missing value names what to send), never null."""
        v = self._template(w, template.text, where, strict=True)
        k = w.tmp("k")
        w.emit(f"{k} = {v} if type({v}) is str else _to_s({v})")
        return k

    def _place_field(self, w: Writer, out: str, keys: list[str], placed: str, parts: list[Any]) -> None:
        """``out[k1][k2]... = placed`` (making the objects along the way), or a spread for ``...``.

        A key that is only ``...`` spreads, even when a template computes it: the closures decide on the
        key's text, so the generated code does too."""
        if parts == ["..."]:
            w.emit(f"if type({placed}) is dict:")
            with w.block():
                w.emit(f"{out}.update({placed})")
            return
        if len(parts) == 1 and not isinstance(parts[0], str):
            w.emit(f'if {keys[0]} == "...":')
            with w.block():
                w.emit(f"if type({placed}) is dict:")
                with w.block():
                    w.emit(f"{out}.update({placed})")
            w.emit("else:")
            with w.block():
                w.emit(f"{out}[{keys[0]}] = {placed}")
            return
        cur = out
        for k in keys[:-1]:
            nxt = w.tmp("d")
            w.emit(f"{nxt} = {cur}.get({k})")
            w.emit(f"if type({nxt}) is not dict:")
            with w.block():
                w.emit(f"{nxt} = {cur}[{k}] = {{}}")
            cur = nxt
        w.emit(f"{cur}[{keys[-1]}] = {placed}")

    # -- conditions --------------------------------------------------------------------------------------
    def condition(self, w: Writer, node: Any, where: str) -> str:
        """Emit code computing a condition; returns a boolean variable name."""
        mark = w.mark()
        try:
            return self._condition(w, node, where)
        except (_Unsupported, ExprSyntaxError):
            w.rollback(mark)
            fn = self.compiler.condition(node, where)
            name = w.const(fn, "P")
            out = w.tmp("c")
            w.emit(f"{out} = {name}(env)")
            return out

    def _condition(self, w: Writer, node: Any, where: str) -> str:
        out = w.tmp("c")
        if isinstance(node, bool):
            w.emit(f"{out} = {node!r}")
            return out
        if isinstance(node, str):
            v, _ = self.value(w, node, where)
            w.emit(f"{out} = _truthy({v})")
            return out
        if not isinstance(node, dict):
            raise _Unsupported
        keys = set(node)
        if keys == {"not"}:
            c = self.condition(w, node["not"], f"{where}.not")
            w.emit(f"{out} = not {c}")
            return out
        if keys in ({"all"}, {"any"}):
            (kind,) = keys
            items = node[kind]
            w.emit(f"{out} = {kind == 'all'!r}")
            opened = 0
            for i, item in enumerate(items):
                if i:
                    w.emit(f"if {out}:" if kind == "all" else f"if not {out}:")
                    w.depth += 1
                    opened += 1
                c = self.condition(w, item, f"{where}.{kind}[{i}]")
                w.emit(f"{out} = {c}")
            w.depth -= opened
            return out
        if keys in ({"present"}, {"absent"}):
            (kind,) = keys
            v, _ = self.value(w, node[kind], f"{where}.{kind}")
            test = f'{v} is not _M and {v} is not None and {v} != ""'
            w.emit(f"{out} = {test}" if kind == "present" else f"{out} = not ({test})")
            return out
        if keys == {"has"}:
            v, _ = self.value(w, node["has"], f"{where}.has")
            w.emit(f"{out} = {v} is not _M")
            return out
        if "of" in keys:
            tests = [k for k in TESTS if k in node]
            if len(tests) != 1 or keys - {"of", tests[0], "ci", "loose"}:
                raise _Unsupported
            test, operand = tests[0], node[tests[0]]
            mode = "loose" if node.get("loose") else "ci" if node.get("ci") else "exact"
            v, _ = self.value(w, node["of"], f"{where}.of")
            # Text compared exactly needs no normalising: the common case costs one comparison.
            norm = _nk_expr(v, mode)
            if test in ("eq", "ne") and operand is None:
                # Equal to null: missing or null (not the text "None" that normalising would give).
                w.emit(f"{out} = ({v} is _M or {v} is None) != {test == 'ne'!r}")
            elif test in ("eq", "ne"):
                want = w.const(normalise_key(operand, mode))
                w.emit(f"{out} = ({v} is not _M and {norm} == {want}) != {test == 'ne'!r}")
            elif test in ("in", "not_in"):
                wanted = w.const(frozenset(normalise_key(x, mode) for x in operand))
                w.emit(f"{out} = ({norm} in {wanted}) != {test == 'not_in'!r}")
            elif test == "same_as":
                mine = w.tmp("n")
                w.emit(f"{mine} = {_nk_expr(v, mode)}")
                w.emit(f"{out} = False")
                w.emit(f"if {mine} is not None:")
                with w.block():
                    other, _ = self.value(w, operand, f"{where}.same_as")
                    w.emit(f"{out} = {mine} == _nk({other}, {mode!r})")
            elif test == "matches":
                flags = re.IGNORECASE if mode != "exact" else 0
                rx = w.const(re.compile(str(operand), flags))
                w.emit(f"{out} = isinstance({v}, (str, int, float)) and {rx}.search(_to_s({v})) is not None")
            elif test == "type":
                if str(operand) not in _TYPE_TESTS:
                    raise _Unsupported
                w.emit(f"{out} = {v} is not _M and " + _TYPE_TESTS[str(operand)].format(v=v))
            elif test == "one_of":
                mine = w.tmp("n")
                w.emit(f"{mine} = {_nk_expr(v, mode)}")
                w.emit(f"{out} = False")
                w.emit(f"if {mine} is not None:")
                with w.block():
                    other, _ = self.value(w, operand, f"{where}.one_of")
                    w.emit(f"if type({other}) is dict:")
                    with w.block():
                        if mode == "exact":
                            w.emit(f"{out} = {mine} in {other}")
                        else:
                            w.emit(f"{out} = any(_nk(k, {mode!r}) == {mine} for k in {other})")
                    w.emit(f"elif type({other}) is list:")
                    with w.block():
                        w.emit(f"{out} = {mine} in {{_nk(x, {mode!r}) for x in {other}}}")
            elif test == "contains":
                self._contains(w, out, v, operand, mode)
            elif test == "starts_with":
                want = w.const(normalise_key(operand, mode) or "")
                s = w.tmp("n")
                w.emit(f"{s} = {_nk_expr(v, mode)}")
                w.emit(f"{out} = {s} is not None and {s}.startswith({want})")
            elif test == "matched_by":
                self._matched_by(w, out, v, operand, mode, where)
            elif test in ("gt", "ge", "lt", "le"):
                try:
                    limit = formats.to_number(operand)
                except formats.FormatError as e:
                    raise _Unsupported from e
                op = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}[test]
                w.emit(f"{out} = False")
                w.emit(f"if {v} is not _M and {v} is not None:")
                with w.block():
                    w.guarded(f"{out} = _num({v}) {op} {limit!r}", "_FE", f"{out} = False")
            return out
        if "age_of" in keys:
            self._age(w, out, node, where)
            return out
        raise _Unsupported

    def _contains(self, w: Writer, out: str, v: str, operand: Any, mode: str) -> None:
        """``contains``: a list holds the operand (compared as normalised text), or text contains it."""
        want = w.const(normalise_key(operand, mode))
        s = w.tmp("n")
        w.emit(f"if isinstance({v}, list):")
        with w.block():
            w.emit(f"{out} = {want} in {{_nk(x, {mode!r}) for x in {v}}}")
        w.emit("else:")
        with w.block():
            w.emit(f"{s} = {_nk_expr(v, mode)}")
            w.emit(f"{out} = {s} is not None and {want} is not None and {want} in {s}")

    def _matched_by(self, w: Writer, out: str, v: str, operand: Any, mode: str, where: str) -> None:
        """``matched_by``: a user's pattern (an expression) searched in the subject; ``_up`` compiles it once
        and refuses patterns that can backtrack exponentially (a configuration error, as the closures)."""
        pattern, _ = self.value(w, operand, f"{where}.matched_by")
        flags = int(re.IGNORECASE) if mode != "exact" else 0
        w.emit(f"{out} = False")
        subject_ok = f"isinstance({v}, (str, int, float)) and not isinstance({v}, bool)"
        w.emit(f"if {subject_ok} and isinstance({pattern}, str):")
        with w.block():
            w.emit(f"{out} = _up({pattern}, {flags}).search(_to_s({v})) is not None")

    def _age(self, w: Writer, out: str, node: dict[str, Any], where: str) -> None:
        """``{age_of: T, gt: 72h}``: seconds from T to now (or to ``at`` when that is a time). A missing or
        unreadable time is false; ``at`` is read only once T is a time, as the closures read it."""
        tests = [k for k in ("gt", "ge", "lt", "le") if k in node]
        if len(tests) != 1 or set(node) - {"age_of", "at", *tests}:
            raise _Unsupported
        try:
            limit = duration_seconds(node[tests[0]], where)
        except CompileError:
            raise _Unsupported from None
        op = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}[tests[0]]
        v, _ = self.value(w, node["age_of"], f"{where}.age_of")
        t, ref = w.tmp("tm"), w.tmp("rf")
        w.emit(f"{out} = False")
        w.emit(f'if {v} is not _M and {v} is not None and {v} != "":')
        with w.block():
            w.emit("try:")
            with w.block():
                w.emit(f"{t} = _pt({v})")
                w.emit(f"{ref} = _U")
                if "at" in node:
                    at, _ = self.value(w, node["at"], f"{where}.at")
                    w.emit(f'if {at} is not _M and {at} is not None and {at} != "":')
                    with w.block():
                        w.guarded(f"{ref} = _pt({at})", "(_FE, OverflowError, ValueError)", "pass")
                w.emit(f"if {ref} is _U:")
                with w.block():
                    w.emit(f"{ref} = env.ctx.now")
                w.emit(f"{out} = ({ref} - {t}).total_seconds() {op} {limit!r}")
            w.emit("except (_FE, OverflowError, ValueError):")
            with w.block():
                w.emit(f"{out} = False")

    # -- lets ----------------------------------------------------------------------------------------------
    def _let_with_rest(
        self, name: str, node: Any, where: str, config_key: Any | None, fn_name: str | None
    ) -> tuple[str, list[str]]:
        self.rest_reads = self.compiler.scoped(node, where).reads
        try:
            return self.let_function(name, node, where, config_key, fn_name)
        finally:
            self.rest_reads = None

    def let_function(
        self, name: str, node: Any, where: str, config_key: Any | None, fn_name: str | None = None
    ) -> tuple[str, list[str]]:
        """Source of ``LET_<name>(env)``: compute, remember in the memo (and per config when pure)."""
        if _has_rest(node) and self.rest_reads is None:
            return self._let_with_rest(name, node, where, config_key, fn_name)
        if _has_rest(node):
            fn = self.compiler.scoped(node, where).fn
            w = Writer(self.consts, self.counter)
            v = w.const(fn, "C")
            if self.mark_computing:
                w.emit(f"memo[{name!r}] = _C")
            w.emit(f"v = {v}(env)")
            w.emit(f"memo[{name!r}] = v")
            w.emit("return v")
            return fn_name or f"LET_{_ident(name)}", w.lines
        w = Writer(self.consts, self.counter)
        if self.mark_computing:
            w.emit(f"memo[{name!r}] = _C")
        if config_key is not None:
            key = w.const(config_key)
            w.emit(f"v = env.cfg.get({key}, _U)")
            w.emit("if v is _U:")
            with w.block():
                r, _ = self.value(w, node, where)
                w.emit(f"v = env.cfg[{key}] = {r}")
            w.emit("if type(v) is dict or type(v) is list:")
            with w.block():
                w.emit("v = _jc(v)")
        else:
            r, _ = self.value(w, node, where)
            w.emit(f"v = {r}")
        w.emit(f"memo[{name!r}] = v")
        w.emit("return v")
        return fn_name or f"LET_{_ident(name)}", w.lines


class _KeyTemplate:
    """A part of an object key written as a template (``"$groups.{{ traits.groupType }}"``)."""

    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text


def _key_parts(key: str) -> list[Any]:
    """A field name split as ``objects.py`` splits it: at dots outside ``{{ }}`` and not escaped (``a\\.b``
    keeps the dot); parts holding ``{{`` are templates, the others text. An empty part is not generated
    (the compiler reports it)."""
    parts: list[Any] = []
    for raw in _KEY_SPLIT.split(key):
        text = raw.replace("\\.", ".")
        if not text:
            raise _Unsupported
        parts.append(_KeyTemplate(text) if "{{" in text else text)
    return parts


def _scalar_literal(node: Any) -> Any:
    """The constant a field node stands for (a number, boolean or null, or ``{value: <scalar>}``), else
    _UNSET. Text nodes are expressions, not constants."""
    if isinstance(node, dict) and set(node) == {"value"}:
        node = node["value"]
        if node is None:
            return _UNSET
    elif isinstance(node, str):
        return _UNSET
    if isinstance(node, float):
        return node if math.isfinite(node) else _UNSET
    return node if node is None or isinstance(node, str | bool | int) else _UNSET


def _copied(v: str) -> str:
    """An expression copying the value of ``v`` (an expression read twice: keep it a name or a lookup)."""
    return f"(_jc({v}) if type({v}) is dict or type({v}) is list else {v})"


def _nk_expr(v: str, mode: str) -> str:
    """``normalise_key(v, mode)`` as an expression, inline for text (the usual key): exact text is itself,
    ``ci`` text trimmed and case-folded; ``loose`` and other values call the function."""
    if not v.isidentifier():
        return f"_nk({v}, {mode!r})"
    if mode == "exact":
        return f"({v} if type({v}) is str else _nk({v}, 'exact'))"
    if mode == "ci":
        return f"({v}.strip().casefold() if type({v}) is str else _nk({v}, 'ci'))"
    return f"_nk({v}, {mode!r})"


def _ident(name: str) -> str:
    return re.sub(r"\W", "_", name)


def _describe(node: dict[str, Any]) -> str:
    src = node.get("from")
    if isinstance(src, str):
        return src
    if isinstance(src, list):
        return " or ".join(str(s) for s in src)
    return "this value"


def _has_rest(node: Any) -> bool:
    if isinstance(node, dict):
        return "rest" in node or any(_has_rest(v) for v in node.values())
    if isinstance(node, list):
        return any(_has_rest(v) for v in node)
    return False


PRELUDE = ["    ev = env.event", "    st = env.settings", "    vr = env.vars", "    memo = env.memo"]
_PRELUDE_NAMES = (("ev", PRELUDE[0]), ("st", PRELUDE[1]), ("vr", PRELUDE[2]), ("memo", PRELUDE[3]))


def prelude(body: list[str]) -> list[str]:
    """The PRELUDE lines whose names the body uses: each is an attribute read on every call, and most
    generated functions (a let, one request) need one or two of the four."""
    text = "\n".join(body)
    return [line for name, line in _PRELUDE_NAMES if re.search(rf"\b{name}\b", text)]


def build_function(name: str, body: list[str], consts: dict[str, Any], functions: dict[str, Any]) -> Callable:
    """Compile generated lines into a function ``name(env, ...)`` with the constants in its globals."""
    src = f"def {name}(env, out=None):\n" + "\n".join(prelude(body) + body) + "\n"
    namespace: dict[str, Any] = {**consts, **functions}
    exec(compile(src, f"<sluice generated {name}>", "exec"), namespace)  # noqa: S102 - our own generated code
    fn = namespace[name]
    fn.__sluice_source__ = src
    return fn


def template_function(compiler: Compiler, text: str, where: str, strict: bool) -> Callable[..., Any]:
    """An endpoint template (URL, header, param) as a generated function; the closure where unsupported."""
    gen = Generator(compiler, set(compiler.lets), lets_in_env=True)
    w = Writer(gen.consts, gen.counter)
    try:
        result = gen._template(w, text, where, strict=strict)
    except (_Unsupported, ExprSyntaxError):
        return compiler.template(text, where, strict=strict).fn
    w.emit(f"return {result}")
    src = "def template(env, out=None):\n" + "\n".join(prelude(w.lines) + w.lines) + "\n"
    namespace: dict[str, Any] = dict(gen.consts)
    exec(compile(src, f"<sluice generated template {where}>", "exec"), namespace)  # noqa: S102 - from the spec
    fn = namespace["template"]
    fn.__sluice_source__ = src
    return fn
