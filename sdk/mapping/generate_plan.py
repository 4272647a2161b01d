"""Write a plan's event-type mappings as generated Python (``codegen.py``): checks, cases and requests.

One function per event type does what ``Plan.run`` does with closures: run the checks, then build the
requests (all that apply, or the first case that applies), calling ``refine`` functions, in the same order
and with the same errors. ``SLUICE_CODEGEN=0`` turns it off (the closures then run; useful to tell the two
apart when debugging).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from sdk.errors import ConfigurationError, EventDropped, InstrumentationError, UnsupportedEventError
from sdk.mapping.codegen import Generator, Writer, _has_rest, _ident, build_function, prelude
from sdk.mapping.expressions import Compiler
from sdk.spec.model import Check, DestinationSpec, RequestSpec

_ERRORS = {
    "error": InstrumentationError,
    "config_error": ConfigurationError,
    "unsupported": UnsupportedEventError,
    "drop": EventDropped,
}
_CONFIG_ROOTS = frozenset({"settings", "vars"})


def enabled() -> bool:
    return os.environ.get("SLUICE_CODEGEN", "1") not in ("0", "false", "no")


def generate(
    spec: DestinationSpec, compiler: Compiler, functions: dict[str, Any], planned: type
) -> dict[str, Callable[..., Any]]:
    """{event type: fn(env, out)} for every mapping of ``spec``, compiled as one module.

    Spec-wide lets become one function each, shared by every event type; a mapping's own lets get
    functions named for that event type. Only lets a mapping reaches are generated.
    """
    shadowed = any(set(m.let) & set(spec.let) for m in spec.mappings.values())
    try:
        return _generate(spec, compiler, functions, planned, shadowed)
    except _SharedLetReadsLocal:
        return _generate(spec, compiler, functions, planned, True)


class _SharedLetReadsLocal(Exception):
    """A spec-wide let reads a let only some event types define: it cannot be one shared function."""


def _generate(
    spec: DestinationSpec,
    compiler: Compiler,
    functions: dict[str, Any],
    planned: type,
    shadowed: bool,
    mark_computing: bool = False,
) -> dict[str, Callable[..., Any]]:
    where = spec.name
    gen = Generator(compiler, set(compiler.lets))
    gen.mark_computing = mark_computing  # lets never read themselves: Plan refuses let cycles
    gen.consts["_P"] = planned
    sources: list[str] = []
    generated: set[str] = set()
    names: dict[str, str] = {}
    let_fns: dict[str, dict[str, str]] = {}
    for etype, m in spec.mappings.items():
        mwhere = f"{where}.mappings.{etype}"
        lets = {n: (node, f"{where}.let.{n}", "") for n, node in spec.let.items()}
        lets.update({n: (node, f"{mwhere}.let.{n}", etype) for n, node in m.let.items()})
        # A spec-wide let is shared unless some event type redefines a let name (its readers differ then).
        gen.let_fn = {
            n: f"LET_{_ident(owner or ('' if not shadowed else etype))}__{_ident(n)}"
            for n, (_, _, owner) in lets.items()
        }
        gen.used_lets = set()
        w = Writer(gen.consts, gen.counter)
        checks = [(c, f"{where}.checks[{i}]") for i, c in enumerate(spec.checks)]
        checks += [(c, f"{mwhere}.checks[{i}]") for i, c in enumerate(m.checks)]
        for check, cwhere in checks:
            _check(gen, w, check, cwhere)
        kind = "requests" if m.requests is not None else "cases"
        for i, r in enumerate(m.request_specs):
            # Each request is a function of its own: a frame holds the locals of the request it builds,
            # not those of every case of the event type (large frames cost on every call).
            rw = Writer(gen.consts, gen.counter)
            _request(gen, rw, r, f"{mwhere}.{kind}[{i}]", functions, first_only=False)
            rname = f"req_{_ident(etype)}_{i}"
            sources.append(_function(rname, "env, out", rw.lines + ["    return True"]))
            if r.when is not None:
                c = gen.condition(w, r.when, f"{mwhere}.{kind}[{i}].when")
                w.emit(f"if {c}:")
                with w.block():
                    w.emit(f"{rname}(env, out)")
                    if kind == "cases":
                        w.emit("return out")
            else:
                w.emit(f"{rname}(env, out)")
                if kind == "cases":
                    w.emit("return out")
        fname = f"map_{_ident(etype)}"
        sources.append(_function(fname, "env, out", w.lines + ["    return out"]))
        names[etype] = fname
        # Every let of the event type, not only those the mapping reaches: endpoint templates (a URL, a
        # header) read lets through ``env.let``, which then runs these functions instead of closures.
        todo = list(gen.used_lets | set(lets))
        let_fns[etype] = {n: gen.let_fn[n] for n in lets}
        while todo:
            name = todo.pop()
            lf = gen.let_fn.get(name)
            if lf is None or lf in generated or name not in lets:
                continue
            generated.add(lf)
            node, lwhere, owner = lets[name]
            deps = compiler.let_deps.get(name, frozenset({"*"}))
            key = ("let", owner, name) if deps <= _CONFIG_ROOTS else None
            gen.used_lets = set()
            _, lines = gen.let_function(name, node, lwhere, key, lf)
            if not owner and not shadowed and any(lets[n][2] for n in gen.used_lets if n in lets):
                raise _SharedLetReadsLocal
            sources.append(_function(lf, "env", lines))
            todo.extend(gen.used_lets)
    text = "\n".join(sources)
    namespace: dict[str, Any] = dict(gen.consts)
    exec(compile(text, f"<sluice generated {spec.name}>", "exec"), namespace)  # noqa: S102 - generated from the spec
    out: dict[str, Callable[..., Any]] = {}
    for etype, fname in names.items():
        out[etype] = namespace[fname]
        out[etype].__sluice_source__ = text
        out[etype].__sluice_lets__ = {n: namespace[f] for n, f in let_fns[etype].items() if f in namespace}
    return out


def _function(name: str, args: str, body: list[str]) -> str:
    return f"def {name}({args}):\n" + "\n".join(prelude(body) + body) + "\n"


def _check(gen: Generator, w: Writer, check: Check, where: str) -> None:
    kind = next(k for k in _ERRORS if getattr(check, k) is not None)
    c = gen.condition(w, check.when, f"{where}.when")
    w.emit(f"if {c}:")
    with w.block():
        msg = gen._template(w, getattr(check, kind), f"{where}.{kind}")
        err = w.const(_ERRORS[kind], "E")
        w.emit(f"raise {err}(str({msg}))")


def _request(
    gen: Generator, w: Writer, r: RequestSpec, where: str, functions: dict[str, Any], first_only: bool
) -> None:
    """The request's outputs (its `when` is tested by the caller)."""
    if r.each is not None:
        seq, _ = gen.value(w, r.each, f"{where}.each")
        w.emit(f"if type({seq}) is not list:")
        with w.block():
            w.emit(f"{seq} = [] if {seq} is _M or {seq} is None else [{seq}]")
        with w.item_loop(seq):
            _one(gen, w, r, where, functions)
    else:
        _one(gen, w, r, where, functions)


def _one(gen: Generator, w: Writer, r: RequestSpec, where: str, functions: dict[str, Any]) -> None:
    body = "None"
    if r.body is not None:
        if _has_rest(r.body):
            # `rest` leaves out what the rest of the body reads: the compiler's view of those reads.
            gen.rest_reads = gen.compiler.scoped(r.body, f"{where}.body").reads
        try:
            v, fresh = gen.value(w, r.body, f"{where}.body")
        finally:
            gen.rest_reads = None
        body = w.tmp("b")
        if fresh:
            w.emit(f"{body} = {v}")
        else:
            w.emit(f"{body} = _jc({v}) if type({v}) is dict or type({v}) is list else {v}")
        w.emit(f"if {body} is _M:")
        with w.block():
            w.emit(f"{body} = None")
    parts = {}
    for name in ("headers", "params"):
        node = getattr(r, name)
        if node is None:
            parts[name] = "None"
            continue
        v, _ = gen.value(w, node, f"{where}.{name}")
        var = w.tmp("h")
        w.emit(f"{var} = {v} if type({v}) is dict else None")
        parts[name] = var
    ep = repr(r.endpoint)
    if r.refine is None:
        w.emit(f"out.append(_P({ep}, {body}, {parts['headers']}, {parts['params']}))")
        return
    refine = w.const(functions[r.refine], "R")
    res = w.tmp("r")
    w.emit(f"{res} = {refine}({body}, ev, st, env.ctx)")
    w.emit(f"if {res} is not None:")
    with w.block():
        w.emit(f"for _b in ({res} if isinstance({res}, list) else [{res}]):")
        with w.block():
            w.emit(f"out.append(_P({ep}, _b, {parts['headers']}, {parts['params']}))")


__all__ = ["generate", "enabled", "_ident", "build_function"]
