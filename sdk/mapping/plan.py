"""A spec's mappings compiled into a plan: per event type, the checks to pass and the requests to build.

Running a plan gives ``Planned`` requests (endpoint name, body, event-level headers and params); the
connector then puts them on their endpoints (URL, auth). Compiling happens once per connector load;
running allocates only the outputs.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sdk.errors import ConfigurationError, EventDropped, InstrumentationError, UnsupportedEventError
from sdk.mapping.env import Env
from sdk.mapping.expressions import CompileError, Compiler, Expr, place
from sdk.mapping.jsoncopy import json_copy
from sdk.mapping.paths import MISSING
from sdk.spec.model import Check, DestinationSpec, EventMapping, RequestSpec

Refine = Callable[[Any, dict[str, Any], dict[str, Any], Any], Any]

_CHECK_ERRORS = {
    "error": InstrumentationError,
    "config_error": ConfigurationError,
    "unsupported": UnsupportedEventError,
    "drop": EventDropped,
}


@dataclass(slots=True)
class Planned:
    endpoint: str
    body: Any
    headers: dict[str, Any] | None = None
    params: dict[str, Any] | None = None


class _CompiledCheck:
    __slots__ = ("cond", "message", "error")

    def __init__(self, compiler: Compiler, check: Check, where: str):
        self.cond = compiler.condition(check.when, f"{where}.when")
        kind = next(k for k in _CHECK_ERRORS if getattr(check, k) is not None)
        self.error = _CHECK_ERRORS[kind]
        self.message = compiler.template(getattr(check, kind), f"{where}.{kind}").fn

    def run(self, env: Env) -> None:
        if self.cond(env):
            raise self.error(str(self.message(env)))


class _CompiledRequest:
    __slots__ = ("endpoint", "when", "each", "body", "headers", "params", "refine", "where")

    def __init__(self, compiler: Compiler, r: RequestSpec, refine: Refine | None, where: str):
        self.where = where
        self.endpoint = r.endpoint
        self.when = compiler.condition(r.when, f"{where}.when") if r.when is not None else None
        self.each = compiler.value(r.each, f"{where}.each").fn if r.each is not None else None
        self.body = place(compiler.scoped(r.body, f"{where}.body")) if r.body is not None else None
        self.headers = _object_of(compiler, r.headers, f"{where}.headers")
        self.params = _object_of(compiler, r.params, f"{where}.params")
        self.refine = refine

    def build(self, env: Env, out: list[Planned]) -> bool:
        """Append this request's outputs; True when its condition held."""
        if self.when is not None and not self.when(env):
            return False
        if self.each is None:
            self._one(env, out)
            return True
        seq = self.each(env)
        if type(seq) is not list:
            seq = [] if seq is MISSING or seq is None else [seq]
        saved = env.item, env.index
        try:
            for i, el in enumerate(seq):
                env.item, env.index = el, i
                self._one(env, out)
        finally:
            env.item, env.index = saved
        return True

    def _one(self, env: Env, out: list[Planned]) -> None:
        body = self.body(env) if self.body is not None else None
        if body is MISSING:
            body = None
        headers = self.headers(env) if self.headers is not None else None
        params = self.params(env) if self.params is not None else None
        if self.refine is None:
            out.append(Planned(self.endpoint, body, headers, params))
            return
        refined = self.refine(body, env.event, env.settings, env.ctx)
        if refined is None:
            return
        for b in refined if isinstance(refined, list) else [refined]:
            out.append(Planned(self.endpoint, b, headers, params))


def _object_of(compiler: Compiler, node: Any, where: str) -> Callable[[Env], Any] | None:
    if node is None:
        return None
    fn = compiler.value(node, where).fn

    def obj(env: Env) -> Any:
        v = fn(env)
        return v if type(v) is dict else None

    return obj


class _CompiledMapping:
    __slots__ = ("lets", "checks", "requests", "first_only")

    def __init__(
        self,
        compiler: Compiler,
        m: EventMapping,
        lets: dict[str, Callable[[Env], Any]],
        refines: dict[str, Refine],
        where: str,
    ):
        self.lets = lets
        self.checks = [_CompiledCheck(compiler, c, f"{where}.checks[{i}]") for i, c in enumerate(m.checks)]
        kind = "requests" if m.requests is not None else "cases"
        self.first_only = kind == "cases"
        self.requests = []
        for i, r in enumerate(m.request_specs):
            rwhere = f"{where}.{kind}[{i}]"
            refine = None
            if r.refine is not None:
                refine = refines.get(r.refine)
                if refine is None:
                    known = ", ".join(sorted(refines)) or "none: the connector has no mapper.py"
                    raise CompileError(rwhere, f"refine: {r.refine} names no function of mapper.py ({known})")
            self.requests.append(_CompiledRequest(compiler, r, refine, rwhere))


class Plan:
    """Everything a spec's mappings say, compiled."""

    def __init__(self, spec: DestinationSpec, functions: dict[str, Callable[..., Any]]):
        self.spec = spec
        where = spec.name
        global_names = set(spec.let)
        all_names = set(global_names)
        for m in spec.mappings.values():
            all_names |= set(m.let)
        self.let_names = all_names
        _refuse_let_cycles(spec)
        self.vars = self._compile_vars(spec, functions)
        compiler = Compiler(all_names, functions)
        global_lets = {n: _let(compiler, e, f"{where}.let.{n}", n) for n, e in spec.let.items()}
        self.checks = [_CompiledCheck(compiler, c, f"{where}.checks[{i}]") for i, c in enumerate(spec.checks)]
        self.mappings: dict[str, _CompiledMapping] = {}
        for etype, m in spec.mappings.items():
            mwhere = f"{where}.mappings.{etype}"
            lets = dict(global_lets)
            for n, e in m.let.items():
                lets[n] = _let(compiler, e, f"{mwhere}.let.{n}", n)
            self.mappings[etype] = _CompiledMapping(compiler, m, lets, functions, mwhere)
        self.names = tuple(dict.fromkeys(spec.all_names))
        # The fast path: the same mappings as generated Python (closures stay the reference).
        from sdk.mapping import generate_plan

        self.generated = {}
        if generate_plan.enabled():
            self.generated = generate_plan.generate(spec, compiler, functions, Planned)
        # With the fast path, lets read through env.let (endpoint templates, closures kept as fallbacks)
        # run as generated functions too; a let generation could not write stays a closure.
        self.fast_lets = {
            etype: {**self.mappings[etype].lets, **getattr(fn, "__sluice_lets__", {})}
            for etype, fn in self.generated.items()
        }

    @staticmethod
    def _compile_vars(
        spec: DestinationSpec, functions: dict[str, Any]
    ) -> list[tuple[str, Callable[[Env], Any]]]:
        compiler = Compiler(set(), functions)
        out = []
        for name, node in spec.vars.items():
            expr = compiler.value(node, f"{spec.name}.vars.{name}")
            out.append((name, expr.fn))
        return out

    def run(self, env: Env) -> list[Planned]:
        mapping = self.mappings.get(env.etype)
        if mapping is None:
            raise UnsupportedEventError(f"{self.spec.display_name} has no mapping for {env.etype!r} events")
        fast = self.generated.get(env.etype)
        if fast is not None:
            env.lets = self.fast_lets[env.etype]
            return fast(env, [])
        env.lets = mapping.lets
        return self.run_closures(env, mapping)

    def run_closures(self, env: Env, mapping: _CompiledMapping | None = None) -> list[Planned]:
        """The reference: the mapping run with the compiler's closures only."""
        mapping = mapping or self.mappings[env.etype]
        env.lets = mapping.lets
        for c in self.checks:
            c.run(env)
        for c in mapping.checks:
            c.run(env)
        out: list[Planned] = []
        for r in mapping.requests:
            if r.build(env, out) and mapping.first_only:
                break
        return out


def _let(compiler: Compiler, node: Any, where: str, name: str) -> Callable[[Env], Any]:
    expr: Expr = compiler.scoped(node, where)
    deps = compiler.last_deps
    if name in compiler.let_deps and compiler.let_deps[name] != deps:
        deps = frozenset({"*"})  # defined twice (spec-wide and per event type) with other inputs
    compiler.let_deps[name] = deps
    return expr.fn


def compute_vars(plan: Plan, env: Env) -> dict[str, Any]:
    """``vars`` for one config: evaluated in order, each able to read the ones before it. A var that cannot
    be computed is a configuration error (its message says which setting to fix)."""
    values: dict[str, Any] = {}
    env.vars = values
    for name, fn in plan.vars:
        try:
            v = fn(env)
        except InstrumentationError as e:
            # vars read only settings: what stops one (`otherwise: error`, `required`) is the config.
            raise ConfigurationError(e.message) from e
        values[name] = None if v is MISSING else json_copy(v)
    return values


_LET_REF = re.compile(r"\blet\.([A-Za-z_][\w$]*)")


def _let_refs(node: Any) -> set[str]:
    """The let names an expression mentions (``let.x`` anywhere in its text)."""
    if isinstance(node, str):
        return set(_LET_REF.findall(node))
    if isinstance(node, dict):
        return set().union(*(_let_refs(v) for v in node.values())) if node else set()
    if isinstance(node, list):
        return set().union(*(_let_refs(v) for v in node)) if node else set()
    return set()


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(n: str, path: list[str]) -> list[str] | None:
        if state.get(n) == 1:
            return path[path.index(n) :] + [n]
        if state.get(n) == 2:
            return None
        state[n] = 1
        for m in sorted(graph[n]):
            found = visit(m, [*path, n])
            if found:
                return found
        state[n] = 2
        return None

    for n in sorted(graph):
        cycle = visit(n, [])
        if cycle:
            return cycle
    return None


def _refuse_let_cycles(spec: DestinationSpec) -> None:
    """A let that reads itself, directly or through others, can never be computed: a spec error."""
    scopes = [("", spec.let)] + [(f"mappings.{t}.", {**spec.let, **m.let}) for t, m in spec.mappings.items()]
    for prefix, lets in scopes:
        cycle = _find_cycle({n: _let_refs(node) & set(lets) for n, node in lets.items()})
        if cycle:
            raise CompileError(
                f"{spec.name}.{prefix}let.{cycle[0]}",
                "these lets read each other in a circle, so none can be computed: "
                + " -> ".join(f"let.{c}" for c in cycle),
            )
