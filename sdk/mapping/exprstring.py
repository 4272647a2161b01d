"""The one-line expression syntax, shared by fields, templates and conditions.

::

    expression := operand ( "??" operand )* ( "|" format )*
    operand    := path | 'text' | "text" | number | true | false | null
    format     := name | name "(" literal ( "," literal )* ")"

``a ?? b`` is the first *present* operand (not missing, not null, not empty text); formats then apply
to that value in order. ``default('x')`` is the one format that acts on a missing value.
Examples: ``userId ?? anonymousId | string``, ``traits.email | trim | lower | sha256``,
``properties.total ?? properties.revenue | number | round(2)``, ``'rudderstack'``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from sdk.mapping.paths import Path, PathError

_LITERAL = re.compile(
    r"""\s*(?:
        (?P<sq>'(?:[^'\\]|\\.)*')
      | (?P<dq>"(?:[^"\\]|\\.)*")
      | (?P<num>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)(?![\w.\[])
      | (?P<kw>true|false|null)(?![\w.\[])
    )\s*""",
    re.VERBOSE,
)
_FORMAT = re.compile(r"\s*(?P<name>[a-z_][a-z0-9_]*)\s*(?P<args>\()?")
_NO_LITERAL: Any = object()


class ExprSyntaxError(ValueError):
    pass


@dataclass(frozen=True)
class Operand:
    path: Path | None
    literal: Any = None


@dataclass(frozen=True)
class ParsedExpr:
    operands: tuple[Operand, ...]
    formats: tuple[tuple[str, Any], ...]


def _literal(m: re.Match[str]) -> Any:
    if m.group("sq") is not None:
        body = m.group("sq")[1:-1]
        return re.sub(r"\\(.)", r"\1", body)
    if m.group("dq") is not None:
        return json.loads(m.group("dq"))
    if m.group("num") is not None:
        t = m.group("num")
        return float(t) if any(c in t for c in ".eE") else int(t)
    return {"true": True, "false": False, "null": None}[m.group("kw")]


def _split_top(text: str, sep: str) -> list[str]:
    """Split at ``sep`` outside quotes, brackets and parentheses."""
    out, depth, quote, cur, i = [], 0, "", [], 0
    while i < len(text):
        c = text[i]
        if quote:
            cur.append(c)
            if c == "\\" and i + 1 < len(text):
                cur.append(text[i + 1])
                i += 2
                continue
            if c == quote:
                quote = ""
        elif c in "'\"":
            quote = c
            cur.append(c)
        elif c in "([":
            depth += 1
            cur.append(c)
        elif c in ")]":
            depth -= 1
            cur.append(c)
        elif depth == 0 and text.startswith(sep, i):
            out.append("".join(cur))
            cur = []
            i += len(sep)
            continue
        else:
            cur.append(c)
        i += 1
    if quote:
        raise ExprSyntaxError(f"unclosed quote in {text!r}")
    out.append("".join(cur))
    return out


def parse(text: str) -> ParsedExpr:
    """Parse an expression; errors say what is wrong and where."""
    if not isinstance(text, str) or not text.strip():
        raise ExprSyntaxError("empty expression")
    pieces = _split_top(text, "|")
    # `??` contains no `|`, so the first piece holds all operands.
    operands = []
    for raw in _split_top(pieces[0], "??"):
        if not raw.strip():
            raise ExprSyntaxError(f"missing operand around '??' in {text!r}")
        operands.append(_operand(raw, text))
    formats = tuple(_format(p, text) for p in pieces[1:])
    return ParsedExpr(tuple(operands), formats)


def _operand(raw: str, whole: str) -> Operand:
    m = _LITERAL.fullmatch(raw)
    if m:
        return Operand(None, _literal(m))
    try:
        return Operand(Path(raw.strip()))
    except PathError as e:
        raise ExprSyntaxError(f"{e} in expression {whole!r}") from e


def _format(raw: str, whole: str) -> tuple[str, Any]:
    m = _FORMAT.match(raw)
    if not m:
        raise ExprSyntaxError(f"expected a format name after '|' in {whole!r}, got {raw.strip()!r}")
    name = m.group("name")
    rest = raw[m.end() :]
    if not m.group("args"):
        if rest.strip():
            raise ExprSyntaxError(f"unexpected {rest.strip()!r} after format {name!r} in {whole!r}")
        return name, None
    inner, close, tail = rest.rpartition(")")
    if not close or tail.strip():
        raise ExprSyntaxError(f"format {name!r} in {whole!r} needs a closing ')'")
    args = []
    if inner.strip():
        for a in _split_top(inner, ","):
            lm = _LITERAL.fullmatch(a)
            if not lm:
                raise ExprSyntaxError(
                    f"format arguments are literals ('text', numbers, true, false, null); got {a.strip()!r} "
                    f"in {whole!r}"
                )
            args.append(_literal(lm))
    return name, (args[0] if len(args) == 1 else args if args else None)


_TOKEN = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
# Handlebars' two forms: {{{ x }}} (inserted as it is) and {{ x }} (HTML-escaped).
_HANDLEBARS = re.compile(r"\{\{\{(.*?)\}\}\}|\{\{(.*?)\}\}", re.DOTALL)


def _split(text: str, token: re.Pattern[str], part: Any) -> list[Any]:
    parts: list[Any] = []
    pos = 0
    for m in token.finditer(text):
        if m.start() > pos:
            parts.append(text[pos : m.start()])
        parts.append(part(m))
        pos = m.end()
    if pos < len(text):
        parts.append(text[pos:])
    if "{{" in "".join(p for p in parts if isinstance(p, str)):
        raise ExprSyntaxError(f"unclosed '{{{{' in template {text!r}")
    return parts


def template_parts(text: str) -> list[str | ParsedExpr]:
    """Split ``"Viewed {{ name }} Page"`` into literal text and parsed expressions."""
    return _split(text, _TOKEN, lambda m: parse(m.group(1)))


def handlebars_parts(text: str) -> list[str | tuple[ParsedExpr, bool]]:
    """Literal text and (expression, escaped) pairs: ``{{ x }}`` is escaped, ``{{{ x }}}`` is not."""

    def part(m: re.Match[str]) -> tuple[ParsedExpr, bool]:
        raw = m.group(1) is not None
        return parse(m.group(1) if raw else m.group(2)), not raw

    return _split(text, _HANDLEBARS, part)


def is_template(text: Any) -> bool:
    return isinstance(text, str) and "{{" in text
