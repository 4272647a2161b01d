"""Conditions: when a field, a request, a check or a case applies.

A condition is one of:

* an expression string: true when its value is truthy (``settings.trackProductsOnce``; false, 0, "",
  "false", null, missing and empty containers are false);
* ``{present: X}`` / ``{absent: X}``: X is (not) there: not missing, not null, not empty text;
* ``{has: X}``: X exists in the event, even as null or empty text (a trait sent as null, which
  vendors read as "clear this field", is not the same as a trait not sent);
* ``{of: X, <test>: operand}`` with one test: ``eq``, ``ne``, ``in``, ``not_in`` (a list), ``matches``
  (a regular expression, searched), ``gt``, ``ge``, ``lt``, ``le`` (numbers), ``contains`` (text or list),
  ``starts_with``, ``type`` (string, number, integer, boolean, object, list, null); ``ci: true``
  compares text trimmed and case-insensitively, ``loose: true`` also treats spaces, ``_`` and ``-`` alike;
* ``{age_of: TIME, gt|ge|lt|le: DURATION}``: how long before now TIME was (negative in the future);
  durations are ``30s``, ``15m``, ``72h``, ``7d``, ``5y`` (365 days) or seconds; ``at: OTHER`` measures
  the age at another time instead of now (``{age_of: timestamp, at: sentAt, gt: 5y}``: how old the event
  was when it was sent), and now when OTHER is missing or not a time;
* ``{not: C}``, ``{all: [C, ...]}``, ``{any: [C, ...]}``.

Operands are literals (data, not expressions): ``{of: settings.region, eq: EU}``; two tests take an
expression instead, to compare two values of the event or settings: ``same_as`` (equal as text) and
``one_of`` (an element of a list, or a key of an object: a set built once, e.g. in ``vars``),
e.g. ``{of: previousId, same_as: userId}``; and ``matched_by`` takes a regular expression from an
expression (a user's pattern in the settings rows, ``{of: event, matched_by: item.eventName}``): searched
like ``matches``; a pattern that is not valid, or repeats a group holding a repeat or an alternation
(``(a+)+``, ``(a|b)*``, which can take exponential time), is a configuration error naming it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

from sdk.errors import ConfigurationError
from sdk.mapping import formats
from sdk.mapping.env import Env
from sdk.mapping.expressions import CompileError, Compiler, normalise_key
from sdk.mapping.paths import MISSING

Cond = Callable[[Env], bool]

TESTS = (
    "eq", "ne", "in", "not_in", "matches", "gt", "ge", "lt", "le", "contains", "starts_with", "type",
    "same_as", "one_of", "matched_by",
)  # fmt: skip
TYPES = {
    "string": lambda v: isinstance(v, str),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "list": lambda v: isinstance(v, list),
    "null": lambda v: v is None,
}
_DURATION = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*([smhdwy]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def duration_seconds(v: Any, where: str) -> float:
    if isinstance(v, int | float) and not isinstance(v, bool):
        return float(v)
    m = _DURATION.match(str(v)) if isinstance(v, str) else None
    if not m:
        raise CompileError(where, f"{v!r} is not a duration; write e.g. 30s, 15m, 72h, 7d or 5y")
    return float(m.group(1)) * _UNITS[m.group(2)]


def compile_condition(compiler: Compiler, node: Any, where: str) -> Cond:
    if isinstance(node, bool):
        return (lambda env: True) if node else (lambda env: False)
    if isinstance(node, str):
        fn = compiler.value(node, where).fn
        truthy = formats.truthy
        return lambda env: truthy(fn(env))
    if not isinstance(node, dict) or not node:
        raise CompileError(where, "a condition is an expression or a mapping such as {present: userId}")
    keys = set(node)
    if keys == {"not"}:
        inner = compile_condition(compiler, node["not"], f"{where}.not")
        return lambda env: not inner(env)
    if keys in ({"all"}, {"any"}):
        (kind,) = keys
        items = node[kind]
        if not isinstance(items, list) or not items:
            raise CompileError(where, f"`{kind}` takes a list of conditions")
        conds = [compile_condition(compiler, c, f"{where}.{kind}[{i}]") for i, c in enumerate(items)]
        if len(conds) == 1:
            return conds[0]
        if len(conds) == 2:
            c1, c2 = conds
            if kind == "all":
                return lambda env: c1(env) and c2(env)
            return lambda env: c1(env) or c2(env)
        if kind == "all":

            def all_of(env: Env) -> bool:
                for c in conds:
                    if not c(env):
                        return False
                return True

            return all_of

        def any_of(env: Env) -> bool:
            for c in conds:
                if c(env):
                    return True
            return False

        return any_of
    if keys in ({"present"}, {"absent"}):
        (kind,) = keys
        fn = compiler.value(node[kind], f"{where}.{kind}").fn

        def is_present(env: Env) -> bool:
            v = fn(env)
            return v is not MISSING and v is not None and v != ""

        if kind == "present":
            return is_present
        return lambda env: not is_present(env)
    if keys == {"has"}:
        fn = compiler.value(node["has"], f"{where}.has").fn
        return lambda env: fn(env) is not MISSING
    if "age_of" in keys:
        return _age(compiler, node, where)
    if "of" in keys:
        return _test(compiler, node, where)
    raise CompileError(
        where,
        f"unknown condition {sorted(keys)}; use present/absent/has, of + a test ({', '.join(TESTS)}), "
        "age_of, not, all or any",
    )


def _test(compiler: Compiler, node: dict[str, Any], where: str) -> Cond:
    tests = [k for k in TESTS if k in node]
    extra = set(node) - set(TESTS) - {"of", "ci", "loose"}
    if len(tests) != 1 or extra:
        raise CompileError(
            where,
            f"`of` takes exactly one test of {', '.join(TESTS)} (and ci/loose); "
            f"got {sorted(set(node) - {'of'})}",
        )
    test, operand = tests[0], node[tests[0]]
    subject = compiler.value(node["of"], f"{where}.of").fn
    mode = "loose" if node.get("loose") else "ci" if node.get("ci") else "exact"
    if test in ("same_as", "one_of"):
        other = compiler.value(operand, f"{where}.{test}").fn

        def dynamic(env: Env) -> bool:
            mine = normalise_key(subject(env), mode)
            if mine is None:
                return False
            theirs = other(env)
            if test == "same_as":
                return mine == normalise_key(theirs, mode)
            if type(theirs) is dict:
                if mode == "exact":
                    return mine in theirs
                return any(normalise_key(k, mode) == mine for k in theirs)
            return isinstance(theirs, list) and mine in {normalise_key(x, mode) for x in theirs}

        return dynamic
    if test == "matched_by":
        pattern = compiler.value(operand, f"{where}.matched_by").fn
        flags = re.IGNORECASE if mode != "exact" else 0

        def matched_by(env: Env) -> bool:
            v = subject(env)
            p = pattern(env)
            if not isinstance(v, str | int | float) or isinstance(v, bool) or not isinstance(p, str):
                return False
            return user_pattern(p, flags).search(formats.to_string(v)) is not None

        return matched_by
    if test in ("eq", "ne"):
        want = normalise_key(operand, mode)
        neg = test == "ne"
        if operand is None:
            return lambda env: (subject(env) in (None, MISSING)) != neg
        return lambda env: (normalise_key(subject(env), mode) == want) != neg
    if test in ("in", "not_in"):
        if not isinstance(operand, list):
            raise CompileError(where, f"`{test}` takes a list")
        wanted = {normalise_key(x, mode) for x in operand}
        neg = test == "not_in"
        return lambda env: (normalise_key(subject(env), mode) in wanted) != neg
    if test == "matches":
        try:
            rx = re.compile(str(operand), re.IGNORECASE if mode != "exact" else 0)
        except re.error as e:
            raise CompileError(where, f"bad regular expression: {e}") from e

        def matches(env: Env) -> bool:
            v = subject(env)
            return isinstance(v, str | int | float) and rx.search(formats.to_string(v)) is not None

        return matches
    if test in ("gt", "ge", "lt", "le"):
        try:
            limit = formats.to_number(operand)
        except formats.FormatError as e:
            raise CompileError(where, f"`{test}` takes a number") from e
        op = _COMPARE[test]

        def compare(env: Env) -> bool:
            v = subject(env)
            if v is MISSING or v is None:
                return False
            try:
                return op(formats.to_number(v), limit)
            except formats.FormatError:
                return False

        return compare
    if test == "contains":
        want_c = normalise_key(operand, mode)

        def contains(env: Env) -> bool:
            v = subject(env)
            if isinstance(v, list):
                return want_c in {normalise_key(x, mode) for x in v}
            s = normalise_key(v, mode)
            return s is not None and want_c is not None and want_c in s

        return contains
    if test == "starts_with":
        want_s = normalise_key(operand, mode) or ""

        def starts(env: Env) -> bool:
            s = normalise_key(subject(env), mode)
            return s is not None and s.startswith(want_s)

        return starts
    check = TYPES.get(str(operand))
    if check is None:
        raise CompileError(where, f"`type` is one of {', '.join(TYPES)}")
    return lambda env: (v := subject(env)) is not MISSING and check(v)


# A repeated group holding a repeat or an alternation: `(a+)+`, `(\w*)*`, `(a|b)+`, `(x{2})?`. These are
# the patterns that can backtrack exponentially; simple repeats (`a+`, `(ab)+`, `[a-z]*`) stay allowed.
_NESTED_REPEAT = re.compile(r"\((?:[^()\\]|\\.)*[*+{|](?:[^()\\]|\\.)*\)[*+?{]")


@functools.lru_cache(maxsize=512)
def user_pattern(pattern: str, flags: int = 0) -> re.Pattern[str]:
    """A regular expression from the settings, compiled once; refused when invalid or when it nests
    repeats, so one destination's pattern cannot stall the processor with exponential backtracking."""
    if len(pattern) > 1000 or _NESTED_REPEAT.search(pattern):
        raise ConfigurationError(
            f"the pattern {pattern[:80]!r} repeats a group that holds a repeat or an alternation (or is over "
            "1000 characters), which can take exponential time; simplify it"
        )
    try:
        return re.compile(pattern, flags)
    except re.error as e:
        raise ConfigurationError(
            f"the pattern {pattern[:80]!r} is not a valid regular expression: {e}"
        ) from e


_COMPARE = {
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
}


def _age(compiler: Compiler, node: dict[str, Any], where: str) -> Cond:
    tests = [k for k in ("gt", "ge", "lt", "le") if k in node]
    if len(tests) != 1 or set(node) - {"age_of", "at", *tests}:
        raise CompileError(
            where, "`age_of` takes one of gt, ge, lt, le with a duration (e.g. 72h), and optionally `at`"
        )
    limit = duration_seconds(node[tests[0]], where)
    subject = compiler.value(node["age_of"], f"{where}.age_of").fn
    at = compiler.value(node["at"], f"{where}.at").fn if "at" in node else None
    op = _COMPARE[tests[0]]

    def reference(env: Env) -> Any:
        if at is not None:
            v = at(env)
            if v is not MISSING and v is not None and v != "":
                try:
                    return formats.parse_time(v)
                except (formats.FormatError, OverflowError, ValueError):
                    pass
        return env.ctx.now

    def age(env: Env) -> bool:
        v = subject(env)
        if v is MISSING or v is None or v == "":
            return False
        try:
            t = formats.parse_time(v)
            seconds = (reference(env) - t).total_seconds()
        except (formats.FormatError, OverflowError, ValueError):
            return False
        return op(seconds, limit)

    return age
