"""Source paths: where a value is read from (``context.traits.email``, ``settings.apiKey``).

A path is parsed once, when a spec is compiled, into a root and a tuple of steps; reading it is then a
plain loop. Paths are the one addressing scheme of the spec language: the same text works in a field
(``email: traits.email``), inside a template (``"{{ traits.email }}"``) and in a condition.

Roots (the first segment; anything else reads the event):

=========  ================================================================================
``event``  the incoming event (the default root: ``userId`` is ``event.userId``); a bare ``event`` is
           the track call's event *name* (the event's ``event`` field)
``message``  the whole incoming event (``message`` alone), e.g. to send it as it is
``settings``  the destination's settings, defaults filled in
``vars``   the spec's ``vars``, computed once per config
``ctx``    the transform context: ``now`` (ISO-8601), ``now_ms``, ``now_s``, ``message_id``
           (the event's messageId, else a deterministic id), ``type`` (normalised event type)
``let``    named values declared under ``let:`` (computed at most once per event)
``item``   the current element inside ``each`` (``index`` is its position)
``opts``   the event's ``integrations.<this destination>`` options object, under any of its names
=========  ================================================================================

Steps: ``a.b`` (object key), ``items.0`` / ``items[0]`` / ``items[-1]`` (list index), ``ids[type=email]``
(the first element whose field equals the text), ``products[*].price`` (every element: a list), and
``integrations['Google Analytics 4']`` (a key with spaces or dots).
"""

from __future__ import annotations

import functools
import re
from typing import Any

MISSING: Any = object()

ROOTS = frozenset({"event", "message", "settings", "vars", "ctx", "let", "item", "index", "opts"})

# Step kinds.
KEY, INDEX, SELECT, ALL = 0, 1, 2, 3

_SEGMENT = re.compile(
    r"""
    (?P<name>[^.\[\]'"\s]+)                      # plain key
    | \[\s*(?P<index>-?\d+)\s*\]                # [0]
    | \[\s*\*\s*\]                              # [*]
    | \[\s*(?P<qkey>'[^']*'|"[^"]*")\s*\]       # ['a key']
    | \[\s*(?P<field>[^=\]\s]+)\s*=\s*(?P<want>'[^']*'|"[^"]*"|[^\]]*?)\s*\]   # [type=email]
    """,
    re.VERBOSE,
)


class PathError(ValueError):
    """A path that cannot be parsed; the message says what is wrong."""


class Path:
    """A parsed path: ``root`` plus ``steps`` of (kind, argument)."""

    __slots__ = ("text", "root", "steps", "static")

    def __init__(self, text: str):
        self.text = text
        steps = _parse(text)
        if (
            steps
            and steps[0][0] == KEY
            and steps[0][1] in ROOTS
            and not (steps[0][1] == "event" and len(steps) == 1)
        ):
            # A bare `event` is the track call's event name, the field every spec reads; `event.x` is x.
            self.root = "event" if steps[0][1] == "message" else steps[0][1]
            steps = steps[1:]
        else:
            self.root = "event"
        self.steps: tuple[tuple[int, Any], ...] = tuple(steps)
        # Plain keys only (the common case) read through the fast loop in `read_keys`.
        self.static = all(kind == KEY for kind, _ in self.steps)

    @property
    def keys(self) -> tuple[str, ...]:
        """The plain key steps (for a static path), e.g. ``("context", "traits", "email")``."""
        return tuple(arg for _, arg in self.steps)

    def __repr__(self) -> str:
        return f"Path({self.text!r})"


def _parse(text: str) -> list[tuple[int, Any]]:
    s = text.strip()
    if not s:
        raise PathError("empty path")
    out: list[tuple[int, Any]] = []
    pos = 0
    expect_segment = True
    while pos < len(s):
        if s[pos] == "." and not expect_segment:
            pos += 1
            expect_segment = True
            continue
        m = _SEGMENT.match(s, pos)
        if not m or (m.group("name") is not None and not expect_segment):
            raise PathError(f"cannot read path {text!r} at position {pos} ({s[pos : pos + 12]!r})")
        if m.group("name") is not None:
            name = m.group("name")
            if name.lstrip("-").isdigit() and out:
                out.append((INDEX, int(name)))
            else:
                out.append((KEY, name))
        elif m.group("index") is not None:
            out.append((INDEX, int(m.group("index"))))
        elif m.group("qkey") is not None:
            out.append((KEY, m.group("qkey")[1:-1]))
        elif m.group("field") is not None:
            want = m.group("want")
            if want[:1] in ("'", '"'):
                want = want[1:-1]
            out.append((SELECT, (m.group("field"), want)))
        else:
            out.append((ALL, None))
        pos = m.end()
        expect_segment = False
    if expect_segment:
        raise PathError(f"path {text!r} ends with a dot")
    return out


def _text_of(v: Any) -> str | None:
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)
    return None


def read_keys(root: Any, keys: tuple[str, ...]) -> Any:
    """The value at plain ``keys`` below ``root``, or MISSING. Digit keys index lists."""
    cur = root
    for k in keys:
        if type(cur) is dict:
            cur = cur.get(k, MISSING)
            if cur is MISSING:
                return MISSING
        elif type(cur) is list and k.lstrip("-").isdigit():
            i = int(k)
            if -len(cur) <= i < len(cur):
                cur = cur[i]
            else:
                return MISSING
        else:
            return MISSING
    return cur


def read_steps(root: Any, steps: tuple[tuple[int, Any], ...]) -> Any:
    """The value at ``steps`` below ``root``, or MISSING; ``[*]`` turns the rest into a list (pluck)."""
    cur = root
    for n, (kind, arg) in enumerate(steps):
        if kind == KEY:
            if type(cur) is dict:
                cur = cur.get(arg, MISSING)
                if cur is MISSING:
                    return MISSING
            elif type(cur) is list and arg.lstrip("-").isdigit():
                i = int(arg)
                if not -len(cur) <= i < len(cur):
                    return MISSING
                cur = cur[i]
            else:
                return MISSING
        elif kind == INDEX:
            if type(cur) is not list or not -len(cur) <= arg < len(cur):
                return MISSING
            cur = cur[arg]
        elif kind == SELECT:
            if type(cur) is not list:
                return MISSING
            field, want = arg
            for el in cur:
                if type(el) is dict and _text_of(el.get(field)) == want:
                    cur = el
                    break
            else:
                return MISSING
        else:  # ALL
            if type(cur) is not list:
                return MISSING
            rest = steps[n + 1 :]
            out = []
            for el in cur:
                v = read_steps(el, rest) if rest else el
                if v is not MISSING and v is not None:
                    out.append(v)
            return out
    return cur


def split_path(path: str) -> tuple[str, ...]:
    """Plain dotted keys (``a.b.c``); for mappers and the pipeline, which address fixed fields."""
    return tuple(p for p in path.split(".") if p != "")


def get_path(root: Any, parts: tuple[str, ...]) -> Any:
    """The value at ``parts`` or ``MISSING`` (plain keys; digit keys index lists)."""
    return read_keys(root, parts)


@functools.lru_cache(maxsize=4096)
def _steps_of(path: str) -> tuple[tuple[int, Any], ...]:
    return tuple(_parse(path))


def get(root: Any, path: str, default: Any = None) -> Any:
    """Convenience for mappers: ``get(event, "context.traits.email")``; null and missing give ``default``.

    The path is read from ``root`` as written (no root names): ``get(settings, "apiKey")``.
    """
    v = read_steps(root, _steps_of(path)) if path else MISSING
    return default if v is MISSING or v is None else v


def set_path(target: dict, parts: tuple[str, ...], value: Any) -> None:
    """Set ``value`` at ``parts``, creating objects on the way (only in ``target``'s own dicts)."""
    cur = target
    for p in parts[:-1]:
        nxt = cur.get(p)
        if not isinstance(nxt, dict):
            nxt = {}
            cur[p] = nxt
        cur = nxt
    cur[parts[-1]] = value
