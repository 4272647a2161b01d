"""Compile value expressions, conditions and templates into plain Python closures, once per spec.

An expression in a spec is one of:

* a string: an expression (``traits.email ?? context.traits.email | lower``), or a template when it
  contains ``{{ }}`` (``"Viewed {{ name }} Page"``);
* a number, boolean or null: that literal;
* a list: a list of the values of its expressions (missing ones left out);
* an object with a directive key (``from``, ``value``, ``template``, ``first``, ``object``, ``merge``,
  ``array``, ``each``, ``if``, ``switch``, ``lookup``, ``rest``, ``sum``, ``product``, ``count``,
  ``call``, ``entries``, ``get``, ``without``, ``render``) and optional modifiers (``format``, ``default``,
  ``required``, ``error``, ``when``, ``omit``, ``pick``, ``rename``, ``keep_null``, ``lenient``);
* any other object: an object whose fields are expressions (keys may be dotted, ``user.email``, or
  templated, ``"{{ settings.groupType }}"``).

``docs/spec-language.md`` documents each with an example that the test suite executes.

Compiled expressions never modify the event and never hand out a container that another output (or the
event) also holds: containers read from the event, literals and ``let`` values are deep-copied where they
are placed into an output.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

from sdk.errors import ConfigurationError, EventDropped, InstrumentationError
from sdk.mapping import formats
from sdk.mapping.env import _ABSENT, _COMPUTING, CTX_NAMES, Env
from sdk.mapping.exprstring import (
    ExprSyntaxError,
    Operand,
    ParsedExpr,
    handlebars_parts,
    parse,
    template_parts,
)
from sdk.mapping.jsoncopy import json_copy
from sdk.mapping.paths import KEY, MISSING, Path, PathError, read_keys, read_steps, set_path
from sdk.mapping.paths import _parse as _parse_steps

Fn = Callable[[Env], Any]

PRIMARY = (
    "from", "value", "template", "first", "object", "merge", "array", "each", "if", "switch", "lookup",
    "rest", "sum", "product", "count", "call", "entries", "get", "without", "render",
)  # fmt: skip
MODIFIERS = (
    "format", "default", "required", "error", "when", "omit", "pick", "rename", "keep_null", "lenient",
    "omit_empty",
)  # fmt: skip
DIRECTIVE_OPTIONS = {
    "from": (),
    "value": (),
    "template": (),
    "first": (),
    "object": (),
    "merge": (),
    "array": (),
    "each": ("map", "where", "limit", "wrap"),
    "if": ("then", "else"),
    "switch": ("cases", "match"),
    "lookup": ("table", "rows", "key_field", "value_field", "match", "many", "otherwise"),
    "rest": ("except",),
    "sum": ("of",),
    "product": ("of",),
    "count": ("where",),
    "call": ("with",),
    "entries": ("key", "value", "where"),
    "get": ("in",),
    "without": ("in",),
    "render": ("in", "escape"),
}
MATCH_MODES = ("exact", "ci", "loose")


class CompileError(ValueError):
    """A spec expression that cannot be compiled; ``where`` names the key."""

    def __init__(self, where: str, message: str):
        super().__init__(f"{where}: {message}")
        self.where = where


class Expr:
    """A compiled expression: ``fn(env)`` gives the value or MISSING.

    ``fresh``: the value is a container built for this call (no copy needed to place it).
    ``reads``: static paths it reads, as (root, key, key, ...) tuples (for ``rest``).
    """

    __slots__ = ("fn", "fresh", "reads")

    def __init__(self, fn: Fn, fresh: bool = False, reads: frozenset[tuple[str, ...]] = frozenset()):
        self.fn = fn
        self.fresh = fresh
        self.reads = reads


def present(v: Any) -> bool:
    return v is not MISSING and v is not None and v != ""


def normalise_key(v: Any, mode: str) -> str | None:
    """Text form of a value for table lookups: exact, ``ci`` (trimmed, case-folded) or ``loose`` (also
    spaces, underscores and hyphens alike)."""
    if type(v) is str:
        s = v
    elif v is MISSING or v is None or isinstance(v, dict | list):
        return None
    else:
        s = formats.to_string(v)
    if mode == "exact":
        return s
    s = s.strip().casefold()
    if mode == "loose":
        s = _LOOSE_SEPARATORS.sub(" ", s)
    return s


_LOOSE_SEPARATORS = re.compile(r"[\s_\-]+")


class Compiler:
    """Compiles one spec's expressions; knows its ``let`` names and mapper functions."""

    def __init__(self, lets: set[str], functions: dict[str, Callable[..., Any]] | None = None):
        self.lets = lets
        self.functions = functions or {}
        self._rest_scopes: list[list[_Rest]] = []
        # What each expression being compiled depends on (roots; "*" for anything): values that depend
        # only on settings and vars are computed once per config instead of once per event.
        self._deps: list[set[str]] = []
        self.let_deps: dict[str, frozenset[str]] = {}
        self._cache_keys = 0

    def _depends(self, *roots: str) -> None:
        for frame in self._deps:
            frame.update(roots)

    # -- entry points --------------------------------------------------------------------------------
    def value(self, node: Any, where: str) -> Expr:
        self._deps.append(set())
        try:
            expr = self._value(node, where)
        finally:
            deps = self._deps.pop()
        self._depends(*deps)
        self.last_deps = frozenset(deps)
        if deps <= _CONFIG_ROOTS and _worth_caching(node):
            return self._per_config(expr)
        return expr

    def _per_config(self, expr: Expr) -> Expr:
        self._cache_keys += 1
        key = (id(self), self._cache_keys)
        fn = expr.fn

        def per_config(env: Env) -> Any:
            cache = env.cfg
            v = cache.get(key, _UNSET)
            if v is _UNSET:
                v = fn(env)
                cache[key] = v
            return v

        return Expr(per_config, False, expr.reads)

    def _value(self, node: Any, where: str) -> Expr:
        if isinstance(node, str):
            if "{{" in node:
                return self.template(node, where)
            return self.expr_string(node, where)
        if node is None or isinstance(node, bool | int | float):
            return _literal(node)
        if isinstance(node, list):
            return self._array(node, where)
        if isinstance(node, dict):
            keys = set(node)
            primaries = [k for k in PRIMARY if k in keys]
            if not primaries:
                mods = [k for k in keys if k in MODIFIERS]
                if mods and len(mods) == len(keys):
                    raise CompileError(
                        where,
                        f"{sorted(mods)} modify a value, but no value is given: add "
                        "`from:` (a path), `value:` (a literal) or another directive",
                    )
                return self._object(node, where)
            if len(primaries) > 1:
                # A directive's own options may share a name with another directive (`entries` has
                # `value`): the directive whose options cover the other keys is the one meant.
                owners = [p for p in primaries if set(primaries) - {p} <= set(DIRECTIVE_OPTIONS[p])]
                if len(owners) != 1:
                    raise CompileError(where, f"one directive per value, got {primaries}; nest them instead")
                primaries = owners
            return self._directive(primaries[0], node, where)
        raise CompileError(where, f"cannot use a {type(node).__name__} as a value")

    def condition(self, node: Any, where: str) -> Fn:
        from sdk.mapping.conditions import compile_condition

        return compile_condition(self, node, where)

    def expr_string(self, text: str, where: str) -> Expr:
        try:
            parsed = parse(text)
        except ExprSyntaxError as e:
            raise CompileError(where, str(e)) from e
        return self.parsed(parsed, where)

    def template(self, text: str, where: str, strict: bool = False) -> Expr:
        """A template: text with ``{{ expression }}`` parts. A template that is one part gives that part's
        value as it is (a number stays a number). Missing parts render as empty text, unless ``strict``
        (URLs, headers), where they are an error naming what to set."""
        try:
            parts = template_parts(text)
        except ExprSyntaxError as e:
            raise CompileError(where, str(e)) from e
        compiled: list[str | Expr] = [p if isinstance(p, str) else self.parsed(p, where) for p in parts]
        reads = frozenset().union(*(c.reads for c in compiled if isinstance(c, Expr)))
        if len(compiled) == 1 and isinstance(compiled[0], Expr):
            only = compiled[0]
            if not strict:
                return Expr(only.fn, only.fresh, reads)
            fn0 = only.fn
            names = _names_of(parts[0])  # type: ignore[arg-type]

            def strict_single(env: Env) -> Any:
                v = fn0(env)
                if not present(v):
                    raise _missing_template_value(names, where)
                return v

            return Expr(strict_single, only.fresh, reads)
        if all(isinstance(c, str) for c in compiled):
            return _literal("".join(compiled))  # type: ignore[arg-type]
        to_s = formats.to_string
        seq = [(c, None) if isinstance(c, str) else (None, c.fn) for c in compiled]
        part_names = [None if isinstance(p, str) else _names_of(p) for p in parts]

        def render(env: Env) -> Any:
            out = []
            for (text_part, fn), names in zip(seq, part_names, strict=True):
                if fn is None:
                    out.append(text_part)
                    continue
                v = fn(env)
                if v is MISSING or v is None:
                    if strict:
                        raise _missing_template_value(names, where)
                    continue
                out.append(v if type(v) is str else to_s(v))
            return "".join(out)

        return Expr(render, False, reads)

    # -- expression strings ----------------------------------------------------------------------------
    def parsed(self, p: ParsedExpr, where: str) -> Expr:
        readers: list[Expr] = []
        for op in p.operands:
            if op.path is None:
                readers.append(_literal(op.literal))
            else:
                readers.append(self.path(op.path, where))
        if len(readers) == 1:
            base = readers[0]
        else:
            fns = [r.fn for r in readers]

            def first_present(env: Env) -> Any:
                for f in fns:
                    v = f(env)
                    if v is not MISSING and v is not None and v != "":
                        return v
                return MISSING

            base = Expr(first_present, False, frozenset().union(*(r.reads for r in readers)))
        if not p.formats:
            return base
        return self._with_formats(base, list(p.formats), where, lenient=False)

    def path(self, path: Path, where: str) -> Expr:
        root, steps = path.root, path.steps
        if root == "let" and steps and steps[0][1] in self.let_deps:
            self._depends(*self.let_deps[steps[0][1]])
        else:
            self._depends(root if root != "let" else "*")
        keys = path.keys if path.static else None
        reads: frozenset[tuple[str, ...]] = frozenset({(root, *keys)}) if keys is not None else frozenset()
        if root == "ctx":
            if not steps or steps[0][1] not in CTX_NAMES:
                raise CompileError(where, f"{path.text!r}: ctx has {', '.join(CTX_NAMES)}")
            name, rest = steps[0][1], steps[1:]

            def ctx_fn(env: Env) -> Any:
                v = env.ctx_value(name)
                return read_steps(v, rest) if rest else v

            return Expr(ctx_fn, False, reads)
        if root == "let":
            if not steps or steps[0][1] not in self.lets:
                known = ", ".join(sorted(self.lets)) or "none declared"
                raise CompileError(where, f"{path.text!r} names no `let` value (known: {known})")
            name, rest = steps[0][1], steps[1:]

            def let_value(env: Env) -> Any:
                v = env.memo.get(name, _ABSENT)  # the common case: computed already for this event
                return env.let(name) if v is _ABSENT or v is _COMPUTING else v

            if rest:
                return Expr(lambda env: read_steps(let_value(env), rest), False, reads)
            return Expr(let_value, False, reads)
        getter = _ROOT_GETTERS.get(root)
        if getter is None:
            raise CompileError(where, f"unknown root {root!r}")
        if not steps:
            return Expr(getter, False, reads)
        if keys is not None and len(keys) == 1 and not keys[0].lstrip("-").isdigit():
            k0 = keys[0]

            def one(env: Env) -> Any:
                o = getter(env)
                return o.get(k0, MISSING) if type(o) is dict else MISSING

            return Expr(one, False, reads)
        if keys is not None and len(keys) == 2 and not any(k.lstrip("-").isdigit() for k in keys):
            k0, k1 = keys

            def two(env: Env) -> Any:
                o = getter(env)
                if type(o) is not dict:
                    return MISSING
                o = o.get(k0)
                return o.get(k1, MISSING) if type(o) is dict else MISSING

            return Expr(two, False, reads)
        if keys is not None:
            return Expr(lambda env: read_keys(getter(env), keys), False, reads)
        return Expr(lambda env: read_steps(getter(env), steps), False, reads)

    # -- formats ----------------------------------------------------------------------------------------
    def _with_formats(self, base: Expr, specs: list[Any], where: str, lenient: bool) -> Expr:
        chain: list[tuple[str, Callable[[Any, Any], Any] | None, Any]] = []
        for spec in specs:
            try:
                name, arg = formats.split_spec(spec)
            except ValueError as e:
                raise CompileError(where, str(e)) from None
            if name == "default":
                chain.append((name, None, arg))
                continue
            try:
                _, fn, _ = formats.resolve(name)
            except ValueError as e:
                raise CompileError(where, str(e)) from e
            chain.append((name, fn, arg))
        src = base.fn
        if len(chain) == 1 and chain[0][1] is not None:
            # One format (the common case): no loop.
            name1, fn1, arg1 = chain[0]
            error_type = formats.FormatError

            def formatted1(env: Env) -> Any:
                v = src(env)
                if v is MISSING or v is None:
                    return v
                try:
                    return fn1(v, arg1)
                except error_type as e:
                    if lenient:
                        return MISSING
                    raise InstrumentationError(f"{where} ({name1}): {e}; fix the event value") from e

            return Expr(formatted1, False, base.reads)

        def formatted(env: Env) -> Any:
            v = src(env)
            for name, fn, arg in chain:
                if fn is None:  # default(x)
                    if v is MISSING or v is None:
                        v = json_copy(arg)
                    continue
                if v is MISSING or v is None:
                    continue
                try:
                    v = fn(v, arg)
                except formats.FormatError as e:
                    if lenient:
                        return MISSING
                    raise InstrumentationError(f"{where} ({name}): {e}; fix the event value") from e
            return v

        # A format may return its input unchanged (e.g. `lower` on a list of numbers): never fresh.
        return Expr(formatted, False, base.reads)

    # -- directives --------------------------------------------------------------------------------------
    def _directive(self, kind: str, node: dict[str, Any], where: str) -> Expr:
        allowed = set(MODIFIERS) | {kind} | set(DIRECTIVE_OPTIONS[kind])
        unknown = sorted(set(node) - allowed)
        if unknown:
            hint = ""
            if kind == "value":
                hint = "; for an object with a field named 'value', put the fields under `object:`"
            raise CompileError(
                where, f"unknown key(s) {unknown} for a `{kind}` value (allowed: {sorted(allowed)}){hint}"
            )
        builder = getattr(self, f"_d_{kind}")
        expr: Expr = builder(node, where)
        if kind == "switch" and "default" in node:
            # A switch's `default` is its own option (the value for unlisted cases, an expression), not the
            # generic modifier: a default case computing null stays null, not the option's own text.
            node = {k: v for k, v in node.items() if k != "default"}
        return self._modifiers(expr, node, where)

    def _modifiers(self, expr: Expr, node: dict[str, Any], where: str) -> Expr:
        lenient = bool(node.get("lenient"))
        if "format" in node:
            fmts = node["format"] if isinstance(node["format"], list) else [node["format"]]
            expr = self._with_formats(expr, fmts, where, lenient)
        fn = expr.fn
        fresh = expr.fresh
        if "omit" in node or "pick" in node or "rename" in node:
            omit = set(_str_list(node.get("omit"), where, "omit"))
            pick = _str_list(node.get("pick"), where, "pick") if "pick" in node else None
            renames = _rename_table(node.get("rename"), where)
            inner = fn

            def shaped(env: Env) -> Any:
                v = inner(env)
                if type(v) is not dict:
                    return v
                if pick is not None:
                    v = {k: v[k] for k in pick if k in v and k not in omit}
                elif omit:
                    v = {k: x for k, x in v.items() if k not in omit}
                if renames:
                    get = renames.get
                    v = {get(k, k): x for k, x in v.items()}
                return v

            fn, fresh = shaped, False  # values are still shared with the source
        keep_null = bool(node.get("keep_null"))
        has_default = "default" in node
        default = node.get("default")
        required = bool(node.get("required"))
        error = node.get("error")
        error_t = self.template(error, f"{where}.error") if isinstance(error, str) else None
        if "when" in node:
            cond = self.condition(node["when"], f"{where}.when")
        else:
            cond = None
        if not (keep_null or has_default or required or cond):
            return Expr(fn, fresh, expr.reads)
        what = _describe(node)
        inner2 = fn

        def guarded(env: Env) -> Any:
            if cond is not None and not cond(env):
                return MISSING
            v = inner2(env)
            if v is MISSING or v is None:
                if has_default:
                    return json_copy(default)
                if required:
                    msg = error_t.fn(env) if error_t else f"{what} is required ({where}); add it to the event"
                    raise InstrumentationError(str(msg))
                if keep_null:
                    return None
            return v

        return Expr(guarded, fresh and not has_default, expr.reads)

    def _d_from(self, node: dict[str, Any], where: str) -> Expr:
        src = node["from"]
        items = src if isinstance(src, list) else [src]
        if not items or not all(isinstance(s, str) and s.strip() for s in items):
            raise CompileError(where, "`from` takes a path or a list of paths")
        exprs = [self.expr_string(s, f"{where}.from") for s in items]
        return exprs[0] if len(exprs) == 1 else self._first(exprs)

    def _d_value(self, node: dict[str, Any], where: str) -> Expr:
        return _literal(node["value"])

    def _d_template(self, node: dict[str, Any], where: str) -> Expr:
        if not isinstance(node["template"], str):
            raise CompileError(where, "`template` takes text")
        return self.template(node["template"], where)

    def _d_first(self, node: dict[str, Any], where: str) -> Expr:
        items = node["first"]
        if not isinstance(items, list) or not items:
            raise CompileError(where, "`first` takes a list of values")
        return self._first([self.value(x, f"{where}.first[{i}]") for i, x in enumerate(items)])

    def _first(self, exprs: list[Expr]) -> Expr:
        fns = [e.fn for e in exprs]

        def first(env: Env) -> Any:
            for f in fns:
                v = f(env)
                if v is not MISSING and v is not None and v != "":
                    return v
            return MISSING

        return Expr(first, False, frozenset().union(*(e.reads for e in exprs)))

    def _d_object(self, node: dict[str, Any], where: str) -> Expr:
        if not isinstance(node["object"], dict):
            raise CompileError(where, "`object` takes a mapping of field names to values")
        return self._object(node["object"], f"{where}.object")

    def _object(self, fields: dict[str, Any], where: str) -> Expr:
        from sdk.mapping.objects import compile_object

        return compile_object(self, fields, where)

    def scoped(self, node: Any, where: str, reads: frozenset[tuple[str, ...]] | None = None) -> Expr:
        """A whole request body or ``let`` value: the scope in which ``rest`` sees what else was read.

        ``reads``: what the enclosing body reads, when ``node`` is only part of it (the code generator
        compiles such parts alone)."""
        self._rest_scopes.append([])
        try:
            expr = self.value(node, where)
        finally:
            rests = self._rest_scopes.pop()
        for rest in rests:
            rest.exclude_from(expr.reads if reads is None else reads)
        return expr

    def _d_merge(self, node: dict[str, Any], where: str) -> Expr:
        items = node["merge"]
        if not isinstance(items, list) or not items:
            raise CompileError(where, "`merge` takes a list of objects")
        exprs = [self.value(x, f"{where}.merge[{i}]") for i, x in enumerate(items)]
        fns = [e.fn for e in exprs]

        def merge(env: Env) -> Any:
            out: dict[str, Any] = {}
            for f in fns:
                v = f(env)
                if type(v) is dict:
                    out.update(v)
            return {k: json_copy(x) for k, x in out.items()}

        return Expr(merge, True, frozenset().union(*(e.reads for e in exprs)))

    def _array(self, items: list[Any], where: str) -> Expr:
        exprs = [self.value(x, f"{where}[{i}]") for i, x in enumerate(items)]
        parts = [(e.fn, e.fresh) for e in exprs]

        def array(env: Env) -> Any:
            out = []
            for f, fresh in parts:
                v = f(env)
                if v is MISSING or v is None:
                    continue
                out.append(v if fresh else json_copy(v))
            return out

        return Expr(array, True, frozenset().union(*(e.reads for e in exprs)))

    def _d_array(self, node: dict[str, Any], where: str) -> Expr:
        if not isinstance(node["array"], list):
            raise CompileError(where, "`array` takes a list of values")
        return self._array(node["array"], f"{where}.array")

    def _d_each(self, node: dict[str, Any], where: str) -> Expr:
        src = self.value(node["each"], f"{where}.each")
        mapper = self.value(node["map"], f"{where}.map") if "map" in node else None
        where_c = self.condition(node["where"], f"{where}.where") if "where" in node else None
        limit = node.get("limit")
        if limit is not None and (not isinstance(limit, int) or limit < 0):
            raise CompileError(where, "`limit` takes a whole number")
        wrap = bool(node.get("wrap"))
        src_fn = src.fn
        map_fn, map_fresh = (mapper.fn, mapper.fresh) if mapper else (None, False)

        def each(env: Env) -> Any:
            seq = src_fn(env)
            if type(seq) is not list:
                if not wrap or seq is MISSING or seq is None:
                    return []
                seq = [seq]
            saved = env.item, env.index
            out: list[Any] = []
            try:
                for i, el in enumerate(seq):
                    env.item, env.index = el, i
                    if where_c is not None and not where_c(env):
                        continue
                    v = map_fn(env) if map_fn is not None else el
                    if v is MISSING or v is None:
                        continue
                    out.append(v if map_fresh else json_copy(v))
                    if limit is not None and len(out) >= limit:
                        break
            finally:
                env.item, env.index = saved
            return out

        return Expr(each, True, src.reads)

    def _d_if(self, node: dict[str, Any], where: str) -> Expr:
        cond = self.condition(node["if"], f"{where}.if")
        then = self.value(node["then"], f"{where}.then") if "then" in node else _literal(MISSING)
        other = self.value(node["else"], f"{where}.else") if "else" in node else _literal(MISSING)
        t, o = then.fn, other.fn
        return Expr(
            lambda env: t(env) if cond(env) else o(env), then.fresh and other.fresh, then.reads | other.reads
        )

    def _d_switch(self, node: dict[str, Any], where: str) -> Expr:
        subject = self.value(node["switch"], f"{where}.switch")
        mode = node.get("match", "exact")
        if mode not in MATCH_MODES:
            raise CompileError(where, f"`match` is one of {', '.join(MATCH_MODES)}")
        cases = node.get("cases")
        if not isinstance(cases, dict) or not cases:
            raise CompileError(where, "`switch` needs `cases`: a mapping of values to results")
        table = {normalise_key(k, mode): self.value(v, f"{where}.cases.{k}").fn for k, v in cases.items()}
        dflt = self.value(node["default"], f"{where}.default").fn if "default" in node else None
        sfn = subject.fn

        def switch(env: Env) -> Any:
            fn = table.get(normalise_key(sfn(env), mode))
            if fn is None:
                return dflt(env) if dflt is not None else MISSING
            return fn(env)

        return Expr(switch, False, subject.reads)

    def _d_lookup(self, node: dict[str, Any], where: str) -> Expr:
        from sdk.mapping.lookup import compile_lookup

        # `default` is a lookup option here, not the generic modifier: it applies to unmatched keys.
        return compile_lookup(self, node, where)

    def _d_rest(self, node: dict[str, Any], where: str) -> Expr:
        src = node["rest"]
        if not isinstance(src, str):
            raise CompileError(where, "`rest` takes a path (e.g. traits)")
        path = Path(src)
        if not path.static:
            raise CompileError(where, "`rest` takes a plain path without selectors")
        rest = _Rest((path.root, *path.keys), set(_str_list(node.get("except"), where, "except")))
        if not self._rest_scopes:
            raise CompileError(where, "`rest` is only meaningful inside a request body or a `let` value")
        self._rest_scopes[-1].append(rest)
        reader = self.path(path, where).fn

        def rest_fn(env: Env) -> Any:
            v = reader(env)
            if type(v) is not dict:
                return MISSING
            drop = rest.excluded
            return {k: json_copy(x) for k, x in v.items() if k not in drop}

        return Expr(rest_fn, True, frozenset())

    def _d_sum(self, node: dict[str, Any], where: str) -> Expr:
        src = self.value(node["sum"], f"{where}.sum").fn
        of = self.value(node["of"], f"{where}.of").fn if "of" in node else None

        def total(env: Env) -> Any:
            seq = src(env)
            if type(seq) is not list:
                return MISSING
            acc: float = 0
            saved = env.item, env.index
            try:
                for i, el in enumerate(seq):
                    env.item, env.index = el, i
                    v = of(env) if of is not None else el
                    if v is MISSING or v is None:
                        continue
                    try:
                        acc += formats.to_number(v)
                    except formats.FormatError as e:
                        raise InstrumentationError(f"{where}: {e}; fix the event value") from e
            finally:
                env.item, env.index = saved
            return int(acc) if isinstance(acc, float) and acc.is_integer() else acc

        return Expr(total)

    def _d_product(self, node: dict[str, Any], where: str) -> Expr:
        """The numbers of a list multiplied (``{product: [properties.price, properties.quantity]}``, or
        ``{product: properties.products, of: item.weight}``): a revenue is a price times a quantity.
        Missing and null factors are left out, numeric text counts; with no factor at all the value is
        missing. Like ``sum``, it reads values without consuming them from a ``rest``."""
        src = self.value(node["product"], f"{where}.product").fn
        of = self.value(node["of"], f"{where}.of").fn if "of" in node else None

        def product(env: Env) -> Any:
            seq = src(env)
            if type(seq) is not list:
                return MISSING
            acc: float = 1
            found = False
            saved = env.item, env.index
            try:
                for i, el in enumerate(seq):
                    env.item, env.index = el, i
                    v = of(env) if of is not None else el
                    if v is MISSING or v is None:
                        continue
                    try:
                        acc *= formats.to_number(v)
                    except formats.FormatError as e:
                        raise InstrumentationError(f"{where}: {e}; fix the event value") from e
                    found = True
            finally:
                env.item, env.index = saved
            if not found:
                return MISSING
            return int(acc) if isinstance(acc, float) and acc.is_integer() else acc

        return Expr(product)

    def _d_count(self, node: dict[str, Any], where: str) -> Expr:
        src = self.value(node["count"], f"{where}.count").fn
        cond = self.condition(node["where"], f"{where}.where") if "where" in node else None

        def count(env: Env) -> Any:
            seq = src(env)
            if type(seq) is not list:
                return 0
            if cond is None:
                return len(seq)
            saved = env.item, env.index
            n = 0
            try:
                for i, el in enumerate(seq):
                    env.item, env.index = el, i
                    n += 1 if cond(env) else 0
            finally:
                env.item, env.index = saved
            return n

        return Expr(count)

    def _d_entries(self, node: dict[str, Any], where: str) -> Expr:
        """An object from a list (``{entries: settings.headers, key: item.from, value: item.to}``) or from
        another object's pairs (``item.key``, ``item.value``)."""
        src = self.value(node["entries"], f"{where}.entries").fn
        if "key" not in node or "value" not in node:
            raise CompileError(where, "`entries` needs `key` and `value` (expressions over `item`)")
        key = self.value(node["key"], f"{where}.key").fn
        val = place(self.value(node["value"], f"{where}.value"))
        cond = self.condition(node["where"], f"{where}.where") if "where" in node else None
        to_s = formats.to_string

        def entries(env: Env) -> Any:
            seq = src(env)
            out: dict[str, Any] = {}
            if type(seq) is dict:
                seq = [{"key": k, "value": v} for k, v in seq.items()]
            elif type(seq) is not list:
                return out
            saved = env.item, env.index
            try:
                for i, el in enumerate(seq):
                    env.item, env.index = el, i
                    if cond is not None and not cond(env):
                        continue
                    k = key(env)
                    if k is MISSING or k is None or k == "" or isinstance(k, dict | list):
                        continue
                    v = val(env)
                    if v is not MISSING:
                        out[to_s(k)] = v
            finally:
                env.item, env.index = saved
            return out

        return Expr(entries, True)

    def _d_get(self, node: dict[str, Any], where: str) -> Expr:
        """A path known only at run time (usually from a setting: ``{get: item.from, in: properties}``).

        The path is read below ``in`` (default: the whole event), never from settings or other roots, so a
        user's mapping table can reach event data only. Parsed paths are cached.
        """
        self._depends("event")
        path_fn = self.value(node["get"], f"{where}.get").fn
        base_fn = self.value(node["in"], f"{where}.in").fn if "in" in node else _root_event

        def get(env: Env) -> Any:
            text = path_fn(env)
            if not isinstance(text, str) or not text.strip():
                return MISSING
            try:
                steps = _runtime_steps(text.strip())
            except (PathError, ExprSyntaxError):
                return MISSING
            return read_steps(base_fn(env), steps)

        return Expr(get)

    def _d_without(self, node: dict[str, Any], where: str) -> Expr:
        """An object without keys named at run time: ``{without: settings.once[*].property, in: traits}``.

        ``without`` gives a name or a list of names (lists of lists are flattened once); a dotted name
        (``address.city``) removes a nested key. Only the objects along a removed path are copied; ``in``
        defaults to the whole event.
        """
        self._depends("event")
        names_fn = self.value(node["without"], f"{where}.without").fn
        base_fn = self.value(node["in"], f"{where}.in").fn if "in" in node else _root_event

        def without(env: Env) -> Any:
            obj = base_fn(env)
            if type(obj) is not dict:
                return obj
            for keys in _key_paths(names_fn(env)):
                obj = _drop_path(obj, keys)
            return obj  # nested values are still the source's: placing the result copies it

        return Expr(without)

    def _d_render(self, node: dict[str, Any], where: str) -> Expr:
        """A template whose text comes from the settings (a user's message template), rendered per event.

        Sandboxed: the template may read the event only (any other root reads as missing) and apply
        formats; it cannot call code. With ``in``, its paths read that object instead (every name, ``event``
        and ``settings`` included, is a key of it), so a spec decides exactly what a user's template sees.
        ``escape: html`` gives Handlebars semantics: ``{{ x }}`` is HTML-escaped, ``{{{ x }}}`` is not.
        Compiled once per distinct text.
        """
        self._depends("event")
        text_fn = self.value(node["render"], f"{where}.render").fn
        scope_fn = self.value(node["in"], f"{where}.in").fn if "in" in node else None
        escape = node.get("escape")
        if escape not in (None, "html"):
            raise CompileError(where, "`escape` is `html` (Handlebars-style escaping) or left out")

        def render(env: Env) -> Any:
            text = text_fn(env)
            if not isinstance(text, str):
                return MISSING
            compiled = _sandboxed_template(text, scope_fn is not None, escape)
            if compiled is None:
                raise InstrumentationError(f"{where}: the template from the settings cannot be read; fix it")
            if scope_fn is None:
                return compiled(env)
            scope = scope_fn(env)
            saved = env.item, env.index
            env.item = scope if type(scope) is dict else {}
            try:
                return compiled(env)
            finally:
                env.item, env.index = saved

        return Expr(render)

    def _d_call(self, node: dict[str, Any], where: str) -> Expr:
        self._depends("*")
        name = node["call"]
        fn = self.functions.get(name) if isinstance(name, str) else None
        if fn is None:
            known = ", ".join(sorted(self.functions)) or "none: the connector has no mapper.py"
            raise CompileError(where, f"`call: {name}` names no function of mapper.py (known: {known})")
        arg = self.value(node["with"], f"{where}.with") if "with" in node else _literal(MISSING)
        afn = arg.fn

        def call(env: Env) -> Any:
            v = afn(env)
            out = fn(None if v is MISSING else v, env.event, env.settings, env.ctx)
            return MISSING if out is None else out

        return Expr(call, False, arg.reads)


class _Rest:
    """``rest: traits``: the object minus the keys that other fields of the same body read from it."""

    def __init__(self, source: tuple[str, ...], explicit: set[str]):
        self.source = source
        self.excluded = set(explicit)

    def exclude_from(self, reads: frozenset[tuple[str, ...]]) -> None:
        n = len(self.source)
        for r in reads:
            if len(r) > n and r[:n] == self.source:
                self.excluded.add(r[n])


_CONFIG_ROOTS = frozenset({"settings", "vars"})
_UNSET: Any = object()


def _worth_caching(node: Any) -> bool:
    """Caching a bare path read or a literal costs as much as computing it."""
    if isinstance(node, str):
        return any(t in node for t in ("|", "??", "{{"))
    return isinstance(node, dict | list) and "value" not in node


@functools.lru_cache(maxsize=1024)
def _runtime_steps(text: str) -> tuple[tuple[int, Any], ...]:
    return tuple(_parse_steps(text))


def _key_paths(names: Any) -> list[tuple[str, ...]]:
    """Plain key paths from a name or a list of names (one level of nested lists flattened)."""
    flat: list[Any] = []
    for x in names if isinstance(names, list) else [names]:
        flat.extend(x if isinstance(x, list) else [x])
    out = []
    for x in flat:
        if not isinstance(x, str) or not x.strip():
            continue
        try:
            steps = _runtime_steps(x.strip())
        except (PathError, ExprSyntaxError):
            continue
        if steps and all(kind == KEY for kind, _ in steps):
            out.append(tuple(arg for _, arg in steps))
    return out


def _drop_path(obj: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """``obj`` without the value at ``keys``, copying only the objects along the path."""
    head = keys[0]
    if len(keys) == 1:
        if head not in obj:
            return obj
        out = dict(obj)
        del out[head]
        return out
    inner = obj.get(head)
    if type(inner) is not dict:
        return obj
    smaller = _drop_path(inner, keys[1:])
    if smaller is inner:
        return obj
    out = dict(obj)
    out[head] = smaller
    return out


_SANDBOX_CACHE: dict[tuple[str, bool, str | None], Fn | None] = {}
_HTML_ESCAPES = str.maketrans(
    {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#x27;", "`": "&#x60;", "=": "&#x3D;"}
)


def _in_scope(p: ParsedExpr) -> ParsedExpr:
    """The expression with every path read below the render scope (held in ``item``), roots included."""
    ops = []
    for op in p.operands:
        if op.path is None:
            ops.append(op)
            continue
        scoped = Path.__new__(Path)
        scoped.text, scoped.root = op.path.text, "item"
        scoped.steps = tuple(_parse_steps(op.path.text))
        scoped.static = all(kind == KEY for kind, _ in scoped.steps)
        ops.append(Operand(scoped))
    return ParsedExpr(tuple(ops), p.formats)


def _sandboxed_template(text: str, scoped: bool = False, escape: str | None = None) -> Fn | None:
    """Compile a settings-supplied template that may read only the event (or only the render scope)."""
    key = (text, scoped, escape)
    hit = _SANDBOX_CACHE.get(key, _UNSET)
    if hit is not _UNSET:
        return hit
    try:
        if escape:
            parts: list[Any] | None = handlebars_parts(text)
        else:
            parts = [p if isinstance(p, str) else (p, False) for p in template_parts(text)]
    except (ExprSyntaxError, PathError):
        parts = None
    fn: Fn | None = None
    if parts is not None:
        sandbox = Compiler(set())
        compiled: list[str | tuple[Fn, bool]] = []
        for p in parts:
            if isinstance(p, str):
                compiled.append(p)
                continue
            expr, escaped = p
            if scoped:
                expr = _in_scope(expr)
            root = "item" if scoped else "event"
            ops = [op for op in expr.operands if op.path is None or op.path.root == root]
            if len(ops) != len(expr.operands) or any(name not in formats.FORMATS and name != "default"
                                                     for name, _ in expr.formats):  # fmt: skip
                compiled.append("")
                continue
            compiled.append((sandbox.parsed(expr, "template").fn, escaped))
        to_s = formats.to_string

        def fn(env: Env) -> Any:
            out = []
            for c in compiled:
                if isinstance(c, str):
                    out.append(c)
                    continue
                read, escaped = c
                v = read(env)
                if v is not MISSING and v is not None:
                    s = v if type(v) is str else to_s(v)
                    out.append(s.translate(_HTML_ESCAPES) if escaped else s)
            return "".join(out)

    if len(_SANDBOX_CACHE) > 1024:
        _SANDBOX_CACHE.clear()
    _SANDBOX_CACHE[key] = fn
    return fn


def _root_event(env: Env) -> Any:
    return env.event


_ROOT_GETTERS: dict[str, Fn] = {
    "event": _root_event,
    "settings": lambda env: env.settings,
    "vars": lambda env: env.vars,
    "item": lambda env: env.item,
    "index": lambda env: env.index,
    "opts": lambda env: env.opts,
}


def _literal(value: Any) -> Expr:
    if isinstance(value, dict | list):
        return Expr(lambda env: json_copy(value), True)
    return Expr(lambda env: value)


def _rename_table(node: Any, where: str) -> dict[str, str] | None:
    """``rename: {firstName: first_name}``: keys of an object value renamed; keys not listed are kept."""
    if node is None:
        return None
    if not isinstance(node, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v for k, v in node.items()
    ):
        raise CompileError(where, "`rename` takes a mapping of key names to new key names")
    return dict(node)


def _str_list(v: Any, where: str, key: str) -> list[str]:
    if v is None:
        return []
    if isinstance(v, str):
        return [v]
    if isinstance(v, list) and all(isinstance(x, str) for x in v):
        return v
    raise CompileError(where, f"`{key}` takes a name or a list of names")


def _describe(node: dict[str, Any]) -> str:
    src = node.get("from")
    if isinstance(src, str):
        return src
    if isinstance(src, list):
        return " or ".join(str(s) for s in src)
    return "this value"


def _names_of(p: ParsedExpr) -> list[str]:
    return [op.path.text for op in p.operands if op.path is not None]


def _missing_template_value(names: list[str], where: str) -> Exception:
    text = " or ".join(names) or "a value"
    if names and all(n.startswith(("settings.", "vars.")) for n in names):
        return ConfigurationError(f"{text} is required for {where}; set it in the destination config")
    return InstrumentationError(f"{text} is required for {where}; add it to the event")


def place(expr: Expr) -> Fn:
    """A reader whose containers are safe to put into an output (copied unless freshly built)."""
    fn = expr.fn
    if expr.fresh:
        return fn

    def placed(env: Env) -> Any:
        v = fn(env)
        t = type(v)
        return json_copy(v) if t is dict or t is list else v

    return placed


__all__ = ["Compiler", "CompileError", "Expr", "EventDropped", "place", "present", "set_path"]
