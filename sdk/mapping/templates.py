"""``{{ settings.apiKey }}``-style templates for URLs, headers, params and static values.

Deliberately tiny: a dotted lookup plus a chain of named filters
(``{{ event.userId | urlencode }}``). Anything smarter belongs in a mapper.
"""

from __future__ import annotations

import base64
import re
import urllib.parse
from collections.abc import Callable
from typing import Any

from sdk.errors import ConfigurationError, InstrumentationError
from sdk.mapping.paths import MISSING, get_path, split_path

_TOKEN = re.compile(r"\{\{\s*([^}|]+?)\s*((?:\|\s*[a-z_0-9]+\s*)*)\}\}")

FILTERS: dict[str, Callable[[str], str]] = {
    "urlencode": lambda s: urllib.parse.quote(s, safe=""),
    "lower": str.lower,
    "upper": str.upper,
    "trim": str.strip,
    "base64": lambda s: base64.b64encode(s.encode()).decode(),
    "strip_slash": lambda s: s.rstrip("/"),
    # HTTP Basic credentials for a user with an empty password (e.g. a project token): base64 of "user:".
    "basic_user": lambda s: base64.b64encode(f"{s}:".encode()).decode(),
}


class Template:
    """A compiled template; ``render(ns)`` looks names up in ``{"settings", "vars", "event"}``."""

    def __init__(self, text: str, where: str = "template"):
        self.text = text
        self.where = where
        self.parts: list[str | tuple[tuple[str, ...], list[str], str]] = []
        pos = 0
        for m in _TOKEN.finditer(text):
            if m.start() > pos:
                self.parts.append(text[pos : m.start()])
            filters = [f.strip() for f in m.group(2).split("|") if f.strip()]
            for f in filters:
                if f not in FILTERS:
                    raise ValueError(f"{where}: unknown template filter {f!r}; known: {sorted(FILTERS)}")
            self.parts.append((split_path(m.group(1)), filters, m.group(1)))
            pos = m.end()
        if pos < len(text):
            self.parts.append(text[pos:])
        self.is_static = all(isinstance(p, str) for p in self.parts)
        self.single = len(self.parts) == 1 and not isinstance(self.parts[0], str)

    def render(self, ns: dict[str, Any], raw: bool = False) -> Any:
        if self.is_static:
            return self.text
        out: list[str] = []
        for p in self.parts:
            if isinstance(p, str):
                out.append(p)
                continue
            path, filters, name = p
            value = get_path(ns, path)
            if value is MISSING or value is None or value == "":
                root = path[0] if path else ""
                if root == "event":
                    raise InstrumentationError(
                        f"{'.'.join(path[1:])} is required for {self.where}; add it to the event"
                    )
                raise ConfigurationError(
                    f"{'.'.join(path[1:]) or name} is required for {self.where}; "
                    "set it in the destination config"
                )
            if raw and self.single and not filters:
                return value
            s = value if isinstance(value, str) else _str(value)
            for f in filters:
                s = FILTERS[f](s)
            out.append(s)
        return "".join(out)


def _str(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)
